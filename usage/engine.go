package usage

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Reserver is the central side of the engine's bookkeeping: the part of
// apikey.UsageStore the engine calls. Both stores implement it.
type Reserver interface {
	GrantRate(ctx context.Context, g apikey.RateGrant) (apikey.RateGrantResult, error)
	ReturnGrants(ctx context.Context, returns []apikey.GrantReturn) error
	ReserveCredits(ctx context.Context, r apikey.CreditReservation) (apikey.CreditLease, error)
	ReturnCredits(ctx context.Context, replicaID string, returns []apikey.CreditAmount) error
	ReportSpends(ctx context.Context, replicaID string, spends []apikey.CreditAmount) error
	Heartbeat(ctx context.Context, replicaID string, now time.Time) (live int, err error)
	ReapLeases(ctx context.Context, now time.Time) (lost int64, err error)
}

// DefaultCreditSliceMax is APIKEYD_CREDIT_SLICE_MAX's default: the most
// credits one reservation takes, and so the most a SIGKILL can lose per
// subject a replica was spending.
const DefaultCreditSliceMax = 1000

// emptyFor is how long a replica that found a balance empty answers
// USAGE_EXCEEDED from memory before it asks the store again (sooner if a
// refill falls). An increment made through another replica is seen within
// it; Forget makes the local one seen at once.
const emptyFor = time.Second

// Config configures an Engine.
type Config struct {
	Reserver Reserver
	// ReplicaID names this process's leases; unique per running process.
	ReplicaID string
	// Shared is set when other processes spend the same subjects
	// (replicas on PostgreSQL): rate limits are then granted by the
	// Reserver slice by slice. Unset, the engine is the only spender and
	// counts rate limits in memory alone (exact); credits are reserved
	// either way.
	Shared bool
	// CreditSliceMax caps one credit reservation; DefaultCreditSliceMax
	// when 0.
	CreditSliceMax int64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Engine decides admissions against rate limits and credits from memory,
// reserving from its Reserver when what it holds runs out.
type Engine struct {
	r         Reserver
	replicaID string
	shared    bool
	sliceMax  int64
	now       func() time.Time
	replicas  atomic.Int64

	seed   maphash.Seed
	shards [shardCount]shard

	// returns are grants of ended slices, handed back at the next Flush
	// or by the next grant asked for the same limit, whichever comes
	// first. returnsMu is held while Flush writes them, so that a grant
	// asked for meanwhile waits for them to be written rather than count
	// them as still granted.
	returnsMu sync.Mutex
	returns   map[returnKey][]apikey.GrantReturn
}

const shardCount = 64

type shard struct {
	mu sync.Mutex
	m  map[string]*subjectState
}

// New returns an engine. It has seen no heartbeat yet and sizes
// reservations for one replica until the first Flush.
func New(c Config) *Engine {
	e := &Engine{r: c.Reserver, replicaID: c.ReplicaID, shared: c.Shared, sliceMax: c.CreditSliceMax, now: c.Now, seed: maphash.MakeSeed()}
	if e.sliceMax <= 0 {
		e.sliceMax = DefaultCreditSliceMax
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.replicas.Store(1)
	for i := range e.shards {
		e.shards[i].m = map[string]*subjectState{}
	}
	return e
}

// Subject is one allowance a verify draws on: its ID, its rate limits (nil
// for none) and whether it has a balance (false: unlimited credits).
type Subject struct {
	ID      string
	Limits  []apikey.RateLimit
	Credits bool
}

// Outcome is the engine's verdict.
type Outcome uint8

// Outcomes, in the order they are decided.
const (
	Admitted Outcome = iota
	RateLimited
	UsageExceeded
)

// MaxSubjects is how many subjects one admission may involve: a key and
// its owner.
const MaxSubjects = 2

// errTooMany is Admit's answer to more subjects or limits than a Decision
// holds; validated input never has them.
var errTooMany = apikey.Internal(errors.New("usage: more than 2 subjects or 10 limits in one admission"))

// Decision is what Admit decided and what each subject has left, in the
// order the subjects were given. The caller owns it and may reuse it, so
// that an admission allocates nothing.
type Decision struct {
	Outcome  Outcome
	Subjects [MaxSubjects]SubjectState
	// RetryAfter, for RateLimited, is when the first limit that refused
	// frees an admission.
	RetryAfter time.Time
}

// SubjectState is one subject's limits and credits after an admission.
type SubjectState struct {
	Limits  [apikey.MaxRateLimits]LimitState
	NLimits int
	// Credits is false for a subject with unlimited credits.
	Credits      bool
	Remaining    int64
	NextRefillAt time.Time
}

// LimitState is one limit's state: remaining admissions and when that
// number next grows.
type LimitState struct {
	Remaining int64
	ResetAt   time.Time
}

// subjectState is the memory of one subject. Its mutex is held across a
// reservation from the Reserver, so that concurrent misses of a subject
// share one: those that waited find the reserved slice.
type subjectState struct {
	mu      sync.Mutex
	windows []window
	credits credits
	// dropped is set when Flush removed the state from its shard; an
	// Admit that locked it then looks the subject up again.
	dropped bool
}

// credits is what this process holds of a subject's balance.
type credits struct {
	held       int64 // reserved, unspent
	spent      int64 // spent since the last report
	known      int64 // the unreserved balance at the last reservation
	nextRefill time.Time
	emptyUntil time.Time // answer from memory that the balance is empty
	seen       bool      // known and nextRefill come from a reservation
}

// window counts one rate limit's admissions in the ring of slices that
// overlap a window (apikey.WindowSlices + 1 of them).
type window struct {
	def    apikey.RateLimit
	slices [apikey.WindowSlices + 1]int64 // slice number held at each position
	counts [apikey.WindowSlices + 1]int64

	// Shared mode: the unspent grant, which may be spent in the slices
	// grantSlice to grantLast (more than one for a span grant), the
	// store's free count after it, and the slice in which the store had
	// none. spanWant is the size of the last span grant asked for, and
	// used says the grant was spent from since the last Flush.
	grantSlice, grantLast, grant int64
	free, emptySlice             int64
	spanWant                     int64
	used                         bool
	// spanSpent admissions were spent from the span grant in the slices
	// spanFrom to spanTo since it was last narrowed.
	spanSpent, spanFrom, spanTo int64
}

func (e *Engine) subject(id string) *subjectState {
	sh := &e.shards[maphash.String(e.seed, id)%shardCount]
	sh.mu.Lock()
	s := sh.m[id]
	if s == nil {
		s = &subjectState{}
		sh.m[id] = s
	}
	sh.mu.Unlock()
	return s
}

// Admit decides whether a verify of cost may pass every subject (at most
// MaxSubjects): all rate limits first, then all balances, all or nothing.
// An admission counts against every limit and spends cost from every
// balance; a refusal changes no count and spends nothing. d receives the
// verdict and what each subject has left. An error is the Reserver's; the
// verify is then counted nowhere either.
func (e *Engine) Admit(ctx context.Context, cost int64, subjects []Subject, d *Decision) error {
	var states [MaxSubjects]*subjectState
	n := len(subjects)
	d.Outcome, d.RetryAfter = Admitted, time.Time{}
	if n == 0 {
		return nil
	}
	if n > MaxSubjects {
		return errTooMany
	}
	for i := range subjects {
		if len(subjects[i].Limits) > apikey.MaxRateLimits {
			return errTooMany
		}
	}
	dup := n == 2 && subjects[0].ID == subjects[1].ID
	if dup {
		n = 1 // one allowance, counted once
	}
	for {
		for i := range n {
			states[i] = e.subject(subjects[i].ID)
		}
		lock(states[:n], subjects)
		if !states[0].dropped && (n < 2 || !states[1].dropped) {
			break
		}
		// Flush dropped an idle state between the lookup and the lock:
		// look again, so that every admission counts in the live state.
		unlock(states[:n])
	}
	defer unlock(states[:n])

	now := e.now()
	for i := range n {
		s, sub := states[i], &subjects[i]
		e.define(sub.ID, s, sub.Limits)
		for j := range s.windows {
			w := &s.windows[j]
			if d.Outcome != Admitted {
				break
			}
			ok, err := e.admitsOne(ctx, sub.ID, w, now)
			if err != nil {
				return err
			}
			if !ok {
				d.Outcome = RateLimited
				d.RetryAfter = w.freesAt(now, e.shared)
			}
		}
	}
	if d.Outcome == Admitted {
		for i := range n {
			c := &states[i].credits
			if !subjects[i].Credits || cost == 0 && c.seen {
				continue
			}
			// Cost 0 spends nothing and is never refused; a first one
			// reserves a slice all the same, so that the answer can say
			// what is left.
			ok, err := e.holdCredits(ctx, subjects[i].ID, c, max(cost, 1), now)
			if err != nil {
				return err
			}
			if !ok && cost > 0 {
				d.Outcome = UsageExceeded
				break
			}
		}
	}
	for i := range n {
		s, st := states[i], &d.Subjects[i]
		if d.Outcome == Admitted {
			for j := range s.windows {
				s.windows[j].count(now, e.shared)
			}
			if subjects[i].Credits {
				s.credits.held -= cost
				s.credits.spent += cost
			}
		}
		st.NLimits = len(s.windows)
		for j := range s.windows {
			st.Limits[j] = s.windows[j].state(now, e.shared)
		}
		st.Credits = subjects[i].Credits
		st.Remaining = max(0, s.credits.held+s.credits.known)
		st.NextRefillAt = s.credits.nextRefill
	}
	if dup {
		d.Subjects[1] = d.Subjects[0]
	}
	return nil
}

// lock locks the states in the order of their subjects' IDs, so that two
// verifies naming the same subjects in another order cannot deadlock.
func lock(states []*subjectState, subjects []Subject) {
	switch {
	case len(states) == 1:
		states[0].mu.Lock()
	case subjects[1].ID < subjects[0].ID:
		states[1].mu.Lock()
		states[0].mu.Lock()
	default:
		states[0].mu.Lock()
		states[1].mu.Lock()
	}
}

func unlock(states []*subjectState) {
	for _, s := range states {
		s.mu.Unlock()
	}
}

// define makes the windows of subject's state s those of limits, in their
// order. A window keeps its counts when only its limit changed, and starts
// empty when its duration changed (its slices no longer mean the same).
// The grant a window holds goes back when its limit changed (it was sized
// for the old one: a span grant could otherwise go on being spent for up
// to apikey.SpanTime after the limit was lowered) or the window is gone.
func (e *Engine) define(subject string, s *subjectState, limits []apikey.RateLimit) {
	if len(limits) == len(s.windows) {
		same := true
		for i := range limits {
			same = same && s.windows[i].def == limits[i]
		}
		if same {
			return
		}
	}
	old := s.windows
	s.windows = make([]window, len(limits))
	for i, l := range limits {
		s.windows[i].def = l
		for j := range old {
			o := &old[j]
			if o.def.Name == l.Name && o.def.DurationMS == l.DurationMS {
				s.windows[i] = *o
				o.grant, o.spanSpent = 0, 0 // carried over
				if o.def.Limit != l.Limit {
					e.handBack(subject, &s.windows[i])
				}
				s.windows[i].def = l
			}
		}
	}
	for j := range old {
		e.handBack(subject, &old[j])
	}
}

// admitsOne reports whether w admits one more verify at now. Alone, the
// counts decide; shared, the grant held must cover it, asked of the
// Reserver when it is spent.
func (e *Engine) admitsOne(ctx context.Context, subject string, w *window, now time.Time) (bool, error) {
	first, cur := w.def.Window(now)
	if !e.shared {
		return w.sum(first, cur) < w.def.Limit, nil
	}
	var ret apikey.GrantReturn
	if !w.holds(cur) {
		// The grant held may not be spent any more: it goes back with
		// the next grant asked for, or at the next Flush.
		e.queue(w.narrow(subject))
		ret = w.release(subject)
		w.grantSlice, w.grantLast = cur, cur
	}
	if w.grant > 0 {
		w.used = true
		return true, nil
	}
	if w.emptySlice == cur {
		e.queue(ret)
		return false, nil
	}
	// A span grant still held is spent: what was spent from it is
	// narrowed against its own row, or left there, before another grant
	// takes its place (its spends must never be taken off another row) —
	// in the grant's own transaction, as a hand-back would be.
	if ret.N == 0 {
		ret = w.narrow(subject)
	}
	w.spanSpent = 0
	if err := e.returnQueued(ctx, subject, w.def.Name); err != nil {
		e.queue(ret)
		return false, err
	}
	span, spanWant := e.span(w, first, cur)
	res, err := e.r.GrantRate(ctx, apikey.RateGrant{Subject: subject, Limit: w.def, At: now, Want: 1, Need: w.need(cur),
		Replicas: int(e.replicas.Load()), Span: span, SpanWant: spanWant, Return: ret})
	if err != nil {
		e.queue(ret)
		return false, err
	}
	if res.Granted > 0 && res.Slice <= cur && cur <= res.Last {
		w.grantSlice, w.grantLast, w.grant = res.Slice, res.Last, res.Granted
		if w.spanning() {
			w.spanWant = res.Granted
		}
	}
	w.free = res.Free
	if w.grant == 0 {
		w.emptySlice = cur
		return false, nil
	}
	w.used = true
	return true, nil
}

// need is what w expects to admit in slice cur: twice the most it
// admitted in the last slice or so far in this one, or 0 (no estimate)
// when it admitted nothing in either.
func (w *window) need(cur int64) int64 {
	var n int64
	for p, k := range w.slices {
		if k == cur || k == cur-1 {
			n = max(n, w.counts[p])
		}
	}
	return 2 * n
}

// spanning reports whether the grant w holds (or last held, spent) is a
// span grant.
func (w *window) spanning() bool { return w.grantLast > w.grantSlice }

// holds reports whether w's grant may be spent in slice cur.
func (w *window) holds(cur int64) bool {
	return w.grantSlice <= cur && cur <= w.grantLast
}

// narrow is the narrowing of w's span grant to the slices its spends
// since the last narrowing fell in (docs/limits.md), or nothing when they
// are fewer than the limit's NarrowMin: those stay counted in the span.
func (w *window) narrow(subject string) apikey.GrantReturn {
	if w.spanSpent < w.def.NarrowMin() { // NarrowMin is at least 1
		return apikey.GrantReturn{}
	}
	r := apikey.GrantReturn{Subject: subject, LimitName: w.def.Name, Slice: w.grantSlice, Last: w.grantLast,
		N: w.spanSpent, ToSlice: w.spanFrom, ToLast: w.spanTo}
	w.spanSpent = 0
	return r
}

// release gives up w's grant: what is unspent of it, to be handed back.
// The narrowing of its spends must have been taken first.
func (w *window) release(subject string) apikey.GrantReturn {
	r := apikey.GrantReturn{Subject: subject, LimitName: w.def.Name, Slice: w.grantSlice, Last: w.grantLast, N: w.grant}
	w.grantSlice, w.grantLast, w.grant = 1, 0, 0 // holds no slice
	w.spanSpent = 0                              // what was not narrowed stays in the grant's row
	return r
}

// span is the span grant to ask for at slice cur (docs/limits.md): a
// limit counted in slices shorter than apikey.SpanTime asks for enough
// for twice what this process admitted in the last window, scaled to the
// span, at least half the last span grant, and at least twice it when
// that ran out before its end; never more than apikey.SpanCap, and no span grant at all for a
// limit whose SpanCap is below minSpanWant (under 80 per replica), which
// is better served slice by slice. 1, 0: ask for this slice alone.
func (e *Engine) span(w *window, first, cur int64) (span, want int64) {
	span = w.def.SpanSlices()
	limitCap := apikey.SpanCap(w.def, int(e.replicas.Load()))
	if span <= 1 || limitCap < minSpanWant {
		return 1, 0
	}
	// Half the last span grant, too: a subject whose demand paused (its
	// last span grant went back unused, and the window forgot it) is
	// likely to resume at about its old rate.
	want = max(minSpanWant, (2*w.sum(first, cur)*span+apikey.WindowSlices-1)/apikey.WindowSlices, w.spanWant/2)
	if w.spanWant > 0 && w.spanning() && cur <= w.grantLast {
		want = max(want, 2*w.spanWant) // the last span grant ran out early
	}
	return span, min(want, limitCap)
}

// minSpanWant is the smallest span grant asked for: a subject seen for
// the first time is granted this much for the span, and more as soon as
// it is seen to need it.
const minSpanWant = 8

// handBack queues w's unspent grant for the next Flush.
func (e *Engine) handBack(subject string, w *window) {
	e.queue(w.narrow(subject))
	e.queue(w.release(subject))
}

// returnKey names the limit a queued hand-back belongs to.
type returnKey struct{ subject, limit string }

// queue keeps a hand-back for the next Flush.
func (e *Engine) queue(r apikey.GrantReturn) {
	if r.N == 0 {
		return
	}
	e.returnsMu.Lock()
	if e.returns == nil {
		e.returns = map[returnKey][]apikey.GrantReturn{}
	}
	k := returnKey{r.Subject, r.LimitName}
	e.returns[k] = append(e.returns[k], r)
	e.returnsMu.Unlock()
}

// returnQueued writes the hand-backs queued for one limit before a grant
// of that limit is asked for: a grant still counted in the store would
// make the window look full (with one replica, the last grant took all
// of it). It waits for a Flush that is writing hand-backs.
func (e *Engine) returnQueued(ctx context.Context, subject, limit string) error {
	e.returnsMu.Lock()
	k := returnKey{subject, limit}
	pending := e.returns[k]
	delete(e.returns, k)
	e.returnsMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := e.r.ReturnGrants(ctx, pending); err != nil {
		for _, r := range pending {
			e.queue(r)
		}
		return err
	}
	return nil
}

// sum is the count of admissions in the slices first to cur.
func (w *window) sum(first, cur int64) int64 {
	var n int64
	for p, k := range w.slices {
		if k >= first && k <= cur {
			n += w.counts[p]
		}
	}
	return n
}

// count records an admission at now.
func (w *window) count(now time.Time, shared bool) {
	_, cur := w.def.Window(now)
	p := cur % int64(len(w.slices))
	if w.slices[p] != cur {
		w.slices[p], w.counts[p] = cur, 0
	}
	w.counts[p]++
	if shared {
		w.grant--
		if w.spanning() {
			if w.spanSpent == 0 {
				w.spanFrom = cur
			}
			w.spanSpent, w.spanTo = w.spanSpent+1, cur
		}
	}
}

// state is what the verify answers about w at now.
func (w *window) state(now time.Time, shared bool) LimitState {
	first, cur := w.def.Window(now)
	remaining := w.def.Limit - w.sum(first, cur)
	if shared && w.holds(cur) {
		// What this replica holds plus what the window had left at its
		// last grant: the others' unspent grants are not known here.
		remaining = min(remaining, w.grant+w.free)
	}
	return LimitState{Remaining: max(0, remaining), ResetAt: w.resetAt(first, cur)}
}

// resetAt is when the oldest counted slice that holds an admission stops
// overlapping the window, and remaining grows; with none, when an
// admission made now would stop counting.
func (w *window) resetAt(first, cur int64) time.Time {
	oldest := cur
	for p, k := range w.slices {
		if k >= first && k < oldest && w.counts[p] > 0 {
			oldest = k
		}
	}
	return time.UnixMilli((oldest+1)*w.def.SliceMS() + w.def.DurationMS).UTC()
}

// freesAt is when a refused verify may be admitted: alone, when the
// oldest admission leaves the window; shared, also no later than the next
// slice, in which a new grant may be asked.
func (w *window) freesAt(now time.Time, shared bool) time.Time {
	first, cur := w.def.Window(now)
	at := w.resetAt(first, cur)
	if next := time.UnixMilli((cur + 1) * w.def.SliceMS()).UTC(); shared && next.Before(at) {
		at = next
	}
	return at
}

// empty reports whether w counts nothing at now and holds no grant.
func (w *window) empty(now time.Time) bool {
	first, cur := w.def.Window(now)
	return w.sum(first, cur) == 0 && w.grant == 0
}

// holdCredits makes sure c holds cost credits, reserving from the
// Reserver if it does not, and reports whether it does.
func (e *Engine) holdCredits(ctx context.Context, subject string, c *credits, cost int64, now time.Time) (bool, error) {
	if c.held >= cost {
		return true, nil
	}
	if now.Before(c.emptyUntil) {
		return false, nil
	}
	// Report this subject's spends first, so that a refill or a set that
	// the reservation finds counts none of them as still held (a replace
	// refill makes the total the amount minus what leases hold).
	if c.spent > 0 {
		if err := e.r.ReportSpends(ctx, e.replicaID, []apikey.CreditAmount{{Subject: subject, N: c.spent}}); err != nil {
			return false, err
		}
		c.spent = 0
	}
	lease, err := e.r.ReserveCredits(ctx, apikey.CreditReservation{
		Subject: subject, ReplicaID: e.replicaID, Need: cost - c.held,
		Replicas: int(e.replicas.Load()), SliceMax: e.sliceMax, Now: now,
	})
	if err != nil {
		return false, err
	}
	c.held += lease.Got
	c.known, c.nextRefill, c.seen = lease.Remaining, lease.NextRefillAt, true
	if c.held >= cost {
		c.emptyUntil = time.Time{}
		return true, nil
	}
	c.emptyUntil = now.Add(emptyFor)
	if !c.nextRefill.IsZero() && c.nextRefill.Before(c.emptyUntil) {
		c.emptyUntil = c.nextRefill
	}
	return false, nil
}

// Refresh forgets what the engine concluded about subject's emptiness, so
// that its next verify asks the store again: call it after the balance or
// the limits changed through this process.
func (e *Engine) Refresh(subject string) {
	s := e.subject(subject)
	s.mu.Lock()
	s.credits.emptyUntil = time.Time{}
	for i := range s.windows {
		s.windows[i].emptySlice = 0
	}
	s.mu.Unlock()
}

// Settle reports subject's spends not yet reported, hands back the
// credits this process holds of it, and runs fn while no admission of
// subject can run in this process, so that fn finds a store that knows
// every spend this process made and holds nothing of it: a balance read or
// changed in fn (a set, a decrement) is exact on one node; other replicas'
// spends are reported within a flush and their slices are spent as
// docs/limits.md says. It then forgets what the engine concluded about
// the subject's emptiness, as Refresh does. fn must not use the engine.
func (e *Engine) Settle(ctx context.Context, subject string, fn func() error) error {
	var s *subjectState
	for {
		s = e.subject(subject)
		s.mu.Lock()
		if !s.dropped {
			break
		}
		s.mu.Unlock()
	}
	defer s.mu.Unlock()
	if n := s.credits.spent; n > 0 {
		if err := e.r.ReportSpends(ctx, e.replicaID, []apikey.CreditAmount{{Subject: subject, N: n}}); err != nil {
			return err
		}
		s.credits.spent = 0
	}
	if n := s.credits.held; n > 0 {
		if err := e.r.ReturnCredits(ctx, e.replicaID, []apikey.CreditAmount{{Subject: subject, N: n}}); err != nil {
			return err
		}
		s.credits.held = 0
	}
	err := fn()
	s.credits.emptyUntil = time.Time{}
	for i := range s.windows {
		s.windows[i].emptySlice = 0
	}
	return err
}

// FlushStats says what a Flush did.
type FlushStats struct {
	// Replicas is the live replica count the Reserver reported.
	Replicas int
	// Returned counts the rate-limit admissions handed back.
	Returned int64
	// Reported counts the credits reported as spent.
	Reported int64
	// Lost counts the credits of dead replicas' leases reaped.
	Lost int64
}

// Flush does the engine's periodic bookkeeping (every
// APIKEYD_LAST_USED_FLUSH): heartbeat, hand back the grants of ended
// slices, report spends, reap dead replicas' leases, and forget idle
// subjects. Work that failed is kept for the next Flush; the first error
// is returned.
func (e *Engine) Flush(ctx context.Context) (FlushStats, error) {
	now := e.now()
	var st FlushStats
	live, err := e.r.Heartbeat(ctx, e.replicaID, now)
	if err == nil {
		e.replicas.Store(int64(live))
		st.Replicas = live
	}
	spends := e.sweep(now, false)
	err = errors.Join(err, e.send(ctx, spends, nil, &st))
	lost, rerr := e.r.ReapLeases(ctx, now)
	st.Lost = lost
	return st, errors.Join(err, rerr)
}

// Close hands back everything the engine holds — every grant, every
// credit it has not spent — after reporting its spends, as a replica must
// on SIGTERM. The engine must not be used afterwards.
func (e *Engine) Close(ctx context.Context) (FlushStats, error) {
	var st FlushStats
	spends := e.sweep(e.now(), true)
	var held []apikey.CreditAmount
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for id, s := range sh.m {
			s.mu.Lock()
			if s.credits.held > 0 {
				held = append(held, apikey.CreditAmount{Subject: id, N: s.credits.held})
				s.credits.held = 0
			}
			s.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	return st, e.send(ctx, spends, held, &st)
}

// sweep collects the spends to report and queues the grants to hand back
// (those of ended slices; all of them when all is set), and drops the
// subjects that hold and count nothing.
func (e *Engine) sweep(now time.Time, all bool) []apikey.CreditAmount {
	var spends []apikey.CreditAmount
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for id, s := range sh.m {
			s.mu.Lock()
			idle := s.credits.held == 0 && s.credits.spent == 0
			if s.credits.spent > 0 {
				spends = append(spends, apikey.CreditAmount{Subject: id, N: s.credits.spent})
				s.credits.spent = 0
			}
			for j := range s.windows {
				w := &s.windows[j]
				// A grant goes back when it may no longer be spent, and a
				// span grant also when nothing was spent from it since
				// the last Flush, so that it does not keep what it holds
				// from the other replicas for the rest of its span.
				_, cur := w.def.Window(now)
				if all || !w.holds(cur) || w.spanning() && !w.used {
					e.handBack(id, w)
				} else {
					e.queue(w.narrow(id))
				}
				w.used = false
				idle = idle && w.empty(now)
			}
			if idle {
				s.dropped = true
				delete(sh.m, id)
			}
			s.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	return spends
}

// send reports spends, then hands back the queued grants and held
// credits. What fails to go is put back, to go at the next Flush.
func (e *Engine) send(ctx context.Context, spends, held []apikey.CreditAmount, st *FlushStats) error {
	var errs []error
	if len(spends) > 0 {
		if err := e.r.ReportSpends(ctx, e.replicaID, spends); err != nil {
			errs = append(errs, err)
			for _, sp := range spends {
				e.restore(sp.Subject, func(c *credits) { c.spent += sp.N })
			}
		} else {
			for _, sp := range spends {
				st.Reported += sp.N
			}
		}
	}
	if err := e.sendReturns(ctx, st); err != nil {
		errs = append(errs, err)
	}
	if len(held) > 0 {
		if err := e.r.ReturnCredits(ctx, e.replicaID, held); err != nil {
			errs = append(errs, err)
			for _, h := range held {
				e.restore(h.Subject, func(c *credits) { c.held += h.N })
			}
		}
	}
	return errors.Join(errs...)
}

// sendReturns writes the queued hand-backs, holding returnsMu while it
// does (see Engine.returns). It takes no subject's lock, which admissions
// hold when they queue.
func (e *Engine) sendReturns(ctx context.Context, st *FlushStats) error {
	e.returnsMu.Lock()
	defer e.returnsMu.Unlock()
	var returns []apikey.GrantReturn
	for _, rs := range e.returns {
		returns = append(returns, rs...)
	}
	e.returns = nil
	if len(returns) == 0 {
		return nil
	}
	if err := e.r.ReturnGrants(ctx, returns); err != nil {
		// A grant not handed back only lowers admissions until its window
		// ends; it is not retried.
		return err
	}
	for _, r := range returns {
		if !r.Narrows() {
			st.Returned += r.N
		}
	}
	return nil
}

// restore puts a failed report back into subject's state.
func (e *Engine) restore(subject string, fn func(c *credits)) {
	for {
		s := e.subject(subject)
		s.mu.Lock()
		if !s.dropped {
			fn(&s.credits)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}
