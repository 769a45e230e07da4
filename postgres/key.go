package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/internal/dbvalue"
)

// keyColumn maps one column of the keys table to a field of apikey.Key. The
// table keyTable is the only place that lists the columns: every query
// selects keyColumns and scans with scanKey, InsertKey writes every column
// and UpdateKey the mutable ones, so a new field is one line here.
type keyColumn struct {
	name string // the column
	// read is the expression a query selects; empty means name.
	read string
	// mutable columns are written by UpdateKey as well as InsertKey.
	mutable bool
	// dest is where a read of the column goes.
	dest func(r *keyRow) any
	// arg is what a write stores.
	arg func(k *apikey.Key) any
}

// keyRow is a key being read, with the columns that are decoded after the
// scan.
type keyRow struct {
	k         apikey.Key
	hash      []byte
	allowlist string
}

// keyTable lists the columns of keys, in the order queries select them.
// version is the store's own and written by the queries (change_xid by a trigger).
var keyTable = []keyColumn{
	{name: "id", dest: func(r *keyRow) any { return &r.k.ID }, arg: func(k *apikey.Key) any { return k.ID }},
	{name: "project_id", dest: func(r *keyRow) any { return &r.k.ProjectID }, arg: func(k *apikey.Key) any { return k.ProjectID }},
	{name: "environment_id", read: "COALESCE(environment_id, '')",
		dest: func(r *keyRow) any { return &r.k.EnvironmentID }, arg: func(k *apikey.Key) any { return orNull(k.EnvironmentID) }},
	{name: "name", mutable: true, dest: func(r *keyRow) any { return &r.k.Name }, arg: func(k *apikey.Key) any { return k.Name }},
	{name: "key_prefix", dest: func(r *keyRow) any { return &r.k.KeyPrefix }, arg: func(k *apikey.Key) any { return k.KeyPrefix }},
	{name: "key_hash", dest: func(r *keyRow) any { return &r.hash }, arg: func(k *apikey.Key) any { return k.Hash[:] }},
	{name: "scopes", mutable: true, dest: func(r *keyRow) any { return &r.k.Scopes }, arg: func(k *apikey.Key) any { return scopes(k.Scopes) }},
	{name: "expires_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.ExpiresAt) }, arg: func(k *apikey.Key) any { return tstz(k.ExpiresAt) }},
	{name: "last_used_at", dest: func(r *keyRow) any { return (*tstz)(&r.k.LastUsedAt) }, arg: func(k *apikey.Key) any { return tstz(k.LastUsedAt) }},
	{name: "created_at", dest: func(r *keyRow) any { return (*tstz)(&r.k.CreatedAt) }, arg: func(k *apikey.Key) any { return tstz(k.CreatedAt) }},
	{name: "updated_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.UpdatedAt) }, arg: func(k *apikey.Key) any { return tstz(k.UpdatedAt) }},
	{name: "revoked_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.RevokedAt) }, arg: func(k *apikey.Key) any { return tstz(k.RevokedAt) }},
	{name: "replaced_by_key_id", read: "COALESCE(replaced_by_key_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.ReplacedByKeyID }, arg: func(k *apikey.Key) any { return orNull(k.ReplacedByKeyID) }},
	{name: "grace_expires_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.GraceExpiresAt) }, arg: func(k *apikey.Key) any { return tstz(k.GraceExpiresAt) }},
	{name: "replaces_key_id", read: "COALESCE(replaces_key_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.ReplacesKeyID }, arg: func(k *apikey.Key) any { return orNull(k.ReplacesKeyID) }},
	{name: "rotation_interval_days", read: "COALESCE(rotation_interval_days, 0)", mutable: true,
		dest: func(r *keyRow) any { return &r.k.RotationIntervalDays }, arg: func(k *apikey.Key) any { return orNull(k.RotationIntervalDays) }},
	{name: "next_rotation_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.NextRotationAt) }, arg: func(k *apikey.Key) any { return tstz(k.NextRotationAt) }},
	{name: "rotation_webhook_url", read: "COALESCE(rotation_webhook_url, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.RotationWebhookURL }, arg: func(k *apikey.Key) any { return orNull(k.RotationWebhookURL) }},
	{name: "webhook_secret_sealed", mutable: true, dest: func(r *keyRow) any { return &r.k.WebhookSecretSealed }, arg: func(k *apikey.Key) any { return k.WebhookSecretSealed }},
	{name: "owner_id", read: "COALESCE(owner_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.OwnerID }, arg: func(k *apikey.Key) any { return orNull(k.OwnerID) }},
	{name: "meta", mutable: true, dest: func(r *keyRow) any { return &r.k.Meta }, arg: func(k *apikey.Key) any { return metaValue(k.Meta) }},
	{name: "ip_allowlist", read: "COALESCE(ip_allowlist, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.allowlist }, arg: func(k *apikey.Key) any { return orNull(k.IPAllowlist.Encode()) }},
	{name: "disabled_at", mutable: true, dest: func(r *keyRow) any { return (*tstz)(&r.k.DisabledAt) }, arg: func(k *apikey.Key) any { return tstz(k.DisabledAt) }},
	{name: "disabled_reason", read: "COALESCE(disabled_reason, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.DisabledReason }, arg: func(k *apikey.Key) any { return orNull(k.DisabledReason) }},
	{name: "revocation_reason", read: "COALESCE(revocation_reason, '')", mutable: true,
		dest: func(r *keyRow) any { return (*string)(&r.k.RevocationReason) }, arg: func(k *apikey.Key) any { return orNull(string(k.RevocationReason)) }},
	{name: "source", dest: func(r *keyRow) any { return (*string)(&r.k.Source) }, arg: func(k *apikey.Key) any { return string(k.SourceOrIssued()) }},
	{name: "lineage_id", dest: func(r *keyRow) any { return &r.k.LineageID }, arg: func(k *apikey.Key) any { return k.LineageID }},
	{name: "ratelimits", mutable: true, dest: func(r *keyRow) any { return (*dbvalue.RateLimits)(&r.k.RateLimits) }, arg: func(k *apikey.Key) any { return dbvalue.RateLimits(k.RateLimits) }},
	{name: "has_credits", mutable: true, dest: func(r *keyRow) any { return &r.k.HasCredits }, arg: func(k *apikey.Key) any { return k.HasCredits }},
	{name: "version", dest: func(r *keyRow) any { return &r.k.Version }}, // arg nil: the queries write it
}

// The statements built from keyTable.
var (
	keyColumns   = readList()
	selectKey    = "SELECT " + keyColumns + " FROM keys "
	insertKeySQL = insertSQL()
	updateKeySQL = updateSQL()
)

func readList() string {
	var b strings.Builder
	for i, c := range keyTable {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(cmp.Or(c.read, c.name))
	}
	return b.String()
}

func insertSQL() string {
	var cols, vals []string
	for _, c := range keyTable {
		if c.arg != nil {
			cols, vals = append(cols, c.name), append(vals, "$"+strconv.Itoa(len(vals)+1))
		}
	}
	return "INSERT INTO keys (" + strings.Join(cols, ", ") + ", version) VALUES (" + strings.Join(vals, ", ") + ", 1)"
}

func updateSQL() string {
	var set []string
	for _, c := range keyTable {
		if c.mutable {
			set = append(set, c.name+" = $"+strconv.Itoa(len(set)+1))
		}
	}
	n := len(set)
	return "UPDATE keys SET " + strings.Join(set, ", ") + ", version = version + 1" +
		" WHERE id = $" + strconv.Itoa(n+1) + " AND version = $" + strconv.Itoa(n+2) + " RETURNING version"
}

// keyArgs returns the values InsertKey (all) or UpdateKey (mutable only)
// writes, in keyTable's order, followed by extra.
func keyArgs(k *apikey.Key, mutableOnly bool, extra ...any) []any {
	args := make([]any, 0, len(keyTable)+len(extra))
	for _, c := range keyTable {
		if c.arg != nil && (c.mutable || !mutableOnly) {
			args = append(args, c.arg(k))
		}
	}
	return append(args, extra...)
}

// statusSQL is a key's status at the instant of the placeholder now,
// decided in the same order as apikey.Key.Status. NULL comparisons are not
// true, so an unset expires_at never expires and an unset grace_expires_at
// is already over.
//
// keyStatusSQL is that of a key, which may be disabled; statusSQL that of
// a root key, which cannot.
func keyStatusSQL(now string) string { return statusCase(now, "disabled_at IS NOT NULL") }

func statusSQL(now string) string { return statusCase(now, "false") }

func statusCase(now, disabled string) string {
	return `CASE
	WHEN revoked_at IS NOT NULL THEN 'revoked'
	WHEN expires_at <= ` + now + ` THEN 'expired'
	WHEN replaced_by_key_id IS NOT NULL AND (grace_expires_at IS NULL OR grace_expires_at <= ` + now + `) THEN 'rotated'
	WHEN ` + disabled + ` THEN 'disabled'
	WHEN replaced_by_key_id IS NULL THEN 'active'
	ELSE 'rotating' END`
}

// scanPage is how many keys ScanKeys reads at a time.
const scanPage = 1000

// scanKey reads a row of keyColumns.
func scanKey(row pgx.Row) (*apikey.Key, error) {
	r := &keyRow{}
	dest := make([]any, len(keyTable))
	for i, c := range keyTable {
		dest[i] = c.dest(r)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	k := &r.k
	if len(r.hash) != len(k.Hash) {
		return nil, fmt.Errorf("key %s: hash of %d bytes", k.ID, len(r.hash))
	}
	copy(k.Hash[:], r.hash)
	var err error
	if k.IPAllowlist, err = apikey.DecodeAllowlist(r.allowlist); err != nil {
		return nil, fmt.Errorf("key %s: decode ip_allowlist: %w", k.ID, err)
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	return k, nil
}

// scopes returns the scopes to store: never NULL.
func scopes(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// metaValue is the meta to store: its compact JSON as text, or NULL.
func metaValue(m []byte) any {
	if m == nil {
		return nil
	}
	return string(m)
}

// oneKey reads the key of a single-row query.
func oneKey(ctx context.Context, q querier, op, query string, args ...any) (*apikey.Key, error) {
	k, err := scanKey(q.QueryRow(ctx, query, args...))
	if err != nil {
		return nil, dbError(op, err)
	}
	return k, nil
}

// Key returns the key with the given ID, or ENOTFOUND.
func (s *Store) Key(ctx context.Context, id string) (*apikey.Key, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return oneKey(ctx, s.pool, "get key", selectKey+"WHERE id = $1", id)
}

// KeyByHash returns the key stored under h, or ENOTFOUND.
func (s *Store) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return oneKey(ctx, s.pool, "get key by hash", selectKey+"WHERE key_hash = $1", h[:])
}

// Keys lists a project's keys newest first.
func (s *Store) Keys(ctx context.Context, f apikey.KeyFilter) ([]*apikey.Key, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var c conds
	c.and("project_id = " + c.arg(f.ProjectID))
	if f.EnvironmentID != "" {
		c.and("environment_id = " + c.arg(f.EnvironmentID))
	}
	if f.OwnerID != "" {
		c.and("owner_id = " + c.arg(f.OwnerID))
	}
	if f.Status != "" {
		c.and(keyStatusSQL(c.arg(tstz(f.Now))) + " = " + c.arg(string(f.Status)))
	}
	if f.After != nil {
		c.and(fmt.Sprintf("(created_at, id) < (%s, %s)", c.arg(tstz(f.After.Time)), c.arg(f.After.ID)))
	}
	keys, err := queryAll(ctx, s.pool, scanKey, selectKey+"WHERE "+c.String()+
		" ORDER BY created_at DESC, id DESC LIMIT "+c.arg(limit(f.Limit)), c.args...)
	if err != nil {
		return nil, dbError("list keys", err)
	}
	return keys, nil
}

// ExpiringKeys lists the keys of a project that are usable at f.Now and
// expire no later than f.Before, soonest first.
func (s *Store) ExpiringKeys(ctx context.Context, f apikey.ExpiringFilter) ([]*apikey.Key, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var c conds
	c.and("project_id = " + c.arg(f.ProjectID))
	if f.EnvironmentID != "" {
		c.and("environment_id = " + c.arg(f.EnvironmentID))
	}
	now := c.arg(tstz(f.Now))
	c.and(fmt.Sprintf("expires_at > %s AND expires_at <= %s", now, c.arg(tstz(f.Before))))
	c.and(fmt.Sprintf("revoked_at IS NULL AND (replaced_by_key_id IS NULL OR grace_expires_at > %s)", now))
	if f.After != nil {
		c.and(fmt.Sprintf("(expires_at, id) > (%s, %s)", c.arg(tstz(f.After.Time)), c.arg(f.After.ID)))
	}
	keys, err := queryAll(ctx, s.pool, scanKey, selectKey+"WHERE "+c.String()+
		" ORDER BY expires_at, id LIMIT "+c.arg(limit(f.Limit)), c.args...)
	if err != nil {
		return nil, dbError("list expiring keys", err)
	}
	return keys, nil
}

// ScanKeys calls fn for every key in ID order, reading scanPage keys at a
// time, each page bounded on its own. A page is read before fn sees its
// keys, so fn may use the store.
func (s *Store) ScanKeys(ctx context.Context, fn func(k *apikey.Key) error) error {
	after := ""
	for {
		keys, err := s.scanPage(ctx, after)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if len(keys) < scanPage {
			return nil
		}
		after = keys[len(keys)-1].ID
	}
}

func (s *Store) scanPage(ctx context.Context, after string) ([]*apikey.Key, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	keys, err := queryAll(ctx, s.pool, scanKey, selectKey+"WHERE id > $1 ORDER BY id LIMIT $2", after, scanPage)
	if err != nil {
		return nil, dbError("scan keys", err)
	}
	return keys, nil
}

// TouchKeys moves last_used_at forward in one statement. Replicas flush
// overlapping batches concurrently; the rows are locked in ID order so that
// two batches cannot deadlock, and a batch is idempotent, so it is simply
// run again if PostgreSQL reports a deadlock anyway.
func (s *Store) TouchKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.touch(ctx, "keys", uses)
}

// touch moves last_used_at forward in table (keys or root_keys) for
// TouchKeys and TouchRootKeys.
func (s *Store) touch(ctx context.Context, table string, uses []apikey.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	latest := make(map[string]time.Time, len(uses))
	for _, u := range uses {
		if at := micro(u.At); at.After(latest[u.KeyID]) {
			latest[u.KeyID] = at
		}
	}
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ats := make([]time.Time, len(ids))
	for i, id := range ids {
		ats[i] = latest[id]
	}
	touch := `WITH u AS (
			SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
		), locked AS (
			SELECT k.id, u.at FROM ` + table + ` k JOIN u ON k.id = u.id
			WHERE k.last_used_at IS NULL OR k.last_used_at < u.at
			ORDER BY k.id FOR UPDATE OF k
		)
		UPDATE ` + table + ` k SET last_used_at = locked.at FROM locked
		WHERE k.id = locked.id AND (k.last_used_at IS NULL OR k.last_used_at < locked.at)`
	var err error
	for range updateAttempts {
		if _, err = s.pool.Exec(ctx, touch, ids, ats); !serializationFailure(err) {
			break
		}
	}
	if err != nil {
		return dbError("touch "+table, err)
	}
	return nil
}

// KeyForUpdate returns the key with the given ID and locks its row until
// the transaction ends. A concurrent KeyForUpdate of the same key waits,
// then reads the row as the first transaction left it.
func (t *tx) KeyForUpdate(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := scanKey(t.tx.QueryRow(ctx, selectKey+"WHERE id = $1 FOR UPDATE", id))
	if err != nil {
		return nil, t.fail("get key for update", err)
	}
	return k, nil
}

// InsertKey stores k with Version 1 and sets k.Version to match.
func (t *tx) InsertKey(ctx context.Context, k *apikey.Key) error {
	if _, err := t.tx.Exec(ctx, insertKeySQL, keyArgs(k, false)...); err != nil {
		return t.fail("insert key", err)
	}
	k.Version = 1
	return nil
}

// UpdateKey writes the mutable fields of k if its stored version is still
// k.Version, and sets k.Version to the new one.
func (t *tx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	err := t.tx.QueryRow(ctx, updateKeySQL, keyArgs(k, true, k.ID, k.Version)...).Scan(&k.Version)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return t.fail("update key", err)
	}
	var exists bool
	if err := t.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM keys WHERE id = $1)", k.ID).Scan(&exists); err != nil {
		return t.fail("update key", err)
	}
	if !exists {
		return fmt.Errorf("update key: %w", apikey.ErrNotFound)
	}
	return &apikey.Error{Code: apikey.ECONFLICT, Message: "the key has changed since it was read"}
}

// snapshotPattern is the text form of a pg_snapshot, xmin:xmax:xip,…
var snapshotPattern = regexp.MustCompile(`^[0-9]+:[0-9]+:([0-9]+(,[0-9]+)*)?$`)

// KeyChanges calls fn for every key whose change committed after the
// snapshot since, and returns the current snapshot. Positions are
// pg_snapshot texts (xmin:xmax:in-progress…), taken by PostgreSQL itself, so
// no replica's clock has a say: a key has changed since a snapshot when the
// snapshot does not see the transaction that last wrote it (change_xid, set
// by the keys_changed trigger). That includes transactions that were open
// when the snapshot was taken and committed later, however much later.
//
// Both the new snapshot and the keys are read in one REPEATABLE READ
// transaction, so the next call starts exactly where this one's view ends.
// The index on change_xid narrows the read to transactions from the
// snapshot's xmin on; a transaction that stays open for long anywhere on
// the server holds xmin back, and the read then re-checks every key written
// since it began (and reports only those the snapshot did not see).
func (s *Store) KeyChanges(ctx context.Context, since string, fn func(k *apikey.Key) error) (string, error) {
	if since != "" && !snapshotPattern.MatchString(since) {
		return "", apikey.Errorf(apikey.EINVALID, "not a position of this store: %q", since)
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", dbError("key changes", err)
	}
	defer tx.Rollback(ctx)
	var next string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&next); err != nil {
		return "", dbError("key changes", err)
	}
	if since != "" {
		rows, err := tx.Query(ctx, selectKey+`WHERE change_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
			AND NOT pg_visible_in_snapshot(change_xid, $1::text::pg_snapshot)`, since)
		if err != nil {
			return "", changesError(err)
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				return "", dbError("key changes", err)
			}
			if err := fn(k); err != nil {
				return "", err
			}
		}
		if err := rows.Err(); err != nil {
			return "", changesError(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", dbError("key changes", err)
	}
	return next, nil
}

// changesError translates an error of the KeyChanges query: a position that
// looks like a snapshot but is not one (xmin after xmax, say) is EINVALID.
func changesError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == invalidTextRepresentation {
		return &apikey.Error{Code: apikey.EINVALID, Message: "not a position of this store", Err: err}
	}
	return dbError("key changes", err)
}
