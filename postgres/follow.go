package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apikeyd/apikeyd/apikey"
)

// Index is what a Follower keeps in step with the database: the replica's
// in-memory verification index (keycache.Cache).
type Index interface {
	// Apply records a committed change to a key. A copy older than the one
	// held changes nothing, so keys may be applied twice and out of order.
	Apply(k *apikey.Key)
	// Version returns the Version held for a hash, false if none.
	Version(h apikey.Hash) (int64, bool)
	// ApplyRoot and RootVersion are Apply and Version for root keys.
	ApplyRoot(rk *apikey.RootKey)
	RootVersion(h apikey.Hash) (int64, bool)
}

// Defaults of FollowOptions.
const (
	// DefaultMaxStaleness is how long a replica keeps answering from memory
	// after it last confirmed that its index is in step.
	DefaultMaxStaleness = 2 * time.Second
	// DefaultReconcileInterval is how often a follower reads the changes it
	// may have missed although its notification connection stayed up.
	DefaultReconcileInterval = 10 * time.Second
)

// Timing of the notification connection.
const (
	// maxHeartbeat caps the time between two confirmations while no
	// notification arrives (a quarter of the bound otherwise).
	maxHeartbeat = time.Second
	// minRetry and maxRetry bound the pause between reconnection attempts,
	// doubled after each failure.
	minRetry = 50 * time.Millisecond
	maxRetry = time.Second
	// warnEvery spaces the warnings of a follower that keeps failing to
	// connect; the attempts in between are logged at debug level.
	warnEvery = 30 * time.Second
	// readBatch is how many changed keys one read asks for.
	readBatch = 500
)

// FollowOptions configure a Follower.
type FollowOptions struct {
	Index Index
	// MaxStaleness is how long after it last confirmed that the index is in
	// step the follower still counts as fresh; zero means
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// ReconcileInterval is how often changes are read in full from the
	// last position even while notifications flow; zero means
	// DefaultReconcileInterval.
	ReconcileInterval time.Duration
	// Logger receives connection losses and recoveries; nil discards them.
	Logger *slog.Logger
}

// Follower keeps a replica's verification index in step with the changes
// that every replica commits, and knows how far it can vouch for it.
//
// It holds one connection of its own, outside the pool, that LISTENs on the
// schema's key channel: the keys_changed and root_keys_changed triggers
// notify every insert and version change of a key or root key, and PostgreSQL delivers the notification to
// every listener when the transaction commits. The follower reads the keys
// it is behind on (in batches) and applies them to the index. Whenever it
// (re)connects, and every ReconcileInterval, it also reads every key
// changed since its last position (Store.KeyChanges), which catches what
// was committed while it was not listening.
//
// Coherence is confirmed with a round trip on the listening connection: a
// notification of a transaction acknowledged before the round trip began
// arrives before its answer. Once the notifications that came before the
// answer are applied, the index holds every change acknowledged before the
// round trip began. One runs at least every MaxStaleness/4 (at most a
// second apart), and after every batch of notifications. Past MaxStaleness
// without a confirmation, Stale reports true until the next one.
type Follower struct {
	store     *Store
	index     Index
	bound     time.Duration
	heartbeat time.Duration
	reconcile time.Duration
	log       *slog.Logger

	stale atomic.Bool

	mu        sync.Mutex
	confirmed time.Time // last confirmation, with its monotonic reading
	following bool      // a connection is listening and has caught up
	expiry    *time.Timer
}

// Follower returns a follower of the store's key changes for o.Index. Run
// starts it.
func (s *Store) Follower(o FollowOptions) *Follower {
	f := &Follower{
		store:     s,
		index:     o.Index,
		bound:     o.MaxStaleness,
		reconcile: o.ReconcileInterval,
		log:       o.Logger,
	}
	if f.bound <= 0 {
		f.bound = DefaultMaxStaleness
	}
	if f.reconcile <= 0 {
		f.reconcile = DefaultReconcileInterval
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.heartbeat = min(f.bound/4, maxHeartbeat)
	f.stale.Store(true) // nothing is confirmed yet
	f.expiry = time.AfterFunc(time.Hour, f.expire)
	f.expiry.Stop()
	return f
}

// errStale and errNotFollowing are the readiness of a follower that cannot
// vouch for its index.
var (
	errStale        = errors.New("the key index has not been confirmed in step with the database within the staleness bound")
	errNotFollowing = errors.New("not listening for key changes")
)

// Stale reports whether the index may be more than MaxStaleness behind the
// database: true before the first confirmation, and from MaxStaleness after
// the last one until the next. It is one atomic load, for the hot path.
func (f *Follower) Stale() bool { return f.stale.Load() }

// Ready returns nil while the follower listens, has caught up since it last
// connected, and is not stale; an error saying which is missing otherwise.
func (f *Follower) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.following:
		return errNotFollowing
	case f.stale.Load():
		return errStale
	}
	return nil
}

// Age returns how long ago coherence was last confirmed, or a negative
// duration if it never was.
func (f *Follower) Age() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.confirmed.IsZero() {
		return -1
	}
	return time.Since(f.confirmed)
}

// confirm records that the index holds every change acknowledged before at.
func (f *Follower) confirm(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at.After(f.confirmed) {
		f.confirmed = at
	}
	left := f.bound - time.Since(f.confirmed)
	if left <= 0 {
		return // confirmed too late to count: still stale
	}
	f.expiry.Reset(left)
	if f.stale.Swap(false) {
		f.log.Info("key index in step with the database", "max_staleness", f.bound)
	}
}

// expire marks the index stale once MaxStaleness has passed since the last
// confirmation.
func (f *Follower) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if left := f.bound - time.Since(f.confirmed); left > 0 {
		f.expiry.Reset(left)
		return
	}
	if !f.stale.Swap(true) {
		f.log.Warn("key index no longer confirmed in step with the database: usable keys are not verified from memory until it is",
			"max_staleness", f.bound, "following", f.following)
	}
}

// setFollowing records whether a connection listens and has caught up.
func (f *Follower) setFollowing(ok bool) {
	f.mu.Lock()
	f.following = ok
	f.mu.Unlock()
}

// Run follows the key changes committed after the position since (from
// Store.KeyChanges, taken before the index was loaded) until ctx ends,
// reconnecting whenever the connection fails.
func (f *Follower) Run(ctx context.Context, since string) {
	defer f.expiry.Stop()
	pos := since
	retry := minRetry
	var lost, warned time.Time
	for {
		caughtUp, err := f.session(ctx, &pos)
		f.setFollowing(false)
		if ctx.Err() != nil {
			return
		}
		switch {
		case caughtUp:
			retry, lost, warned = minRetry, time.Now(), time.Now()
			f.log.Warn("lost the key change notifications; reconnecting", "err", err)
		case time.Since(warned) >= warnEvery:
			// The first failure, and one in warnEvery after it: an
			// outage is in the log without a line per attempt.
			if lost.IsZero() {
				lost = time.Now()
			}
			warned = time.Now()
			f.log.Warn("cannot listen for key changes; retrying", "err", err, "down_for", time.Since(lost).Round(time.Millisecond))
		default:
			f.log.Debug("cannot listen for key changes; retrying", "err", err, "retry_in", retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, maxRetry)
	}
}

// session runs one listening connection until it fails or ctx ends. It
// reports whether it caught up (reconciled after LISTEN) before failing.
func (f *Follower) session(ctx context.Context, pos *string) (caughtUp bool, err error) {
	var payloads []string
	cfg := f.store.conn.Copy()
	cfg.RuntimeParams["application_name"] = listenerName(cfg.RuntimeParams["application_name"])
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { payloads = append(payloads, n.Payload) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, dbError("listen: connect", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	var channel *string
	if err := conn.QueryRow(ctx, "SELECT 'apikeyd_keys_' || to_hex(hashtext(current_schema()))").Scan(&channel); err != nil {
		return false, dbError("listen: channel name", err)
	}
	if channel == nil {
		return false, errors.New("listen: no schema to listen for: check the search_path of the database URL")
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{*channel}.Sanitize()); err != nil {
		return false, dbError("listen", err)
	}

	// Catch up with what committed before LISTEN took effect; what commits
	// after it is notified.
	start := time.Now()
	if err := f.catchUp(ctx, pos); err != nil {
		return false, err
	}
	f.setFollowing(true)
	f.confirm(start)
	f.log.Info("following key changes", "backend_pid", conn.PgConn().PID(), "channel", *channel, "took", time.Since(start).Round(time.Millisecond))
	nextReconcile := start.Add(f.reconcile)

	for {
		// Wait for a notification, or until the next heartbeat is due.
		wctx, cancel := context.WithTimeout(ctx, f.heartbeat)
		err := conn.PgConn().WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err != nil && !(pgconn.Timeout(err) && wctx.Err() != nil) {
			return true, dbError("listen: wait", err)
		}
		// Round trips on this connection, each reading the keys notified
		// so far (or, with none to read, only a ping), until one brings no
		// new notification: then every change acknowledged before it
		// began is applied, which confirms coherence as of then.
		for {
			at := time.Now()
			batch := payloads
			payloads = nil
			full, err := f.apply(ctx, conn, batch)
			if err != nil {
				return true, err
			}
			if full || at.After(nextReconcile) {
				if err := f.catchUp(ctx, pos); err != nil {
					return true, err
				}
				nextReconcile = at.Add(f.reconcile)
			}
			if len(payloads) == 0 {
				f.confirm(at)
				break
			}
		}
	}
}

// listenerName is the application_name of the listening connection, so
// that operators (and tests) can tell it from the pool's.
func listenerName(name string) string { return name + "-listen" }

// catchUp applies every key and root key changed since *pos and moves
// *pos on, to the position of the keys' read: it was taken first, so the
// root keys' read, from the same *pos, covered everything before it too.
func (f *Follower) catchUp(ctx context.Context, pos *string) error {
	n, roots := 0, 0
	next, err := f.store.KeyChanges(ctx, *pos, func(k *apikey.Key) error {
		f.index.Apply(k)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	_, err = f.store.RootKeyChanges(ctx, *pos, func(rk *apikey.RootKey) error {
		f.index.ApplyRoot(rk)
		roots++
		return nil
	})
	if err != nil {
		return err
	}
	*pos = next
	f.log.Debug("caught up with key changes", "keys", n, "root_keys", roots)
	return nil
}

// apply reads, on the listening connection, the keys named by
// notification payloads that the index is behind on, and applies them;
// with nothing to read, it pings. Either way it makes one round trip at
// least. It reports whether a payload could not be understood, in which
// case the caller reads every change instead.
func (f *Follower) apply(ctx context.Context, conn *pgx.Conn, payloads []string) (full bool, err error) {
	var ids, rootIDs []string
	for _, p := range payloads {
		id, version, hash, ok := parsePayload(p)
		if !ok {
			f.log.Warn("unreadable key change notification; reading every change instead")
			full = true
			continue
		}
		// The trigger of root_keys notifies the same channel; the kind
		// of the ID says which table changed.
		root := strings.HasPrefix(id, apikey.IDKindRootKey+"_")
		held, ok := f.index.Version(hash)
		if root {
			held, ok = f.index.RootVersion(hash)
		}
		if ok && held >= version {
			continue // this replica made the change, or has read it already
		}
		if root {
			rootIDs = append(rootIDs, id)
		} else {
			ids = append(ids, id)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.bound)
	defer cancel()
	if len(rootIDs) > 0 {
		roots, err := queryAll(ctx, conn, scanRootKey, selectRootKey+"WHERE id = ANY($1)", rootIDs)
		if err != nil {
			return full, dbError("listen: read changed root keys", err)
		}
		for _, rk := range roots {
			f.index.ApplyRoot(rk)
		}
		if len(ids) == 0 {
			return full, nil
		}
	}
	if len(ids) == 0 {
		if err := conn.PgConn().Ping(ctx); err != nil {
			return full, dbError("listen: ping", err)
		}
		return full, nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for batch := range slices.Chunk(ids, readBatch) {
		keys, err := queryAll(ctx, conn, scanKey, selectKey+"WHERE id = ANY($1)", batch)
		if err != nil {
			return full, dbError("listen: read changed keys", err)
		}
		for _, k := range keys {
			f.index.Apply(k)
		}
	}
	return full, nil
}

// parsePayload reads "<key id> <version> <hash in hex>".
func parsePayload(p string) (id string, version int64, h apikey.Hash, ok bool) {
	f := strings.Fields(p)
	if len(f) != 3 || f[0] == "" || hex.DecodedLen(len(f[2])) != len(h) {
		return "", 0, h, false
	}
	version, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return "", 0, h, false
	}
	if _, err := hex.Decode(h[:], []byte(f[2])); err != nil {
		return "", 0, h, false
	}
	return f[0], version, h, true
}
