package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
	scopes    string
	allowlist string
}

// keyTable lists the columns of keys, in the order queries select them.
// version and change_seq are the store's own and written by the queries.
var keyTable = []keyColumn{
	{name: "id", dest: func(r *keyRow) any { return &r.k.ID }, arg: func(k *apikey.Key) any { return k.ID }},
	{name: "project_id", dest: func(r *keyRow) any { return &r.k.ProjectID }, arg: func(k *apikey.Key) any { return k.ProjectID }},
	{name: "environment_id", read: "COALESCE(environment_id, '')",
		dest: func(r *keyRow) any { return &r.k.EnvironmentID }, arg: func(k *apikey.Key) any { return orNull(k.EnvironmentID) }},
	{name: "name", mutable: true, dest: func(r *keyRow) any { return &r.k.Name }, arg: func(k *apikey.Key) any { return k.Name }},
	{name: "key_prefix", dest: func(r *keyRow) any { return &r.k.KeyPrefix }, arg: func(k *apikey.Key) any { return k.KeyPrefix }},
	{name: "key_hash", dest: func(r *keyRow) any { return &r.hash }, arg: func(k *apikey.Key) any { return k.Hash[:] }},
	{name: "scopes", mutable: true, dest: func(r *keyRow) any { return &r.scopes }, arg: func(k *apikey.Key) any { return scopesValue(k.Scopes) }},
	{name: "expires_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.ExpiresAt) }, arg: func(k *apikey.Key) any { return micros(k.ExpiresAt) }},
	{name: "last_used_at", dest: func(r *keyRow) any { return (*micros)(&r.k.LastUsedAt) }, arg: func(k *apikey.Key) any { return micros(k.LastUsedAt) }},
	{name: "created_at", dest: func(r *keyRow) any { return (*micros)(&r.k.CreatedAt) }, arg: func(k *apikey.Key) any { return micros(k.CreatedAt) }},
	{name: "updated_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.UpdatedAt) }, arg: func(k *apikey.Key) any { return micros(k.UpdatedAt) }},
	{name: "revoked_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.RevokedAt) }, arg: func(k *apikey.Key) any { return micros(k.RevokedAt) }},
	{name: "replaced_by_key_id", read: "COALESCE(replaced_by_key_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.ReplacedByKeyID }, arg: func(k *apikey.Key) any { return orNull(k.ReplacedByKeyID) }},
	{name: "grace_expires_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.GraceExpiresAt) }, arg: func(k *apikey.Key) any { return micros(k.GraceExpiresAt) }},
	{name: "replaces_key_id", read: "COALESCE(replaces_key_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.ReplacesKeyID }, arg: func(k *apikey.Key) any { return orNull(k.ReplacesKeyID) }},
	{name: "rotation_interval_days", read: "COALESCE(rotation_interval_days, 0)", mutable: true,
		dest: func(r *keyRow) any { return &r.k.RotationIntervalDays }, arg: func(k *apikey.Key) any { return orNull(k.RotationIntervalDays) }},
	{name: "next_rotation_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.NextRotationAt) }, arg: func(k *apikey.Key) any { return micros(k.NextRotationAt) }},
	{name: "rotation_webhook_url", read: "COALESCE(rotation_webhook_url, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.RotationWebhookURL }, arg: func(k *apikey.Key) any { return orNull(k.RotationWebhookURL) }},
	{name: "webhook_secret_sealed", mutable: true, dest: func(r *keyRow) any { return &r.k.WebhookSecretSealed }, arg: func(k *apikey.Key) any { return k.WebhookSecretSealed }},
	{name: "owner_id", read: "COALESCE(owner_id, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.k.OwnerID }, arg: func(k *apikey.Key) any { return orNull(k.OwnerID) }},
	{name: "meta", mutable: true, dest: func(r *keyRow) any { return &r.k.Meta }, arg: func(k *apikey.Key) any { return metaValue(k.Meta) }},
	{name: "ip_allowlist", read: "COALESCE(ip_allowlist, '')", mutable: true,
		dest: func(r *keyRow) any { return &r.allowlist }, arg: func(k *apikey.Key) any { return orNull(k.IPAllowlist.Encode()) }},
	{name: "disabled_at", mutable: true, dest: func(r *keyRow) any { return (*micros)(&r.k.DisabledAt) }, arg: func(k *apikey.Key) any { return micros(k.DisabledAt) }},
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
			cols, vals = append(cols, c.name), append(vals, "?")
		}
	}
	return "INSERT INTO keys (" + strings.Join(cols, ", ") + ", version, change_seq) VALUES (" +
		strings.Join(vals, ", ") + ", 1, " + nextChangeSeq + ")"
}

func updateSQL() string {
	var set []string
	for _, c := range keyTable {
		if c.mutable {
			set = append(set, c.name+" = ?")
		}
	}
	return "UPDATE keys SET " + strings.Join(set, ", ") + ", version = version + 1, change_seq = " + nextChangeSeq +
		" WHERE id = ? AND version = ? RETURNING version"
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

// statusSQL is a key's status at the instant bound to its two parameters,
// decided in the same order as apikey.Key.Status. NULL comparisons are
// false, so an unset expires_at never expires and an unset grace_expires_at
// is already over.
//
// keyStatusSQL is that of a key, which may be disabled; statusSQL that of a
// root key, which cannot.
var (
	keyStatusSQL = statusCase("disabled_at IS NOT NULL")
	statusSQL    = statusCase("0")
)

func statusCase(disabled string) string {
	return `CASE
	WHEN revoked_at IS NOT NULL THEN 'revoked'
	WHEN expires_at <= ? THEN 'expired'
	WHEN replaced_by_key_id IS NOT NULL AND (grace_expires_at IS NULL OR grace_expires_at <= ?) THEN 'rotated'
	WHEN ` + disabled + ` THEN 'disabled'
	WHEN replaced_by_key_id IS NULL THEN 'active'
	ELSE 'rotating' END`
}

// metaValue is the meta to store: its compact JSON as text, or NULL.
func metaValue(m []byte) any {
	if m == nil {
		return nil
	}
	return string(m)
}

// scanPage is how many keys ScanKeys reads at a time.
const scanPage = 1000

// scanKey reads a row of keyColumns.
func scanKey(row scanner) (*apikey.Key, error) {
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
	if k.Scopes, err = decodeScopes(r.scopes); err != nil {
		return nil, fmt.Errorf("key %s: decode scopes: %w", k.ID, err)
	}
	return k, nil
}

// decodeScopes decodes the JSON array scopesValue wrote. Loading the index
// decodes a million of them at start-up, and encoding/json was a sixth of
// that, so the shape json.Marshal writes for scopes — no whitespace,
// strings of printable ASCII without escapes, as every valid scope is — is
// split by hand, the strings sharing s's memory; anything else goes
// through encoding/json. The result is the same either way.
func decodeScopes(s string) ([]string, error) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		body := s[1 : len(s)-1]
		out := make([]string, 0, strings.Count(body, ",")+1)
		for ok := true; ok && body != ""; {
			var item string
			item, body, ok = strings.Cut(body, ",")
			if len(item) < 2 || item[0] != '"' || item[len(item)-1] != '"' || !plainScope(item[1:len(item)-1]) {
				out = nil
				break
			}
			out = append(out, item[1:len(item)-1])
			if ok && body == "" { // a trailing comma
				out = nil
				break
			}
		}
		if out != nil {
			return out, nil
		}
	}
	var scopes []string
	err := json.Unmarshal([]byte(s), &scopes)
	return scopes, err
}

// plainScope reports whether s is printable ASCII that JSON holds as it is:
// no quote, no backslash.
func plainScope(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// scopesValue stores scopes as a JSON array, never null.
type scopesValue []string

// Value implements driver.Valuer.
func (v scopesValue) Value() (driver.Value, error) { return scopesJSON(v) }

// scopesJSON encodes a list of strings (scopes, permissions, project IDs)
// as a JSON array, never null.
func scopesJSON(scopes []string) (string, error) {
	if scopes == nil {
		scopes = []string{}
	}
	b, err := json.Marshal(scopes)
	return string(b), err
}

// oneKey scans the key of row.
func oneKey(op string, row *sql.Row) (*apikey.Key, error) {
	k, err := scanKey(row)
	if err != nil {
		return nil, dbError(op, err)
	}
	return k, nil
}

// Key returns the key with the given ID, or ENOTFOUND.
func (s *Store) Key(ctx context.Context, id string) (*apikey.Key, error) {
	return oneKey("get key", s.keyByID.QueryRowContext(ctx, id))
}

// KeyByHash returns the key stored under h, or ENOTFOUND.
func (s *Store) KeyByHash(ctx context.Context, h apikey.Hash) (*apikey.Key, error) {
	return oneKey("get key by hash", s.keyByHash.QueryRowContext(ctx, h[:]))
}

// Keys lists a project's keys newest first.
func (s *Store) Keys(ctx context.Context, f apikey.KeyFilter) ([]*apikey.Key, error) {
	var c conds
	c.and("project_id = ?", f.ProjectID)
	if f.EnvironmentID != "" {
		c.and("environment_id = ?", f.EnvironmentID)
	}
	if f.OwnerID != "" {
		c.and("owner_id = ?", f.OwnerID)
	}
	if f.Status != "" {
		now := f.Now.UnixMicro()
		c.and(keyStatusSQL+" = ?", now, now, string(f.Status))
	}
	if f.After != nil {
		c.and("(created_at, id) < (?, ?)", f.After.Time.UnixMicro(), f.After.ID)
	}
	keys, err := queryAll(ctx, s.read, scanKey, selectKey+"WHERE "+c.String()+
		" ORDER BY created_at DESC, id DESC LIMIT ?", append(c.args, limit(f.Limit))...)
	if err != nil {
		return nil, dbError("list keys", err)
	}
	return keys, nil
}

// ExpiringKeys lists the keys of a project that are usable at f.Now and
// expire no later than f.Before, soonest first.
func (s *Store) ExpiringKeys(ctx context.Context, f apikey.ExpiringFilter) ([]*apikey.Key, error) {
	now := f.Now.UnixMicro()
	var c conds
	c.and("project_id = ?", f.ProjectID)
	if f.EnvironmentID != "" {
		c.and("environment_id = ?", f.EnvironmentID)
	}
	c.and("expires_at > ? AND expires_at <= ?", now, f.Before.UnixMicro())
	c.and("revoked_at IS NULL AND (replaced_by_key_id IS NULL OR grace_expires_at > ?)", now)
	if f.After != nil {
		c.and("(expires_at, id) > (?, ?)", f.After.Time.UnixMicro(), f.After.ID)
	}
	keys, err := queryAll(ctx, s.read, scanKey, selectKey+"WHERE "+c.String()+
		" ORDER BY expires_at, id LIMIT ?", append(c.args, limit(f.Limit))...)
	if err != nil {
		return nil, dbError("list expiring keys", err)
	}
	return keys, nil
}

// ScanKeys calls fn for every key, reading scanPage keys at a time. With
// many keys it splits them into scanWorkers ranges of IDs, each read with
// a connection of its own: at start-up, reading a million keys is what
// apikeyd waits for, and almost all of it is the driver's work on each
// row, which one connection does on one core. The calls of fn are
// serialised, as the contract promises. A page is read before fn sees its
// keys, so fn may use the store.
func (s *Store) ScanKeys(ctx context.Context, fn func(k *apikey.Key) error) error {
	bounds, err := s.scanBounds(ctx)
	if err != nil {
		return dbError("scan keys", err)
	}
	var (
		mu    sync.Mutex // serialises fn; guards first
		first error      // the first error of fn or of a read: the scan stops
		wg    sync.WaitGroup
	)
	visit := func(k *apikey.Key) bool {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = fn(k)
		}
		return first == nil
	}
	for i := range len(bounds) - 1 {
		wg.Go(func() {
			if err := s.scanRange(ctx, bounds[i], bounds[i+1], visit); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// scanWorkers is how many ranges ScanKeys reads at once when there are
// more than scanSplit keys: one a core of the machine kind apikeyd is
// measured on, and within the read pool.
const (
	scanWorkers = 2
	scanSplit   = 2 * scanPage
)

// scanBounds returns the bounds of ScanKeys' ranges of IDs: range i holds
// the IDs above bounds[i] and up to bounds[i+1], the last one ("") meaning
// no upper bound.
func (s *Store) scanBounds(ctx context.Context) ([]string, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM keys").Scan(&n); err != nil {
		return nil, err
	}
	bounds := []string{""}
	if n > scanSplit {
		for w := 1; w < scanWorkers; w++ {
			var id string
			err := s.read.QueryRowContext(ctx, "SELECT id FROM keys ORDER BY id LIMIT 1 OFFSET ?", w*n/scanWorkers).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) { // keys were deleted meanwhile
				break
			}
			if err != nil {
				return nil, err
			}
			bounds = append(bounds, id)
		}
	}
	return append(bounds, ""), nil
}

// scanRange calls visit for every key whose ID is above after and, unless
// upTo is empty, not above upTo, in ID order, until visit returns false.
func (s *Store) scanRange(ctx context.Context, after, upTo string, visit func(k *apikey.Key) bool) error {
	query, args := selectKey+"WHERE id > ? ORDER BY id LIMIT ?", []any{after, scanPage}
	if upTo != "" {
		query, args = selectKey+"WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", []any{after, upTo, scanPage}
	}
	for {
		args[0] = after
		keys, err := queryAll(ctx, s.read, scanKey, query, args...)
		if err != nil {
			return dbError("scan keys", err)
		}
		for _, k := range keys {
			if !visit(k) {
				return nil
			}
		}
		if len(keys) < scanPage {
			return nil
		}
		after = keys[len(keys)-1].ID
	}
}

// TouchKeys records the uses in one transaction, moving last_used_at only
// forward.
func (s *Store) TouchKeys(ctx context.Context, uses []apikey.KeyUse) error {
	return s.touch(ctx, "keys", uses)
}

// touch moves last_used_at forward in table (keys or root_keys) for
// TouchKeys and TouchRootKeys.
func (s *Store) touch(ctx context.Context, table string, uses []apikey.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	return inTx(ctx, s.write, func(t *sql.Tx) error {
		stmt, err := t.PrepareContext(ctx, "UPDATE "+table+" SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)")
		if err != nil {
			return dbError("touch "+table, err)
		}
		defer stmt.Close()
		for _, u := range uses {
			at := u.At.UnixMicro()
			if _, err := stmt.ExecContext(ctx, at, u.KeyID, at); err != nil {
				return dbError("touch "+table, err)
			}
		}
		return nil
	})
}

// KeyForUpdate returns the key with the given ID. The transaction holds
// SQLite's write lock from its start, so the key is locked already.
func (t *tx) KeyForUpdate(ctx context.Context, id string) (*apikey.Key, error) {
	return oneKey("get key for update", t.tx.QueryRowContext(ctx, selectKey+"WHERE id = ?", id))
}

// InsertKey stores k with Version 1 and sets k.Version to match.
func (t *tx) InsertKey(ctx context.Context, k *apikey.Key) error {
	if _, err := t.tx.ExecContext(ctx, insertKeySQL, keyArgs(k, false)...); err != nil {
		return dbError("insert key", err)
	}
	k.Version = 1
	return nil
}

// UpdateKey writes the mutable fields of k if its stored version is still
// k.Version, and sets k.Version to the new one.
func (t *tx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	err := t.tx.QueryRowContext(ctx, updateKeySQL, keyArgs(k, true, k.ID, k.Version)...).Scan(&k.Version)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return dbError("update key", err)
	}
	var exists bool
	if err := t.tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM keys WHERE id = ?)", k.ID).Scan(&exists); err != nil {
		return dbError("update key", err)
	}
	if !exists {
		return fmt.Errorf("update key: %w", apikey.ErrNotFound)
	}
	return &apikey.Error{Code: apikey.ECONFLICT, Message: "the key has changed since it was read"}
}

// nextChangeSeq is the change_seq of a key being written: one more than
// any before, of keys or root keys. The single writer makes the numbers
// follow commit order.
const nextChangeSeq = "(" + lastChangeSeq + " + 1)"

// KeyChanges calls fn for every key written since the position since, a
// change_seq, in change order, and returns the highest change_seq seen.
// Keys are read in pages, each in its own statement; a key written again
// between pages is reported again, with its newer version, in a later page.
func (s *Store) KeyChanges(ctx context.Context, since string, fn func(k *apikey.Key) error) (string, error) {
	if since == "" {
		var seq int64
		if err := s.read.QueryRowContext(ctx, "SELECT "+lastChangeSeq).Scan(&seq); err != nil {
			return "", dbError("key changes", err)
		}
		return strconv.FormatInt(seq, 10), nil
	}
	seq, err := strconv.ParseInt(since, 10, 64)
	if err != nil || seq < 0 {
		return "", apikey.Errorf(apikey.EINVALID, "not a position of this store: %q", since)
	}
	for {
		var page []*apikey.Key
		var seqs []int64
		rows, err := s.read.QueryContext(ctx, "SELECT "+keyColumns+", change_seq FROM keys WHERE change_seq > ? ORDER BY change_seq LIMIT ?", seq, scanPage)
		if err != nil {
			return "", dbError("key changes", err)
		}
		for rows.Next() {
			var n int64
			k, err := scanKey(withExtra{rows, []any{&n}})
			if err != nil {
				rows.Close()
				return "", dbError("key changes", err)
			}
			page, seqs = append(page, k), append(seqs, n)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return "", dbError("key changes", err)
		}
		for i, k := range page {
			if err := fn(k); err != nil {
				return "", err
			}
			seq = seqs[i]
		}
		if len(page) < scanPage {
			return strconv.FormatInt(seq, 10), nil
		}
	}
}

// withExtra scans the key columns and then the extra destinations.
type withExtra struct {
	scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.scanner.Scan(append(dest, w.extra...)...) }
