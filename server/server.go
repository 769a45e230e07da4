// Package server assembles apikeyd from its configuration — store, secrets,
// service, HTTP API and background jobs — and runs it until told to stop.
// The serve command and the end-to-end tests both start it through here.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/lastused"
	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/rotation"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/usage"
	"github.com/apikeyd/apikeyd/web"
	"github.com/apikeyd/apikeyd/webhook"
)

// Version is the build's version, set by the linker.
var Version = "dev"

// GCPercent is the garbage collector target TuneGC sets.
const GCPercent = 400

// TuneGC sets the garbage collector's target to GCPercent unless the
// operator chose one with GOGC. apikeyd keeps its large data, the key
// index, outside the Go heap, so the heap itself is a few MB; at Go's
// default of 100 a verify load of ~50,000 requests a second collects it
// some 50 times a second, which cost about 3 µs of CPU per request (15%)
// in the verify benchmark. At 400 the heap may grow to five times its live
// size, tens of MB, far inside the memory budget. It changes a
// process-wide setting, so the serve command calls it, not New.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}

// readTimeout bounds the time a client may take to send a request, header
// and body, for everyone: at 1 MiB, the largest body, it asks for about
// 100 KiB/s. Requests without a valid bearer do not wait for it: they are
// answered before their body is read (api.API.authenticate).
const readTimeout = 10 * time.Second

// Server is a configured apikeyd, ready to start.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	store apikey.Store
	usage *lastused.Buffer
	index *keycache.Cache
	// follower keeps the index in step with the other replicas' changes;
	// nil on SQLite, where this process makes every change.
	follower *postgres.Follower
	metrics  *metrics.Metrics
	svc      *service.Service
	// engine admits verifies against rate limits and credits; counter
	// counts verdicts for the usage endpoints.
	engine  *usage.Engine
	counter *usage.Counter
	http    *http.Server
	rotator *rotation.Scheduler
	// dirLock keeps other processes off the SQLite data directory; nil on
	// PostgreSQL.
	dirLock *sqlite.DirLock

	ln     net.Listener
	cancel context.CancelFunc
	jobs   sync.WaitGroup
	served chan error
}

// New opens the store (applying migrations), loads or generates the secrets
// and builds the service and its API. It binds the configured address first
// (a start that cannot listen fails before it generates any secret) but
// serves nothing until Start. On SQLite it
// first locks the data directory, and fails with a *sqlite.LockedError when
// another process holds it; the lock is held until Shutdown.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	lock, err := lockDataDir(cfg)
	if err != nil {
		return nil, dataDirError(cfg, err)
	}
	defer func() {
		if err != nil {
			lock.Unlock()
		}
	}()
	// The address is bound before any secret is generated, so that a first
	// start that cannot listen leaves no admin token behind that nobody saw
	// logged by a server that ran.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	if err := checkDataDir(cfg); err != nil {
		return nil, err
	}
	// The database before the secrets: a first start that fails in between
	// leaves a database beside them, not secrets without one (checkDataDir).
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, dataDirError(cfg, err)
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	secrets, err := loadSecrets(cfg, log)
	if err != nil {
		return nil, dataDirError(cfg, err)
	}
	box, err := seal.New(secrets.masterKey)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	// Everything but the PostgreSQL follower (which has its own
	// connection, and reports through apikeyd_cache_staleness_seconds)
	// reaches the store through m.Store, which counts its failures.
	counted := m.Store(store)
	s := &Server{cfg: cfg, log: log, store: store, usage: lastused.New(counted), metrics: m, dirLock: lock, ln: ln}
	s.usage.OnFlush = s.metrics.LastUsedFlush
	webhooks := webhook.Policy{Insecure: cfg.InsecureWebhooks}
	s.index = keycache.New(keycache.Options{Store: counted, Metrics: s.metrics})
	var index service.Index = s.index
	if pg, ok := store.(*postgres.Store); ok {
		s.follower = pg.Follower(postgres.FollowOptions{Index: s.index, MaxStaleness: cfg.MaxStaleness, Logger: log})
		index = service.BoundedIndex{Index: s.index, Freshness: s.follower}
		s.metrics.CacheStaleness(s.follower.Age)
	}
	replica, err := apikey.NewID(apikey.IDKindKey)
	if err != nil {
		return nil, err
	}
	_, shared := store.(*postgres.Store)
	// A run is a replica of its own (docs/limits.md): its leases are never
	// resumed by the next run, whose unreported spends are unknown.
	s.engine = usage.New(usage.Config{Reserver: counted, ReplicaID: "replica_" + strings.TrimPrefix(replica, "key_"),
		Shared: shared, CreditSliceMax: int64(cfg.CreditSliceMax)})
	s.counter = usage.NewCounter(nil)
	s.svc, err = service.New(service.Options{
		Engine:     s.engine,
		Counter:    s.counter,
		Store:      counted,
		Index:      index,
		Usage:      s.usage,
		Box:        box,
		AdminToken: secrets.adminToken,
		KeyPrefix:  cfg.KeyPrefix,
		Webhooks:   webhooks,
	})
	if err != nil {
		return nil, err
	}
	if cfg.InsecureWebhooks {
		log.Warn("insecure webhooks: rotation webhooks may use http:// and reach private and loopback addresses")
	}
	s.rotator = rotation.New(rotation.Options{
		Service: s.svc,
		Sender:  webhook.NewClient(webhooks),
		Policy: service.RotationPolicy{
			Grace:       cfg.AutoRotationGrace,
			Backoff:     cfg.WebhookBackoff,
			MaxAttempts: cfg.WebhookMaxAttempts,
		},
		Interval: cfg.RotationCheckInterval,
		Metrics:  s.metrics,
		Logger:   log,
	})
	a := api.New(api.Options{
		Service:           s.svc,
		Logger:            log,
		Ready:             s.ready,
		AuthFailureBurst:  cfg.AuthFailureBurst,
		AuthFailureRefill: cfg.AuthFailureRefill,
		TrustedProxies:    cfg.TrustedProxies,
		Metrics:           s.metrics,
		Version:           Version,
		CursorKey:         seal.DeriveKey(secrets.masterKey, "list cursors"),
	})
	// The dashboard (SPEC §11) at /ui/, unless APIKEYD_UI=false.
	var dashboard http.Handler
	if cfg.UI {
		dashboard = web.New(web.Options{
			Service: s.svc, Logger: log, Failures: a.AuthFailures(), TrustedProxies: cfg.TrustedProxies,
		})
	}
	s.http = &http.Server{
		Handler: Handler(a, HandlerOptions{
			Metrics: s.metrics, Logger: log, TrustedProxies: cfg.TrustedProxies, Secret: s.svc.IsAdminToken,
			UI: dashboard,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// lockDataDir creates the SQLite data directory if need be and locks it
// for this process: each process keeps its own key index, and on SQLite
// nothing tells one process of another's changes, so a second one would go
// on verifying keys the first revoked. It takes no lock on PostgreSQL,
// where replicas follow each other's changes.
func lockDataDir(cfg config.Config) (*sqlite.DirLock, error) {
	if cfg.Postgres() {
		return nil, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return sqlite.LockDir(cfg.DataDir)
}

// openStore opens PostgreSQL when the config has a database URL, and the
// SQLite file in the data directory otherwise.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (apikey.Store, error) {
	if cfg.Postgres() {
		st, err := openPostgres(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	path := dataPath(cfg, "apikeyd.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return st, nil
}

// errLoading is the readiness of a server whose index is still loading.
var errLoading = errors.New("the key index is loading")

// ready reports whether the server can verify from memory and its store
// answers: /readyz is 503 until both hold. With replicas, verifying from
// memory also takes an index known to be in step with the others' changes.
func (s *Server) ready(ctx context.Context) error {
	if !s.index.Loaded() {
		return errLoading
	}
	if s.follower != nil {
		if err := s.follower.Ready(); err != nil {
			return err
		}
	}
	return s.svc.Ready(ctx)
}

// loadIndex reads every key into the verification index, retrying until
// it succeeds or ctx ends, and returns the store's change position from
// just before the read, from which the follower takes over. Verifications
// meanwhile are answered through the store; /readyz says 503.
func (s *Server) loadIndex(ctx context.Context) (string, bool) {
	for {
		start := time.Now()
		since, err := s.store.KeyChanges(ctx, "", nil)
		if err == nil {
			err = s.index.Load(ctx)
		}
		if err == nil {
			// The load decoded every key once; hand that garbage's memory
			// back to the system now rather than when the scavenger gets
			// to it (with a million keys: ~270 MB resident instead of ~200).
			debug.FreeOSMemory()
			s.log.Info("key index loaded", "keys", s.index.Len(), "took", time.Since(start).Round(time.Millisecond))
			return since, true
		}
		s.log.Warn("loading the key index failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(time.Second):
		}
	}
}

// Start serves on the address New bound, in the background. The
// verification index loads in the background too.
func (s *Server) Start(ctx context.Context) error {
	ln := s.ln
	jobs, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		since, ok := s.loadIndex(jobs)
		if ok && s.follower != nil {
			s.follower.Run(jobs, since)
		}
	}()
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		s.usage.Run(jobs, s.cfg.LastUsedFlush, func(err error) {
			s.log.Warn("last_used_at flush failed; kept for the next one", "err", err)
		})
	}()
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		s.runUsage(jobs)
	}()
	s.rotator.Start(jobs)
	s.served = make(chan error, 1)
	go func() { s.served <- s.http.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String(), "version", Version)
	return nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops taking requests, waits for those in flight (until ctx
// ends), stops background jobs (the rotation scheduler finishes the webhook
// attempts it has started), writes buffered last uses, closes the store and,
// on SQLite, releases the data directory.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.served == nil {
		s.ln.Close() // never served: http.Shutdown does not know of it
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.jobs.Wait()
	s.rotator.Wait()
	if ferr := s.usage.Flush(context.WithoutCancel(ctx)); ferr != nil {
		err = errors.Join(err, fmt.Errorf("flush last uses: %w", ferr))
	}
	// Hand back every grant and unspent credit slice, so that a SIGTERM
	// loses nothing (docs/limits.md), and write the last usage counts.
	if _, cerr := s.engine.Close(context.WithoutCancel(ctx)); cerr != nil {
		err = errors.Join(err, fmt.Errorf("hand back usage reservations: %w", cerr))
	}
	if ferr := s.counter.Flush(context.WithoutCancel(ctx), s.store); ferr != nil {
		err = errors.Join(err, fmt.Errorf("flush usage counts: %w", ferr))
	}
	return errors.Join(err, s.closeStore())
}

// usageFlush is how often the usage engine does its bookkeeping
// (docs/limits.md: an unused grant stops counting against the other
// replicas within a second).
const usageFlush = time.Second

// runUsage runs the usage engine's flush every second, and with every
// APIKEYD_LAST_USED_FLUSH the usage counts' batch, the refills of
// balances nobody spends and the pruning of old usage hours, until ctx
// ends.
func (s *Server) runUsage(ctx context.Context) {
	tick := time.NewTicker(usageFlush)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.engine.Flush(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("usage flush failed; kept for the next one", "err", err)
		}
		if time.Since(last) < s.cfg.LastUsedFlush {
			continue
		}
		last = time.Now()
		if err := s.counter.Flush(ctx, s.store); err != nil && ctx.Err() == nil {
			s.log.Warn("usage counts flush failed; kept for the next one", "err", err)
		}
		if _, err := s.store.ApplyRefills(ctx, last, 1000); err != nil && ctx.Err() == nil {
			s.log.Warn("applying due refills failed", "err", err)
		}
		if _, err := s.store.PruneUsage(ctx, last.Add(-apikey.UsageRetention)); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning usage hours failed", "err", err)
		}
	}
}

// closeStore closes the store, then releases the data directory.
func (s *Server) closeStore() error {
	var err error
	if cerr := s.store.Close(); cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	if uerr := s.dirLock.Unlock(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("release data directory: %w", uerr))
	}
	return err
}

// Run starts the server and serves until ctx ends, then shuts down
// gracefully within drain.
func (s *Server) Run(ctx context.Context, drain time.Duration) error {
	if err := s.Start(ctx); err != nil {
		s.closeStore()
		return err
	}
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case err := <-s.served:
		if !errors.Is(err, http.ErrServerClosed) {
			s.Shutdown(context.Background())
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}
