package postgres

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/apikey"
)

// The usage store of docs/limits.md, shared by replicas. Row locks order
// every transaction that touches a balance the same way — the balance row
// (SELECT … FOR UPDATE), then its leases — and batches lock their rows in
// key order, so that concurrent replicas cannot deadlock. Grants of one
// limit serialise on its usage_limits row.

var (
	_ apikey.UsageStore = (*Store)(nil)
	_ apikey.UsageTx    = (*tx)(nil)
)

// inTx runs fn in a transaction of Update, with its retries.
func (s *Store) inTx(ctx context.Context, fn func(t *tx) error) error {
	return s.Update(ctx, func(t apikey.Tx) error { return fn(t.(*tx)) })
}

// GrantRate implements apikey.UsageStore.
func (s *Store) GrantRate(ctx context.Context, g apikey.RateGrant) (res apikey.RateGrantResult, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		res, err = t.grantRate(ctx, g)
		return err
	})
	return res, err
}

func (t *tx) grantRate(ctx context.Context, g apikey.RateGrant) (apikey.RateGrantResult, error) {
	l := g.Limit
	first, cur := l.Window(g.At)
	var lim, dur int64
	// The upsert locks the limit's row (creating it on first use) and
	// returns its definition as it was. It comes first, so that every
	// transaction that writes a limit's grants holds its row before it
	// touches them.
	err := t.tx.QueryRow(ctx, `INSERT INTO usage_limits (subject, limit_name, lim, duration_ms) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subject, limit_name) DO UPDATE SET lim = usage_limits.lim RETURNING lim, duration_ms`,
		g.Subject, l.Name, l.Limit, l.DurationMS).Scan(&lim, &dur)
	if err != nil {
		return apikey.RateGrantResult{}, t.fail("lock limit", err)
	}
	sums, narrowed := sumGrants([]apikey.GrantReturn{g.Return})
	if err := t.returnGrants(ctx, sums, narrowed); err != nil {
		return apikey.RateGrantResult{}, err
	}
	if lim != l.Limit || dur != l.DurationMS {
		if _, err := t.tx.Exec(ctx, "UPDATE usage_limits SET lim = $1, duration_ms = $2 WHERE subject = $3 AND limit_name = $4", l.Limit, l.DurationMS, g.Subject, l.Name); err != nil {
			return apikey.RateGrantResult{}, t.fail("redefine limit", err)
		}
		if dur != l.DurationMS { // slices of another width count nothing now
			if _, err := t.tx.Exec(ctx, "DELETE FROM usage_slices WHERE subject = $1 AND limit_name = $2", g.Subject, l.Name); err != nil {
				return apikey.RateGrantResult{}, t.fail("reset slices", err)
			}
		}
	}
	// Every grant that may be spent in a slice from first on counts,
	// also those recorded after cur: a replica whose clock is ahead may
	// have been granted in them, and the window of any of its admissions
	// includes the slice of this grant. Grants are pruned a window late
	// for the same reason.
	var sum int64
	if err := t.tx.QueryRow(ctx, `SELECT coalesce(sum(granted), 0) FROM usage_slices
		WHERE subject = $1 AND limit_name = $2 AND last_slice >= $3`, g.Subject, l.Name, first).Scan(&sum); err != nil {
		return apikey.RateGrantResult{}, t.fail("sum grants", err)
	}
	free := l.Limit - sum
	n, last := apikey.GrantSize(free, g.Want, g.Need, g.Replicas), cur
	if g.Span > 1 && apikey.SpanGrantFits(l, free, g.SpanWant, g.Replicas) {
		n, last = g.SpanWant, cur+g.Span-1
	}
	if n > 0 {
		if _, err := t.tx.Exec(ctx, addGrants, []string{g.Subject}, []string{l.Name}, []int64{cur}, []int64{last}, []int64{n}); err != nil {
			return apikey.RateGrantResult{}, t.fail("grant", err)
		}
	}
	if _, err := t.tx.Exec(ctx, "DELETE FROM usage_slices WHERE subject = $1 AND limit_name = $2 AND last_slice < $3", g.Subject, l.Name, first-apikey.WindowSlices); err != nil {
		return apikey.RateGrantResult{}, t.fail("prune slices", err)
	}
	return apikey.RateGrantResult{Granted: n, Slice: cur, Last: last, Free: max(0, free-n)}, nil
}

// ReturnGrants implements apikey.UsageStore in three statements whatever
// the batch's size: it locks the limits' rows in key order, as a grant
// does (so that a batch and the grants it races cannot deadlock), then
// returnGrants.
func (s *Store) ReturnGrants(ctx context.Context, returns []apikey.GrantReturn) error {
	sums, narrowed := sumGrants(returns)
	if len(sums) == 0 {
		return nil
	}
	subjects, limits, _, _, _ := grantColumns(sums)
	return s.inTx(ctx, func(t *tx) error {
		if _, err := t.tx.Exec(ctx, `SELECT 1 FROM usage_limits l
			JOIN (SELECT DISTINCT subject, limit_name FROM unnest($1::text[], $2::text[]) AS r(subject, limit_name)) r USING (subject, limit_name)
			ORDER BY l.subject, l.limit_name FOR UPDATE OF l`, subjects, limits); err != nil {
			return t.fail("lock limits", err)
		}
		return t.returnGrants(ctx, sums, narrowed)
	})
}

// addGrants adds granted admissions to usage_slices rows, one per element
// of its arrays (subject, limit_name, slice, last_slice, granted).
const addGrants = `INSERT INTO usage_slices (subject, limit_name, slice, last_slice, granted)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
	ON CONFLICT (subject, limit_name, slice, last_slice) DO UPDATE SET granted = usage_slices.granted + EXCLUDED.granted`

// returnGrants lowers each grant of sums by its amount, never below zero,
// and adds the narrowed admissions to the rows of the slices they were
// spent in; the caller holds the limits' rows.
func (t *tx) returnGrants(ctx context.Context, sums, narrowed map[grantKey]int64) error {
	if len(sums) == 0 {
		return nil
	}
	subjects, limits, first, last, n := grantColumns(sums)
	if _, err := t.tx.Exec(ctx, `UPDATE usage_slices s SET granted = GREATEST(s.granted - r.n, 0)
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS r(subject, limit_name, slice, last_slice, n)
		WHERE s.subject = r.subject AND s.limit_name = r.limit_name AND s.slice = r.slice AND s.last_slice = r.last_slice`,
		subjects, limits, first, last, n); err != nil {
		return t.fail("return grants", err)
	}
	if len(narrowed) == 0 {
		return nil
	}
	subjects, limits, first, last, n = grantColumns(narrowed)
	if _, err := t.tx.Exec(ctx, addGrants, subjects, limits, first, last, n); err != nil {
		return t.fail("narrow grants", err)
	}
	return nil
}

// grantKey names a usage_slices row.
type grantKey struct {
	subject, limit string
	slice, last    int64
}

// sumGrants adds up what returns take off each grant's row and, for
// narrowings, what they add to the rows of the slices they were spent in.
func sumGrants(returns []apikey.GrantReturn) (sums, narrowed map[grantKey]int64) {
	sums, narrowed = map[grantKey]int64{}, map[grantKey]int64{}
	for _, r := range returns {
		if r.N <= 0 {
			continue
		}
		sums[grantKey{r.Subject, r.LimitName, r.Slice, max(r.Last, r.Slice)}] += r.N
		if r.Narrows() {
			narrowed[grantKey{r.Subject, r.LimitName, r.ToSlice, r.ToLast}] += r.N
		}
	}
	return sums, narrowed
}

// grantColumns is the rows of m in key order as the columns unnest takes.
func grantColumns(m map[grantKey]int64) (subjects, limits []string, first, last, n []int64) {
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b grantKey) int {
		return cmp.Or(cmp.Compare(a.subject, b.subject), cmp.Compare(a.limit, b.limit), cmp.Compare(a.slice, b.slice), cmp.Compare(a.last, b.last))
	}) {
		subjects, limits = append(subjects, k.subject), append(limits, k.limit)
		first, last, n = append(first, k.slice), append(last, k.last), append(n, m[k])
	}
	return subjects, limits, first, last, n
}

// balance is a usage_balances row.
type balance struct {
	remaining      int64
	refill         *apikey.Refill
	refilled, next time.Time
}

const selectBalance = `SELECT remaining, refill_interval, refill_amount, refill_mode, refill_day, refilled_at, next_refill_at FROM usage_balances `

func scanBalance(row pgx.Row, extra ...any) (*balance, error) {
	var b balance
	var interval, mode *string
	var amount *int64
	var day *int32
	var refilled, next tstz
	if err := row.Scan(append([]any{&b.remaining, &interval, &amount, &mode, &day, &refilled, &next}, extra...)...); err != nil {
		return nil, err
	}
	if interval != nil {
		b.refill = &apikey.Refill{Interval: apikey.RefillInterval(*interval), Amount: *amount, Mode: apikey.RefillMode(*mode), DayOfMonth: int(*day)}
	}
	b.refilled, b.next = time.Time(refilled), time.Time(next)
	return &b, nil
}

// balanceForUpdate reads the subject's balance and locks its row.
func (t *tx) balanceForUpdate(ctx context.Context, subject string) (*balance, error) {
	b, err := scanBalance(t.tx.QueryRow(ctx, selectBalance+"WHERE subject = $1 FOR UPDATE", subject))
	if err != nil {
		return nil, t.fail("balance", err)
	}
	return b, nil
}

// held locks the subject's leases and returns their sum.
func (t *tx) held(ctx context.Context, subject string) (int64, error) {
	held, err := queryAll(ctx, t.tx, func(row pgx.Row) (int64, error) {
		var n int64
		return n, row.Scan(&n)
	}, "SELECT held FROM usage_leases WHERE subject = $1 ORDER BY replica_id FOR UPDATE", subject)
	if err != nil {
		return 0, t.fail("leases", err)
	}
	var sum int64
	for _, n := range held {
		sum += n
	}
	return sum, nil
}

// refill applies the refills of b due at now, exactly once: the update
// only matches while next_refill_at is the one b was read with.
func (t *tx) refill(ctx context.Context, subject string, b *balance, now time.Time) error {
	if b.refill == nil || b.next.IsZero() || b.next.After(now) {
		return nil
	}
	held, err := t.held(ctx, subject)
	if err != nil {
		return err
	}
	periods, last, after := b.refill.Due(b.next, now)
	remaining := b.refill.Apply(b.remaining, held, periods)
	tag, err := t.tx.Exec(ctx, `UPDATE usage_balances SET remaining = $1, refilled_at = $2, next_refill_at = $3
		WHERE subject = $4 AND next_refill_at = $5`, remaining, tstz(last), tstz(after), subject, tstz(b.next))
	if err != nil {
		return t.fail("refill", err)
	}
	if tag.RowsAffected() == 1 {
		b.remaining, b.refilled, b.next = remaining, micro(last), micro(after)
	}
	return nil
}

// ReserveCredits implements apikey.UsageStore.
func (s *Store) ReserveCredits(ctx context.Context, r apikey.CreditReservation) (lease apikey.CreditLease, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		b, err := t.balanceForUpdate(ctx, r.Subject)
		if err != nil {
			return err
		}
		if err := t.refill(ctx, r.Subject, b, r.Now); err != nil {
			return err
		}
		got := apikey.CreditSliceSize(b.remaining, r.Need, r.Replicas, r.SliceMax)
		if got > 0 {
			if _, err := t.tx.Exec(ctx, `UPDATE usage_balances SET remaining = remaining - LEAST(remaining, $1)
				WHERE subject = $2 AND remaining > 0`, got, r.Subject); err != nil {
				return t.fail("reserve", err)
			}
			if _, err := t.tx.Exec(ctx, `INSERT INTO usage_leases (subject, replica_id, held) VALUES ($1, $2, $3)
				ON CONFLICT (subject, replica_id) DO UPDATE SET held = usage_leases.held + EXCLUDED.held`, r.Subject, r.ReplicaID, got); err != nil {
				return t.fail("lease", err)
			}
			// A replica that holds a lease is alive, whether or not it
			// has sent its first heartbeat yet.
			if err := t.heartbeat(ctx, r.ReplicaID, r.Now); err != nil {
				return err
			}
		}
		lease = apikey.CreditLease{Got: got, Remaining: b.remaining - got, NextRefillAt: b.next}
		return nil
	})
	return lease, err
}

// ReturnCredits implements apikey.UsageStore.
func (s *Store) ReturnCredits(ctx context.Context, replicaID string, returns []apikey.CreditAmount) error {
	returns = sortAmounts(returns)
	return s.inTx(ctx, func(t *tx) error {
		for _, r := range returns {
			if _, err := t.balanceForUpdate(ctx, r.Subject); err != nil {
				if apikey.ErrorCode(err) == apikey.ENOTFOUND {
					continue
				}
				return err
			}
			var held int64
			err := t.tx.QueryRow(ctx, "SELECT held FROM usage_leases WHERE subject = $1 AND replica_id = $2 FOR UPDATE", r.Subject, replicaID).Scan(&held)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return t.fail("lease", err)
			}
			n := min(held, r.N)
			if _, err := t.tx.Exec(ctx, "UPDATE usage_leases SET held = held - $1 WHERE subject = $2 AND replica_id = $3", n, r.Subject, replicaID); err != nil {
				return t.fail("return lease", err)
			}
			if _, err := t.tx.Exec(ctx, "UPDATE usage_balances SET remaining = remaining + $1 WHERE subject = $2", n, r.Subject); err != nil {
				return t.fail("return credits", err)
			}
		}
		return nil
	})
}

// sortAmounts returns amounts in subject order, the order rows are locked in.
func sortAmounts(amounts []apikey.CreditAmount) []apikey.CreditAmount {
	amounts = slices.Clone(amounts)
	slices.SortFunc(amounts, func(a, b apikey.CreditAmount) int { return cmp.Compare(a.Subject, b.Subject) })
	return amounts
}

// ReportSpends implements apikey.UsageStore in one statement whatever the
// batch's size.
func (s *Store) ReportSpends(ctx context.Context, replicaID string, spends []apikey.CreditAmount) error {
	sums := map[string]int64{}
	for _, sp := range spends {
		if sp.N > 0 {
			sums[sp.Subject] += sp.N
		}
	}
	if len(sums) == 0 {
		return nil
	}
	subjects := slices.Sorted(maps.Keys(sums))
	n := make([]int64, len(subjects))
	for i, sub := range subjects {
		n[i] = sums[sub]
	}
	return s.inTx(ctx, func(t *tx) error {
		if _, err := t.tx.Exec(ctx, `UPDATE usage_leases l SET held = GREATEST(l.held - r.n, 0)
			FROM unnest($1::text[], $2::bigint[]) AS r(subject, n)
			WHERE l.subject = r.subject AND l.replica_id = $3`, subjects, n, replicaID); err != nil {
			return t.fail("report spends", err)
		}
		return nil
	})
}

// Balance implements apikey.UsageStore: one statement, so that the
// balance and its leases come from one snapshot. A refill that is due but
// not yet applied is shown applied.
func (s *Store) Balance(ctx context.Context, subject string, now time.Time) (*apikey.Credits, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var held int64
	b, err := scanBalance(s.pool.QueryRow(ctx, `SELECT remaining, refill_interval, refill_amount, refill_mode, refill_day, refilled_at, next_refill_at,
		(SELECT coalesce(sum(held), 0) FROM usage_leases l WHERE l.subject = b.subject)::bigint
		FROM usage_balances b WHERE subject = $1`, subject), &held)
	if err != nil {
		return nil, dbError("balance", err)
	}
	c := &apikey.Credits{Remaining: b.remaining + held, Refill: b.refill, RefilledAt: b.refilled, NextRefillAt: b.next}
	if b.refill != nil && !b.next.IsZero() && !b.next.After(now) {
		periods, last, after := b.refill.Due(b.next, now)
		c.Remaining = b.refill.Apply(b.remaining, held, periods) + held
		c.RefilledAt, c.NextRefillAt = last, after
	}
	c.Remaining = max(c.Remaining, 0) // a debt shows as nothing left
	return c, nil
}

// ApplyRefills implements apikey.UsageStore. Balances another transaction
// has locked are skipped: it is refilling or spending them, and applies
// their refills itself.
func (s *Store) ApplyRefills(ctx context.Context, now time.Time, limit int) (n int, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		subjects, err := queryAll(ctx, t.tx, func(row pgx.Row) (string, error) {
			var s string
			return s, row.Scan(&s)
		}, `SELECT subject FROM usage_balances WHERE next_refill_at <= $1
			ORDER BY next_refill_at, subject LIMIT $2 FOR UPDATE SKIP LOCKED`, tstz(now), limit)
		if err != nil {
			return t.fail("due refills", err)
		}
		for _, subject := range subjects {
			b, err := t.balanceForUpdate(ctx, subject)
			if err != nil {
				return err
			}
			if err := t.refill(ctx, subject, b, now); err != nil {
				return err
			}
		}
		n = len(subjects)
		return nil
	})
	return n, err
}

func (t *tx) heartbeat(ctx context.Context, replicaID string, now time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO usage_replicas (id, seen_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET seen_at = GREATEST(usage_replicas.seen_at, EXCLUDED.seen_at)`, replicaID, tstz(now))
	if err != nil {
		return t.fail("heartbeat", err)
	}
	return nil
}

// Heartbeat implements apikey.UsageStore.
func (s *Store) Heartbeat(ctx context.Context, replicaID string, now time.Time) (live int, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		if err := t.heartbeat(ctx, replicaID, now); err != nil {
			return err
		}
		if err := t.tx.QueryRow(ctx, "SELECT count(*) FROM usage_replicas WHERE seen_at > $1", tstz(now.Add(-apikey.ReplicaLiveFor))).Scan(&live); err != nil {
			return t.fail("count replicas", err)
		}
		return nil
	})
	return max(live, 1), err
}

// ReapLeases implements apikey.UsageStore. Concurrent reapers delete each
// lease once: the one whose DELETE returns it counts it.
func (s *Store) ReapLeases(ctx context.Context, now time.Time) (lost int64, err error) {
	stale := tstz(now.Add(-apikey.LeaseStaleAfter))
	err = s.inTx(ctx, func(t *tx) error {
		lost = 0
		if err := t.tx.QueryRow(ctx, `WITH reaped AS (
				DELETE FROM usage_leases WHERE replica_id NOT IN (SELECT id FROM usage_replicas WHERE seen_at > $1) RETURNING held
			) SELECT coalesce(sum(held), 0)::bigint FROM reaped`, stale).Scan(&lost); err != nil {
			return t.fail("reap leases", err)
		}
		if _, err := t.tx.Exec(ctx, "DELETE FROM usage_replicas WHERE seen_at <= $1", stale); err != nil {
			return t.fail("reap replicas", err)
		}
		return nil
	})
	return lost, err
}

// AddUsage implements apikey.UsageStore, in one statement whose rows are
// locked in key order, so that batches of several replicas cannot
// deadlock.
func (s *Store) AddUsage(ctx context.Context, counts []apikey.UsageCount) error {
	if len(counts) == 0 {
		return nil
	}
	counts = slices.Clone(counts)
	for i := range counts {
		counts[i].Hour = micro(counts[i].Hour).Truncate(time.Hour)
	}
	slices.SortFunc(counts, func(a, b apikey.UsageCount) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), a.Hour.Compare(b.Hour), cmp.Compare(a.Code, b.Code))
	})
	return s.inTx(ctx, func(t *tx) error {
		for _, c := range counts {
			if _, err := t.tx.Exec(ctx, `INSERT INTO usage_hours (key_id, hour, code, project_id, environment_id, owner_id, count, credits_spent)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (key_id, hour, code) DO UPDATE SET count = usage_hours.count + EXCLUDED.count,
					credits_spent = usage_hours.credits_spent + EXCLUDED.credits_spent`,
				c.KeyID, tstz(c.Hour), c.Code, c.ProjectID, c.EnvironmentID, c.OwnerID, c.Count, c.CreditsSpent); err != nil {
				return t.fail("add usage", err)
			}
		}
		return nil
	})
}

// Usage implements apikey.UsageStore.
func (s *Store) Usage(ctx context.Context, f apikey.UsageFilter) ([]apikey.UsageBucket, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var c conds
	switch {
	case f.KeyID != "":
		c.and("key_id = " + c.arg(f.KeyID))
	case f.ProjectID != "":
		c.and("project_id = " + c.arg(f.ProjectID))
	default:
		return nil, apikey.Errorf(apikey.EINVALID, "usage of neither a key nor a project")
	}
	if f.EnvironmentID != "" {
		c.and("environment_id = " + c.arg(f.EnvironmentID))
	}
	if f.OwnerID != "" {
		c.and("owner_id = " + c.arg(f.OwnerID))
	}
	c.and("hour >= " + c.arg(tstz(f.From)))
	c.and("hour < " + c.arg(tstz(f.To)))
	hours, err := queryAll(ctx, s.pool, func(row pgx.Row) (apikey.UsageCount, error) {
		var u apikey.UsageCount
		var hour tstz
		err := row.Scan(&hour, &u.Code, &u.Count, &u.CreditsSpent)
		u.Hour = time.Time(hour)
		return u, err
	}, "SELECT hour, code, sum(count)::bigint, sum(credits_spent)::bigint FROM usage_hours WHERE "+c.String()+" GROUP BY hour, code ORDER BY hour, code", c.args...)
	if err != nil {
		return nil, dbError("usage", err)
	}
	return apikey.BucketUsage(hours, f.Granularity), nil
}

// PruneUsage implements apikey.UsageStore.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (n int64, err error) {
	err = s.inTx(ctx, func(t *tx) error {
		tag, err := t.tx.Exec(ctx, "DELETE FROM usage_hours WHERE hour < $1", tstz(before))
		if err != nil {
			return t.fail("prune usage", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, err
}

// PutBalance implements apikey.UsageTx.
func (t *tx) PutBalance(ctx context.Context, subject string, c *apikey.Credits, now time.Time) error {
	if c == nil {
		if _, err := t.tx.Exec(ctx, "DELETE FROM usage_balances WHERE subject = $1", subject); err != nil {
			return t.fail("delete balance", err)
		}
		return nil
	}
	old, err := t.balanceForUpdate(ctx, subject)
	if err != nil && apikey.ErrorCode(err) != apikey.ENOTFOUND {
		return err
	}
	var held int64
	if old != nil {
		if held, err = t.held(ctx, subject); err != nil {
			return err
		}
	}
	var interval, mode, amount, day any
	var refilled, next time.Time
	if r := c.Refill; r != nil {
		interval, mode, amount, day = string(r.Interval), string(r.Mode), r.Amount, r.DayOfMonth
		next = r.Next(now)
		if old != nil && old.refill != nil && *old.refill == *r {
			next = old.next // the same schedule keeps its next refill
		}
	}
	if old != nil {
		refilled = old.refilled
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO usage_balances (subject, remaining, refill_interval, refill_amount, refill_mode, refill_day, refilled_at, next_refill_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (subject) DO UPDATE SET remaining = EXCLUDED.remaining, refill_interval = EXCLUDED.refill_interval,
			refill_amount = EXCLUDED.refill_amount, refill_mode = EXCLUDED.refill_mode, refill_day = EXCLUDED.refill_day,
			refilled_at = EXCLUDED.refilled_at, next_refill_at = EXCLUDED.next_refill_at`,
		subject, c.Remaining-held, interval, amount, mode, day, tstz(refilled), tstz(next))
	if err != nil {
		return t.fail("put balance", err)
	}
	return nil
}

// AdjustCredits implements apikey.UsageTx.
func (t *tx) AdjustCredits(ctx context.Context, subject string, op apikey.CreditOp, amount int64, now time.Time) (before, after int64, err error) {
	b, err := t.balanceForUpdate(ctx, subject)
	if err != nil {
		return 0, 0, err
	}
	if err := t.refill(ctx, subject, b, now); err != nil {
		return 0, 0, err
	}
	held, err := t.held(ctx, subject)
	if err != nil {
		return 0, 0, err
	}
	remaining, before, after, err := apikey.AdjustBalance(b.remaining, held, op, amount)
	if err != nil {
		return 0, 0, err
	}
	if _, err := t.tx.Exec(ctx, "UPDATE usage_balances SET remaining = $1 WHERE subject = $2", remaining, subject); err != nil {
		return 0, 0, t.fail("adjust credits", err)
	}
	return before, after, nil
}
