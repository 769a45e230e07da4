package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// deliveryColumns are the columns scanDelivery reads, in its order.
const deliveryColumns = `id, key_id, replacement_key_id, state, payload_sealed, attempts,
	next_attempt_at, leased_until, COALESCE(last_error, ''), created_at, updated_at`

const selectDelivery = "SELECT " + deliveryColumns + " FROM deliveries "

func scanDelivery(row scanner) (*apikey.Delivery, error) {
	var d apikey.Delivery
	var state string
	err := row.Scan(&d.ID, &d.KeyID, &d.ReplacementKeyID, &state, &d.PayloadSealed, &d.Attempts,
		(*micros)(&d.NextAttemptAt), (*micros)(&d.LeasedUntil), &d.LastError,
		(*micros)(&d.CreatedAt), (*micros)(&d.UpdatedAt))
	if err != nil {
		return nil, err
	}
	d.State = apikey.DeliveryState(state)
	return &d, nil
}

func oneDelivery(op string, row *sql.Row) (*apikey.Delivery, error) {
	d, err := scanDelivery(row)
	if err != nil {
		return nil, dbError(op, err)
	}
	return d, nil
}

// Delivery returns the delivery with the given ID, or ENOTFOUND.
func (s *Store) Delivery(ctx context.Context, id string) (*apikey.Delivery, error) {
	return oneDelivery("get delivery", s.read.QueryRowContext(ctx, selectDelivery+"WHERE id = ?", id))
}

// NextDeliveryAt returns when the first pending delivery may be attempted,
// or the zero time when none is pending.
func (s *Store) NextDeliveryAt(ctx context.Context) (time.Time, error) {
	var at micros
	err := s.read.QueryRowContext(ctx, `SELECT MIN(MAX(next_attempt_at, COALESCE(leased_until, 0)))
		FROM deliveries WHERE state = 'pending'`).Scan(&at)
	if err != nil {
		return time.Time{}, dbError("next delivery", err)
	}
	return time.Time(at), nil
}

// DueKeysForUpdate returns the keys due for rotation at now, oldest due
// first. The transaction holds SQLite's write lock, so they are locked
// already and no other writer can claim them.
func (t *tx) DueKeysForUpdate(ctx context.Context, now time.Time, limit int) ([]*apikey.Key, error) {
	at := now.UnixMicro()
	rows, err := t.tx.QueryContext(ctx, selectKey+`WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= ?
		AND rotation_interval_days IS NOT NULL AND rotation_webhook_url IS NOT NULL
		AND revoked_at IS NULL AND replaced_by_key_id IS NULL AND disabled_at IS NULL
		AND (expires_at IS NULL OR expires_at > ?)
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.key_id = keys.id AND d.state = 'pending')
		ORDER BY next_rotation_at, id LIMIT ?`, at, at, limit)
	if err != nil {
		return nil, dbError("due keys", err)
	}
	defer rows.Close()
	keys := []*apikey.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbError("due keys", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("due keys", err)
	}
	return keys, nil
}

// InsertDelivery adds d to the outbox.
func (t *tx) InsertDelivery(ctx context.Context, d *apikey.Delivery) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO deliveries (
		id, key_id, replacement_key_id, state, payload_sealed, attempts,
		next_attempt_at, leased_until, last_error, created_at, updated_at
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.KeyID, d.ReplacementKeyID, string(d.State), d.PayloadSealed, d.Attempts,
		micros(d.NextAttemptAt), micros(d.LeasedUntil), orNull(d.LastError),
		micros(d.CreatedAt), micros(d.UpdatedAt))
	if err != nil {
		return dbError("insert delivery", err)
	}
	return nil
}

// DueDeliveriesForUpdate returns the pending deliveries that may be
// attempted at now, soonest first; the write lock covers them already.
func (t *tx) DueDeliveriesForUpdate(ctx context.Context, now time.Time, limit int) ([]*apikey.Delivery, error) {
	at := now.UnixMicro()
	rows, err := t.tx.QueryContext(ctx, selectDelivery+`WHERE state = 'pending' AND next_attempt_at <= ?
		AND (leased_until IS NULL OR leased_until <= ?)
		ORDER BY next_attempt_at, id LIMIT ?`, at, at, limit)
	if err != nil {
		return nil, dbError("due deliveries", err)
	}
	defer rows.Close()
	out := []*apikey.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, dbError("due deliveries", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("due deliveries", err)
	}
	return out, nil
}

// DeliveryForUpdate returns the delivery with the given ID, locked by the
// transaction's write lock.
func (t *tx) DeliveryForUpdate(ctx context.Context, id string) (*apikey.Delivery, error) {
	return oneDelivery("get delivery for update", t.tx.QueryRowContext(ctx, selectDelivery+"WHERE id = ?", id))
}

// UpdateDelivery writes the mutable fields of d.
func (t *tx) UpdateDelivery(ctx context.Context, d *apikey.Delivery) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE deliveries SET
		state = ?, payload_sealed = ?, attempts = ?, next_attempt_at = ?, leased_until = ?,
		last_error = ?, updated_at = ?
		WHERE id = ?`,
		string(d.State), d.PayloadSealed, d.Attempts, micros(d.NextAttemptAt), micros(d.LeasedUntil),
		orNull(d.LastError), micros(d.UpdatedAt), d.ID)
	if err != nil {
		return dbError("update delivery", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError("update delivery", err)
	}
	if n == 0 {
		return fmt.Errorf("update delivery: %w", apikey.ErrNotFound)
	}
	return nil
}
