// Package rotation runs scheduled key rotation (SPEC §6): a Scheduler that
// every APIKEYD_ROTATION_CHECK_INTERVAL claims the keys whose rotation has
// come, and works the outbox of deliveries, sending each signed replacement
// to its webhook with retries and backoff.
//
// The transactional steps — claiming, leasing, recording an outcome — are
// methods of service.Service, so that every key they change reaches the
// service's verification index. This package only decides when to run
// them, makes the HTTP attempts outside any transaction, logs and counts.
// Any number of schedulers may run against one store, in one process or in
// several replicas: claims and leases are taken inside write transactions,
// so no key is rotated twice and no delivery attempted by two at once.
package rotation

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/metrics"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/webhook"
)

// Defaults of Options.
const (
	// DefaultBatch is how many due keys one claim transaction takes.
	DefaultBatch = 100
	// DefaultWorkers is how many attempts run at once; a scheduler leases
	// no more deliveries than it can attempt right away.
	DefaultWorkers = 8
	// DefaultLease outlasts an attempt (webhook.Timeout) and the writing of
	// its outcome, with room to spare.
	DefaultLease = webhook.Timeout + 10*time.Second
	// maxBatchesPerCheck bounds the claiming done in one check, so that
	// deliveries are not held up behind a large backlog.
	maxBatchesPerCheck = 10
	// idleFloor is the shortest pause between two rounds that found
	// nothing to do, so that a clock skew cannot turn the loop into a spin.
	idleFloor = 20 * time.Millisecond
)

// Options configure a Scheduler.
type Options struct {
	Service *service.Service
	// Sender makes the HTTP attempts; webhook.Client in production.
	Sender service.Sender
	// Policy is the delivery policy; a zero Lease means DefaultLease.
	Policy service.RotationPolicy
	// Interval is how often due rotations are looked for
	// (APIKEYD_ROTATION_CHECK_INTERVAL); pending deliveries are looked at
	// at least this often too.
	Interval time.Duration
	// Batch and Workers default to DefaultBatch and DefaultWorkers.
	Batch, Workers int
	Metrics        *metrics.Metrics // nil records nothing
	Logger         *slog.Logger     // nil discards
}

// Scheduler claims due rotations and delivers them.
type Scheduler struct {
	o    Options
	log  *slog.Logger
	kick chan struct{}
	wg   sync.WaitGroup
}

// New returns a Scheduler; it does nothing until Start.
func New(o Options) *Scheduler {
	if o.Policy.Lease <= 0 {
		o.Policy.Lease = DefaultLease
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{o: o, log: log, kick: make(chan struct{}, 1)}
}

// Start checks for due rotations at once and then every Interval, and
// works deliveries as they come due, until ctx ends. It returns at once;
// Wait waits for the scheduler to stop. An attempt in flight when ctx ends
// is finished (it is bounded by webhook.Timeout) and its outcome recorded,
// so that a graceful stop neither wastes an attempt nor holds a lease.
func (s *Scheduler) Start(ctx context.Context) {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.claimLoop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.deliverLoop(ctx)
	}()
}

// Wait blocks until a started scheduler has stopped.
func (s *Scheduler) Wait() { s.wg.Wait() }

// RunOnce claims every due rotation and makes every attempt due now, then
// returns. Tests and tools use it instead of Start.
func (s *Scheduler) RunOnce(ctx context.Context) {
	s.claim(ctx, -1)
	for s.deliver(ctx) > 0 {
	}
}

func (s *Scheduler) claimLoop(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if s.claim(ctx, maxBatchesPerCheck) > 0 {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// claim takes due keys a batch at a time until none are left or maxBatches
// batches are done (negative: no limit), and returns how many it took.
func (s *Scheduler) claim(ctx context.Context, maxBatches int) int {
	total := 0
	for i := 0; maxBatches < 0 || i < maxBatches; i++ {
		n, err := s.o.Service.ClaimDueRotations(ctx, s.o.Batch)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claiming due rotations failed; trying again at the next check", "err", err)
			}
			break
		}
		if n < s.o.Batch {
			break
		}
	}
	if total > 0 {
		s.log.Info("claimed due rotations", "keys", total)
	}
	return total
}

func (s *Scheduler) deliverLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return
		}
		if s.deliver(ctx) == s.o.Workers {
			timer.Reset(0) // there may be more waiting
			continue
		}
		timer.Reset(s.untilNext(ctx))
	}
}

// untilNext returns how long to sleep before the next delivery is due,
// at most Interval.
func (s *Scheduler) untilNext(ctx context.Context) time.Duration {
	at, err := s.o.Service.NextDeliveryAt(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("looking for pending deliveries failed", "err", err)
		}
		return s.o.Interval
	}
	if at.IsZero() {
		return s.o.Interval
	}
	return min(max(time.Until(at), idleFloor), s.o.Interval)
}

// deliver leases as many due deliveries as there are workers, attempts them
// in parallel and records the outcomes. It returns how many it leased.
func (s *Scheduler) deliver(ctx context.Context) int {
	attempts, finished, err := s.o.Service.LeaseDeliveries(ctx, s.o.Policy, s.o.Workers)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("leasing due deliveries failed", "err", err)
		}
		return 0
	}
	for _, f := range finished {
		s.report(f)
	}
	// Attempts already leased are made and recorded even if ctx ends now.
	bg := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(bg, webhook.Timeout)
			sendErr := a.Send(sctx, s.o.Sender)
			cancel()
			f, err := s.o.Service.FinishAttempt(bg, s.o.Policy, a, sendErr)
			if err != nil {
				s.log.Error("recording a delivery attempt failed; the lease will run out and the attempt be repeated",
					"attempt", a, "err", err)
				return
			}
			s.report(f)
		})
	}
	wg.Wait()
	return len(attempts)
}

func (s *Scheduler) report(f service.Finished) {
	attrs := []any{"webhook_id", f.DeliveryID, "key_id", f.KeyID, "attempts", f.Attempts}
	switch f.Outcome {
	case service.OutcomeDelivered:
		s.o.Metrics.WebhookDelivery("delivered")
		s.o.Metrics.Rotation("scheduled", "rotated")
		s.log.Info("key rotated on schedule", attrs...)
	case service.OutcomeFailed:
		s.o.Metrics.WebhookDelivery("failed")
		s.log.Warn("rotation webhook attempt failed; will retry", append(attrs, "reason", f.Reason, "next_attempt_at", f.NextAttemptAt)...)
	case service.OutcomeAbandoned:
		s.o.Metrics.WebhookDelivery("abandoned")
		s.o.Metrics.Rotation("scheduled", "failed")
		s.log.Warn("scheduled rotation abandoned; the replacement is revoked", append(attrs, "reason", f.Reason)...)
	case service.OutcomeStale:
		s.log.Info("delivery outcome ignored: the delivery had moved on", attrs...)
	}
}
