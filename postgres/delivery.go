package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/apikey"
)

// deliveryColumns are the columns scanDelivery reads, in its order.
const deliveryColumns = `id, key_id, replacement_key_id, state, payload_sealed, attempts,
	next_attempt_at, leased_until, COALESCE(last_error, ''), created_at, updated_at`

// selectDelivery starts a query for deliveries.
const selectDelivery = "SELECT " + deliveryColumns + " FROM deliveries "

// dueKeysSQL selects the keys whose scheduled rotation has come at $1, at
// most $2 of them, oldest due first, and locks them, skipping those that a
// concurrent transaction holds.
//
// Under READ COMMITTED the rows are read from the statement's snapshot, and
// a row that another transaction changed and committed since is locked in
// its newest version, on which PostgreSQL evaluates the WHERE clause again
// before returning it. A scheduler that claimed a key cleared its
// next_rotation_at, so a key claimed concurrently drops out here. The NOT
// EXISTS is read from the snapshot only and so cannot see a delivery
// inserted by a transaction that committed after this statement began;
// the unique index deliveries_pending_key catches that case.
var dueKeysSQL = selectKey + `WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= $1
	AND rotation_interval_days IS NOT NULL AND rotation_webhook_url IS NOT NULL
	AND revoked_at IS NULL AND replaced_by_key_id IS NULL AND disabled_at IS NULL
	AND (expires_at IS NULL OR expires_at > $1)
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.key_id = keys.id AND d.state = 'pending')
	ORDER BY next_rotation_at, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED`

// dueDeliveriesSQL selects the pending deliveries that may be attempted at
// $1, at most $2 of them, soonest first, and locks them, skipping those
// that a concurrent transaction holds. As with dueKeysSQL, a row committed
// since the statement began is judged again in its newest version: one
// that another worker leased (leased_until after $1) or finished drops out.
const dueDeliveriesSQL = selectDelivery + `WHERE state = 'pending' AND next_attempt_at <= $1
	AND (leased_until IS NULL OR leased_until <= $1)
	ORDER BY next_attempt_at, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED`

func scanDelivery(row pgx.Row) (*apikey.Delivery, error) {
	var d apikey.Delivery
	var state string
	err := row.Scan(&d.ID, &d.KeyID, &d.ReplacementKeyID, &state, &d.PayloadSealed, &d.Attempts,
		(*tstz)(&d.NextAttemptAt), (*tstz)(&d.LeasedUntil), &d.LastError,
		(*tstz)(&d.CreatedAt), (*tstz)(&d.UpdatedAt))
	if err != nil {
		return nil, err
	}
	d.State = apikey.DeliveryState(state)
	return &d, nil
}

// Delivery returns the delivery with the given ID, or ENOTFOUND.
func (s *Store) Delivery(ctx context.Context, id string) (*apikey.Delivery, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	d, err := scanDelivery(s.pool.QueryRow(ctx, selectDelivery+"WHERE id = $1", id))
	if err != nil {
		return nil, dbError("get delivery", err)
	}
	return d, nil
}

// NextDeliveryAt returns when the first pending delivery may be attempted,
// or the zero time when none is pending. GREATEST ignores a NULL
// leased_until, and MIN over no rows is NULL, the zero time.
func (s *Store) NextDeliveryAt(ctx context.Context) (time.Time, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var at tstz
	err := s.pool.QueryRow(ctx, `SELECT MIN(GREATEST(next_attempt_at, leased_until))
		FROM deliveries WHERE state = 'pending'`).Scan(&at)
	if err != nil {
		return time.Time{}, dbError("next delivery", err)
	}
	return time.Time(at), nil
}

// DueKeysForUpdate returns the keys due for rotation at now, oldest due
// first, locked; keys another transaction holds are skipped (dueKeysSQL).
func (t *tx) DueKeysForUpdate(ctx context.Context, now time.Time, limit int) ([]*apikey.Key, error) {
	keys, err := queryAll(ctx, t.tx, scanKey, dueKeysSQL, tstz(now), limit)
	if err != nil {
		return nil, t.fail("due keys", err)
	}
	return keys, nil
}

// InsertDelivery adds d to the outbox. A second pending delivery for one
// key violates deliveries_pending_key: ECONFLICT.
func (t *tx) InsertDelivery(ctx context.Context, d *apikey.Delivery) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO deliveries (
		id, key_id, replacement_key_id, state, payload_sealed, attempts,
		next_attempt_at, leased_until, last_error, created_at, updated_at
	) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.ID, d.KeyID, d.ReplacementKeyID, string(d.State), d.PayloadSealed, d.Attempts,
		tstz(d.NextAttemptAt), tstz(d.LeasedUntil), orNull(d.LastError),
		tstz(d.CreatedAt), tstz(d.UpdatedAt))
	if err != nil {
		return t.fail("insert delivery", err)
	}
	return nil
}

// DueDeliveriesForUpdate returns the pending deliveries that may be
// attempted at now, soonest first, locked; deliveries another transaction
// holds are skipped (dueDeliveriesSQL).
func (t *tx) DueDeliveriesForUpdate(ctx context.Context, now time.Time, limit int) ([]*apikey.Delivery, error) {
	ds, err := queryAll(ctx, t.tx, scanDelivery, dueDeliveriesSQL, tstz(now), limit)
	if err != nil {
		return nil, t.fail("due deliveries", err)
	}
	return ds, nil
}

// DeliveryForUpdate returns the delivery with the given ID and locks its
// row until the transaction ends, waiting for a transaction that holds it.
func (t *tx) DeliveryForUpdate(ctx context.Context, id string) (*apikey.Delivery, error) {
	d, err := scanDelivery(t.tx.QueryRow(ctx, selectDelivery+"WHERE id = $1 FOR UPDATE", id))
	if err != nil {
		return nil, t.fail("get delivery for update", err)
	}
	return d, nil
}

// UpdateDelivery writes the mutable fields of d. Making it pending while
// its key has another pending delivery violates deliveries_pending_key:
// ECONFLICT.
func (t *tx) UpdateDelivery(ctx context.Context, d *apikey.Delivery) error {
	tag, err := t.tx.Exec(ctx, `UPDATE deliveries SET
		state = $1, payload_sealed = $2, attempts = $3, next_attempt_at = $4, leased_until = $5,
		last_error = $6, updated_at = $7
		WHERE id = $8`,
		string(d.State), d.PayloadSealed, d.Attempts, tstz(d.NextAttemptAt), tstz(d.LeasedUntil),
		orNull(d.LastError), tstz(d.UpdatedAt), d.ID)
	if err != nil {
		return t.fail("update delivery", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update delivery: %w", apikey.ErrNotFound)
	}
	return nil
}
