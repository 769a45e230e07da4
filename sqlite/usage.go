package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// The usage store of docs/limits.md. SQLite has one writer, so every
// method runs in one write transaction and needs no row locks: the
// conditions of the PostgreSQL store hold here by serialisation.

var (
	_ apikey.UsageStore = (*Store)(nil)
	_ apikey.UsageTx    = (*tx)(nil)
)

// inWrite runs fn in a write transaction.
func (s *Store) inWrite(ctx context.Context, fn func(t *tx) error) error {
	return inTx(ctx, s.write, func(t *sql.Tx) error { return fn(&tx{t}) })
}

// GrantRate implements apikey.UsageStore.
func (s *Store) GrantRate(ctx context.Context, g apikey.RateGrant) (res apikey.RateGrantResult, err error) {
	err = s.inWrite(ctx, func(t *tx) error {
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
	err := t.tx.QueryRowContext(ctx, `INSERT INTO usage_limits (subject, limit_name, lim, duration_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject, limit_name) DO UPDATE SET lim = lim RETURNING lim, duration_ms`,
		g.Subject, l.Name, l.Limit, l.DurationMS).Scan(&lim, &dur)
	if err != nil {
		return apikey.RateGrantResult{}, dbErr("lock limit", err)
	}
	if err := t.returnGrant(ctx, g.Return); err != nil {
		return apikey.RateGrantResult{}, err
	}
	if lim != l.Limit || dur != l.DurationMS {
		if _, err := t.tx.ExecContext(ctx, "UPDATE usage_limits SET lim = ?, duration_ms = ? WHERE subject = ? AND limit_name = ?", l.Limit, l.DurationMS, g.Subject, l.Name); err != nil {
			return apikey.RateGrantResult{}, dbErr("redefine limit", err)
		}
		if dur != l.DurationMS { // slices of another width count nothing now
			if _, err := t.tx.ExecContext(ctx, "DELETE FROM usage_slices WHERE subject = ? AND limit_name = ?", g.Subject, l.Name); err != nil {
				return apikey.RateGrantResult{}, dbErr("reset slices", err)
			}
		}
	}
	// Every grant that may be spent in a slice from first on counts,
	// also those recorded after cur: a replica whose clock is ahead may
	// have been granted in them, and the window of any of its admissions
	// includes the slice of this grant. Grants are pruned a window late
	// for the same reason.
	var sum int64
	if err := t.tx.QueryRowContext(ctx, `SELECT coalesce(sum(granted), 0) FROM usage_slices
		WHERE subject = ? AND limit_name = ? AND last_slice >= ?`, g.Subject, l.Name, first).Scan(&sum); err != nil {
		return apikey.RateGrantResult{}, dbErr("sum grants", err)
	}
	free := l.Limit - sum
	n, last := apikey.GrantSize(free, g.Want, g.Need, g.Replicas), cur
	if g.Span > 1 && apikey.SpanGrantFits(l, free, g.SpanWant, g.Replicas) {
		n, last = g.SpanWant, cur+g.Span-1
	}
	if n > 0 {
		if _, err := t.tx.ExecContext(ctx, addGrant, g.Subject, l.Name, cur, last, n); err != nil {
			return apikey.RateGrantResult{}, dbErr("grant", err)
		}
	}
	if _, err := t.tx.ExecContext(ctx, "DELETE FROM usage_slices WHERE subject = ? AND limit_name = ? AND last_slice < ?", g.Subject, l.Name, first-apikey.WindowSlices); err != nil {
		return apikey.RateGrantResult{}, dbErr("prune slices", err)
	}
	return apikey.RateGrantResult{Granted: n, Slice: cur, Last: last, Free: max(0, free-n)}, nil
}

// addGrant adds granted admissions to the usage_slices row (subject,
// limit_name, slice, last_slice), creating it.
const addGrant = `INSERT INTO usage_slices (subject, limit_name, slice, last_slice, granted) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (subject, limit_name, slice, last_slice) DO UPDATE SET granted = granted + excluded.granted`

// ReturnGrants implements apikey.UsageStore.
func (s *Store) ReturnGrants(ctx context.Context, returns []apikey.GrantReturn) error {
	return s.inWrite(ctx, func(t *tx) error {
		for _, r := range returns {
			if err := t.returnGrant(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// returnGrant lowers the granted count of r's grant by r.N and, when r
// narrows, records them for r's slices instead.
func (t *tx) returnGrant(ctx context.Context, r apikey.GrantReturn) error {
	if r.N <= 0 {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE usage_slices SET granted = max(granted - ?, 0)
		WHERE subject = ? AND limit_name = ? AND slice = ? AND last_slice = ?`, r.N, r.Subject, r.LimitName, r.Slice, max(r.Last, r.Slice)); err != nil {
		return dbErr("return grant", err)
	}
	if !r.Narrows() {
		return nil
	}
	_, err := t.tx.ExecContext(ctx, addGrant, r.Subject, r.LimitName, r.ToSlice, r.ToLast, r.N)
	return dbErr("narrow grant", err)
}

// balance is a usage_balances row.
type balance struct {
	remaining      int64
	refill         *apikey.Refill
	refilled, next micros
}

func (t *tx) balance(ctx context.Context, subject string) (*balance, error) {
	var b balance
	var interval, mode sql.NullString
	var amount, day sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `SELECT remaining, refill_interval, refill_amount, refill_mode, refill_day, refilled_at, next_refill_at
		FROM usage_balances WHERE subject = ?`, subject).Scan(&b.remaining, &interval, &amount, &mode, &day, &b.refilled, &b.next)
	if err != nil {
		return nil, dbErr("balance", err)
	}
	if interval.Valid {
		b.refill = &apikey.Refill{Interval: apikey.RefillInterval(interval.String), Amount: amount.Int64, Mode: apikey.RefillMode(mode.String), DayOfMonth: int(day.Int64)}
	}
	return &b, nil
}

// held is the sum of the subject's leases.
func (t *tx) held(ctx context.Context, subject string) (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(ctx, "SELECT coalesce(sum(held), 0) FROM usage_leases WHERE subject = ?", subject).Scan(&n)
	return n, dbErr("sum leases", err)
}

// refill applies the refills of b due at now, exactly once: the update
// only matches while next_refill_at is the one b was read with.
func (t *tx) refill(ctx context.Context, subject string, b *balance, now time.Time) error {
	next := time.Time(b.next)
	if b.refill == nil || next.IsZero() || next.After(now) {
		return nil
	}
	held, err := t.held(ctx, subject)
	if err != nil {
		return err
	}
	periods, last, after := b.refill.Due(next, now)
	remaining := b.refill.Apply(b.remaining, held, periods)
	res, err := t.tx.ExecContext(ctx, `UPDATE usage_balances SET remaining = ?, refilled_at = ?, next_refill_at = ?
		WHERE subject = ? AND next_refill_at = ?`, remaining, micros(last), micros(after), subject, micros(next))
	if err != nil {
		return dbErr("refill", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		b.remaining, b.refilled, b.next = remaining, micros(last), micros(after)
	}
	return nil
}

// ReserveCredits implements apikey.UsageStore.
func (s *Store) ReserveCredits(ctx context.Context, r apikey.CreditReservation) (lease apikey.CreditLease, err error) {
	err = s.inWrite(ctx, func(t *tx) error {
		b, err := t.balance(ctx, r.Subject)
		if err != nil {
			return err
		}
		if err := t.refill(ctx, r.Subject, b, r.Now); err != nil {
			return err
		}
		got := apikey.CreditSliceSize(b.remaining, r.Need, r.Replicas, r.SliceMax)
		if got > 0 {
			if _, err := t.tx.ExecContext(ctx, `UPDATE usage_balances SET remaining = remaining - min(remaining, ?)
				WHERE subject = ? AND remaining > 0`, got, r.Subject); err != nil {
				return dbErr("reserve", err)
			}
			if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_leases (subject, replica_id, held) VALUES (?, ?, ?)
				ON CONFLICT (subject, replica_id) DO UPDATE SET held = held + excluded.held`, r.Subject, r.ReplicaID, got); err != nil {
				return dbErr("lease", err)
			}
			// A replica that holds a lease is alive, whether or not it
			// has sent its first heartbeat yet.
			if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_replicas (id, seen_at) VALUES (?, ?)
				ON CONFLICT (id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`, r.ReplicaID, micros(r.Now)); err != nil {
				return dbErr("heartbeat", err)
			}
		}
		lease = apikey.CreditLease{Got: got, Remaining: b.remaining - got, NextRefillAt: time.Time(b.next)}
		return nil
	})
	return lease, err
}

// ReturnCredits implements apikey.UsageStore.
func (s *Store) ReturnCredits(ctx context.Context, replicaID string, returns []apikey.CreditAmount) error {
	return s.inWrite(ctx, func(t *tx) error {
		for _, r := range returns {
			var held int64
			err := t.tx.QueryRowContext(ctx, "SELECT held FROM usage_leases WHERE subject = ? AND replica_id = ?", r.Subject, replicaID).Scan(&held)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return dbErr("lease", err)
			}
			n := min(held, r.N)
			if _, err := t.tx.ExecContext(ctx, "UPDATE usage_leases SET held = held - ? WHERE subject = ? AND replica_id = ?", n, r.Subject, replicaID); err != nil {
				return dbErr("return lease", err)
			}
			if _, err := t.tx.ExecContext(ctx, "UPDATE usage_balances SET remaining = remaining + ? WHERE subject = ?", n, r.Subject); err != nil {
				return dbErr("return credits", err)
			}
		}
		return nil
	})
}

// ReportSpends implements apikey.UsageStore.
func (s *Store) ReportSpends(ctx context.Context, replicaID string, spends []apikey.CreditAmount) error {
	return s.inWrite(ctx, func(t *tx) error {
		for _, sp := range spends {
			if _, err := t.tx.ExecContext(ctx, "UPDATE usage_leases SET held = max(held - ?, 0) WHERE subject = ? AND replica_id = ?", sp.N, sp.Subject, replicaID); err != nil {
				return dbErr("report spends", err)
			}
		}
		return nil
	})
}

// Balance implements apikey.UsageStore. A refill that is due but not yet
// applied is shown applied.
func (s *Store) Balance(ctx context.Context, subject string, now time.Time) (c *apikey.Credits, err error) {
	// One read transaction: remaining and held from one snapshot.
	err = inTx(ctx, s.read, func(st *sql.Tx) error {
		t := &tx{st}
		b, err := t.balance(ctx, subject)
		if err != nil {
			return err
		}
		held, err := t.held(ctx, subject)
		if err != nil {
			return err
		}
		c = b.credits(held, now)
		return nil
	})
	return c, err
}

// credits is b as the domain sees it at now, with held in leases.
func (b *balance) credits(held int64, now time.Time) *apikey.Credits {
	c := &apikey.Credits{Remaining: b.remaining + held, Refill: b.refill, RefilledAt: time.Time(b.refilled), NextRefillAt: time.Time(b.next)}
	if b.refill != nil && !c.NextRefillAt.IsZero() && !c.NextRefillAt.After(now) {
		periods, last, after := b.refill.Due(c.NextRefillAt, now)
		c.Remaining = b.refill.Apply(b.remaining, held, periods) + held
		c.RefilledAt, c.NextRefillAt = last, after
	}
	c.Remaining = max(c.Remaining, 0) // a debt shows as nothing left
	return c
}

// ApplyRefills implements apikey.UsageStore.
func (s *Store) ApplyRefills(ctx context.Context, now time.Time, limit int) (n int, err error) {
	err = s.inWrite(ctx, func(t *tx) error {
		subjects, err := queryTx(ctx, t.tx, func(row scanner) (string, error) {
			var s string
			return s, row.Scan(&s)
		}, "SELECT subject FROM usage_balances WHERE next_refill_at <= ? ORDER BY next_refill_at, subject LIMIT ?", micros(now), limit)
		if err != nil {
			return dbErr("due refills", err)
		}
		for _, subject := range subjects {
			b, err := t.balance(ctx, subject)
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

// Heartbeat implements apikey.UsageStore.
func (s *Store) Heartbeat(ctx context.Context, replicaID string, now time.Time) (live int, err error) {
	err = s.inWrite(ctx, func(t *tx) error {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_replicas (id, seen_at) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`, replicaID, micros(now)); err != nil {
			return dbErr("heartbeat", err)
		}
		err := t.tx.QueryRowContext(ctx, "SELECT count(*) FROM usage_replicas WHERE seen_at > ?", micros(now.Add(-apikey.ReplicaLiveFor))).Scan(&live)
		return dbErr("count replicas", err)
	})
	return max(live, 1), err
}

// ReapLeases implements apikey.UsageStore.
func (s *Store) ReapLeases(ctx context.Context, now time.Time) (lost int64, err error) {
	stale := micros(now.Add(-apikey.LeaseStaleAfter))
	err = s.inWrite(ctx, func(t *tx) error {
		held, err := queryTx(ctx, t.tx, func(row scanner) (int64, error) {
			var n int64
			return n, row.Scan(&n)
		}, "DELETE FROM usage_leases WHERE replica_id NOT IN (SELECT id FROM usage_replicas WHERE seen_at > ?) RETURNING held", stale)
		if err != nil {
			return dbErr("reap leases", err)
		}
		lost = 0
		for _, n := range held {
			lost += n
		}
		_, err = t.tx.ExecContext(ctx, "DELETE FROM usage_replicas WHERE seen_at <= ?", stale)
		return dbErr("reap replicas", err)
	})
	return lost, err
}

// AddUsage implements apikey.UsageStore.
func (s *Store) AddUsage(ctx context.Context, counts []apikey.UsageCount) error {
	if len(counts) == 0 {
		return nil
	}
	return s.inWrite(ctx, func(t *tx) error {
		for _, c := range counts {
			if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_hours (key_id, hour, code, project_id, environment_id, owner_id, count, credits_spent)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (key_id, hour, code) DO UPDATE SET count = count + excluded.count, credits_spent = credits_spent + excluded.credits_spent`,
				c.KeyID, micros(c.Hour.Truncate(time.Hour)), c.Code, c.ProjectID, c.EnvironmentID, c.OwnerID, c.Count, c.CreditsSpent); err != nil {
				return dbErr("add usage", err)
			}
		}
		return nil
	})
}

// Usage implements apikey.UsageStore.
func (s *Store) Usage(ctx context.Context, f apikey.UsageFilter) ([]apikey.UsageBucket, error) {
	var c conds
	switch {
	case f.KeyID != "":
		c.and("key_id = ?", f.KeyID)
	case f.ProjectID != "":
		c.and("project_id = ?", f.ProjectID)
	default:
		return nil, apikey.Errorf(apikey.EINVALID, "usage of neither a key nor a project")
	}
	if f.EnvironmentID != "" {
		c.and("environment_id = ?", f.EnvironmentID)
	}
	if f.OwnerID != "" {
		c.and("owner_id = ?", f.OwnerID)
	}
	c.and("hour >= ? AND hour < ?", micros(f.From), micros(f.To))
	hours, err := queryAll(ctx, s.read, func(row scanner) (apikey.UsageCount, error) {
		var u apikey.UsageCount
		var hour micros
		err := row.Scan(&hour, &u.Code, &u.Count, &u.CreditsSpent)
		u.Hour = time.Time(hour)
		return u, err
	}, "SELECT hour, code, sum(count), sum(credits_spent) FROM usage_hours WHERE "+c.String()+" GROUP BY hour, code ORDER BY hour, code", c.args...)
	if err != nil {
		return nil, dbErr("usage", err)
	}
	return apikey.BucketUsage(hours, f.Granularity), nil
}

// PruneUsage implements apikey.UsageStore.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (n int64, err error) {
	err = s.inWrite(ctx, func(t *tx) error {
		res, err := t.tx.ExecContext(ctx, "DELETE FROM usage_hours WHERE hour < ?", micros(before))
		if err != nil {
			return dbErr("prune usage", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// PutBalance implements apikey.UsageTx.
func (t *tx) PutBalance(ctx context.Context, subject string, c *apikey.Credits, now time.Time) error {
	if c == nil {
		_, err := t.tx.ExecContext(ctx, "DELETE FROM usage_balances WHERE subject = ?", subject)
		return dbErr("delete balance", err)
	}
	old, err := t.balance(ctx, subject)
	if err != nil && apikey.ErrorCode(err) != apikey.ENOTFOUND {
		return err
	}
	held, err := t.held(ctx, subject)
	if err != nil {
		return err
	}
	var interval, mode, amount, day any
	var refilled, next micros
	if r := c.Refill; r != nil {
		interval, mode, amount, day = string(r.Interval), string(r.Mode), r.Amount, r.DayOfMonth
		next = micros(r.Next(now))
		if old != nil && old.refill != nil && *old.refill == *r {
			next = old.next // the same schedule keeps its next refill
		}
	}
	if old != nil {
		refilled = old.refilled
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO usage_balances (subject, remaining, refill_interval, refill_amount, refill_mode, refill_day, refilled_at, next_refill_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET remaining = excluded.remaining, refill_interval = excluded.refill_interval,
			refill_amount = excluded.refill_amount, refill_mode = excluded.refill_mode, refill_day = excluded.refill_day,
			refilled_at = excluded.refilled_at, next_refill_at = excluded.next_refill_at`,
		subject, c.Remaining-held, interval, amount, mode, day, refilled, next)
	return dbErr("put balance", err)
}

// AdjustCredits implements apikey.UsageTx.
func (t *tx) AdjustCredits(ctx context.Context, subject string, op apikey.CreditOp, amount int64, now time.Time) (before, after int64, err error) {
	b, err := t.balance(ctx, subject)
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
	_, err = t.tx.ExecContext(ctx, "UPDATE usage_balances SET remaining = ? WHERE subject = ?", remaining, subject)
	return before, after, dbErr("adjust credits", err)
}

// queryTx runs a query in t and scans every row it returns.
func queryTx[T any](ctx context.Context, t *sql.Tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := t.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// dbErr is dbError that lets nil through.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return dbError(op, err)
}
