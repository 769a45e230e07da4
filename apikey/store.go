package apikey

import (
	"context"
	"time"
)

// Store keeps keys and their audit trail. Implementations: sqlite (the
// embedded default) and postgres (several replicas on one database). Both
// pass the conformance suite in package storetest.
//
// All times a store returns are UTC, truncated to microseconds, so that both
// backends round-trip them identically. Nil or empty Scopes and Details come
// back empty but non-nil. Details round-trip as JSON does: numbers come back
// as float64 and times as RFC 3339 strings.
type Store interface {
	RootKeyStore
	UsageStore

	// Key returns the key with the given ID, or ENOTFOUND.
	Key(ctx context.Context, id string) (*Key, error)
	// KeyByHash returns the key whose plaintext hashes to h, or ENOTFOUND.
	KeyByHash(ctx context.Context, h Hash) (*Key, error)
	// Keys lists a project's keys newest first (created_at, then ID,
	// descending), starting after f.After.
	Keys(ctx context.Context, f KeyFilter) ([]*Key, error)
	// ExpiringKeys lists keys that are usable at f.Now and expire no later
	// than f.Before, soonest first (expires_at, then ID, ascending).
	ExpiringKeys(ctx context.Context, f ExpiringFilter) ([]*Key, error)
	// AuditEvents lists a project's audit events (or, with f.NoProject,
	// those of no project) newest first.
	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// ScanKeys calls fn once for every key, reading in pages so that memory
	// stays flat however many keys there are. Keys come in no particular
	// order, so that a store can read with several connections at once;
	// calls of fn never overlap. fn must not keep k. Once fn returns an
	// error, fn is not called again and ScanKeys returns that error.
	ScanKeys(ctx context.Context, fn func(k *Key) error) error
	// KeyChanges calls fn for every key whose Version changed (inserted or
	// updated; TouchKeys changes nothing) in a transaction that committed
	// after the position since was taken, with the key as it is now, and
	// returns the position to ask from next time. Positions are opaque
	// strings that only the store that made them reads. An empty since
	// reports nothing and returns the current position: take it before a
	// full read (ScanKeys), and ask from it afterwards, so that nothing
	// committed during the read is missed.
	//
	// Positions follow commit order, not the clock of any process: a
	// transaction that was still open when a position was taken is
	// reported from that position once it commits, however long it took.
	// A key may be reported more than once across calls; callers compare
	// Versions. fn must not use the store (the read may still be open), and
	// its error stops the read and is returned. EINVALID if since is not a
	// position of this store.
	//
	// Replicas use it to catch up with changes whose notification they
	// missed, e.g. while their connection to the database was down.
	KeyChanges(ctx context.Context, since string, fn func(k *Key) error) (next string, err error)

	// Delivery returns the delivery with the given ID, or ENOTFOUND.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// NextDeliveryAt returns the earliest instant at which a pending
	// delivery may be taken by DueDeliveriesForUpdate: the least, over
	// pending deliveries, of the later of NextAttemptAt and LeasedUntil
	// (an unset LeasedUntil counts as no lease). It returns the zero time
	// when no delivery is pending. The scheduler sleeps until then instead
	// of opening write transactions to find nothing.
	NextDeliveryAt(ctx context.Context) (time.Time, error)

	// Update runs fn inside one write transaction and commits when fn returns
	// nil. A nil return from Update means the change is durable. fn may be
	// called again if the backend asks for a retry, so it must have no side
	// effects outside tx; it must not call Update itself (on SQLite that
	// would wait forever for the single writer).
	Update(ctx context.Context, fn func(tx Tx) error) error

	// TouchKeys records when keys were last used. Updates only move
	// last_used_at forward, so batches from several replicas may arrive in
	// any order. Unknown IDs are ignored. It does not change Version.
	TouchKeys(ctx context.Context, uses []KeyUse) error

	// Ping reports whether the store answers; EUNAVAILABLE when it does not.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Tx is the write side of a store, valid inside Store.Update only.
type Tx interface {
	RootKeyTx
	UsageTx

	// KeyForUpdate returns the key with the given ID and locks it until the
	// transaction ends, so that concurrent changes to one key are serialised.
	// ENOTFOUND if there is none.
	KeyForUpdate(ctx context.Context, id string) (*Key, error)
	// InsertKey stores a new key and sets k.Version to 1. ECONFLICT if its ID
	// or hash exists already.
	InsertKey(ctx context.Context, k *Key) error
	// UpdateKey writes every mutable field of k — name, scopes, expires_at,
	// updated_at, revoked_at, replaced_by_key_id, grace_expires_at,
	// replaces_key_id, the rotation settings, the sealed webhook secret,
	// owner_id, meta, ip_allowlist, disabling and the revocation reason —
	// and increments k.Version. ID, project, environment, prefix, hash,
	// source, created_at and last_used_at never change.
	// ENOTFOUND if the key does not exist; ECONFLICT if its stored version is
	// not k.Version (the key changed since it was read).
	UpdateKey(ctx context.Context, k *Key) error
	// InsertAuditEvent appends an event to the audit log.
	InsertAuditEvent(ctx context.Context, e *AuditEvent) error

	// DueKeysForUpdate returns up to limit keys whose scheduled rotation has
	// come at now, and locks them as KeyForUpdate does. A key is due when
	// all of these hold:
	//   - next_rotation_at is set and not after now;
	//   - rotation_interval_days is set and rotation_webhook_url is not empty;
	//   - it is not revoked, not replaced (replaced_by_key_id unset), not
	//     disabled and not expired at now (expires_at unset or after now);
	//   - no pending delivery has it as KeyID.
	// Keys come oldest due first: next_rotation_at, then ID, ascending; the
	// limit bounds the batch so that one claim stays short.
	//
	// Keys locked by a concurrent transaction are skipped, not waited for,
	// so that concurrent schedulers split the due keys between them instead
	// of queueing behind each other (PostgreSQL: SELECT … ORDER BY
	// next_rotation_at, id LIMIT n FOR UPDATE SKIP LOCKED; SQLite has one
	// writer and needs nothing). A key that a transaction committed after
	// this one started must be judged by its committed state: PostgreSQL's
	// READ COMMITTED re-checks the WHERE clause of a locked row that changed,
	// which is why the scheduler, in the same transaction, makes every key
	// it takes no longer due (it clears next_rotation_at with UpdateKey and
	// inserts the key's pending delivery).
	DueKeysForUpdate(ctx context.Context, now time.Time, limit int) ([]*Key, error)

	// InsertDelivery adds a delivery to the outbox, every field as given.
	// ECONFLICT if its ID exists already, or if it is pending and another
	// pending delivery has the same KeyID: a key has at most one rotation
	// in flight (a unique index over key_id of pending deliveries, so that
	// the guarantee does not depend on the claim query alone). KeyID and
	// ReplacementKeyID must name existing keys.
	InsertDelivery(ctx context.Context, d *Delivery) error

	// DueDeliveriesForUpdate returns up to limit pending deliveries that a
	// worker may attempt at now — NextAttemptAt not after now and no lease
	// in force (LeasedUntil unset or not after now) — and locks them as
	// DeliveryForUpdate does, soonest first: NextAttemptAt, then ID,
	// ascending. Deliveries locked by a concurrent transaction are skipped,
	// not waited for (PostgreSQL: FOR UPDATE SKIP LOCKED). The caller
	// leases what it takes (sets LeasedUntil with UpdateDelivery) in the
	// same transaction, so that a concurrent worker re-checking the
	// committed row finds it leased.
	DueDeliveriesForUpdate(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)

	// DeliveryForUpdate returns the delivery with the given ID and locks it
	// until the transaction ends. ENOTFOUND if there is none.
	DeliveryForUpdate(ctx context.Context, id string) (*Delivery, error)

	// UpdateDelivery writes the mutable fields of d — state, payload,
	// attempts, next_attempt_at, leased_until, last_error and updated_at.
	// ID, key IDs and created_at never change. ENOTFOUND if the delivery
	// does not exist; ECONFLICT if the change would give a key a second
	// pending delivery. Callers hold the row's lock (DeliveryForUpdate or
	// DueDeliveriesForUpdate), so there is no version check.
	UpdateDelivery(ctx context.Context, d *Delivery) error
}

// Cursor marks a position in a listing: the sort time and ID of the last
// item returned.
type Cursor struct {
	Time time.Time
	ID   string
}

// KeyFilter selects keys for Store.Keys.
type KeyFilter struct {
	ProjectID     string    // required
	EnvironmentID string    // empty for every environment
	OwnerID       string    // empty for every owner
	Status        Status    // empty for every status; decided at Now
	Now           time.Time // required when Status is set
	After         *Cursor
	Limit         int // > 0; callers cap it
}

// ExpiringFilter selects keys for Store.ExpiringKeys.
type ExpiringFilter struct {
	ProjectID     string // required
	EnvironmentID string
	Now           time.Time // required
	Before        time.Time // inclusive upper bound of expires_at
	After         *Cursor
	Limit         int // > 0; callers cap it
}

// AuditFilter selects events for Store.AuditEvents.
type AuditFilter struct {
	ProjectID string // required unless NoProject
	// NoProject selects the events that belong to no project (the changes
	// to root keys) instead of a project's; ProjectID is then empty.
	NoProject     bool
	EnvironmentID string
	KeyID         string
	Action        string
	After         *Cursor
	Limit         int
}

// KeyUse is one key's most recent use.
type KeyUse struct {
	KeyID string
	At    time.Time
}

// UsageStore is the central bookkeeping of rate limits and credits
// (docs/limits.md): replicas reserve slices of a window's allowance and of
// a balance, spend them from memory (package usage) and report or hand
// back what they did with them. Both stores implement it beside Store;
// the write side that must share a transaction with a key's change and
// its audit event is UsageTx.
//
// Subjects are opaque strings ("key:<lineage>", "owner:<project>/<owner>").
// Every method is safe to call from several replicas at once.
type UsageStore interface {
	// GrantRate grants up to GrantSize(free, g.Want, g.Need, g.Replicas) admissions
	// of the window of g.Limit ending at g.At to g.Subject, recorded in the
	// slice of g.At — or, when g asks for a span and SpanGrantFits, g.SpanWant
	// recorded for the g.Span slices from it on — where free is the limit
	// minus what the grants that may be spent in a slice from the window's
	// first on have granted. It serialises on the subject's
	// limit row, so that grants of several replicas never exceed the
	// limit in any window. A limit whose definition changed is counted
	// under its new definition from then on.
	GrantRate(ctx context.Context, g RateGrant) (RateGrantResult, error)
	// ReturnGrants hands back unspent grants: each lowers the granted
	// count of its grant (Slice to Last) by N, never below zero. Grants
	// that no longer exist are ignored.
	ReturnGrants(ctx context.Context, returns []GrantReturn) error

	// ReserveCredits first applies the refills due at r.Now, then moves
	// CreditSliceSize(remaining, r.Need, r.Replicas, r.SliceMax) credits
	// from the subject's unreserved balance to the lease of r.ReplicaID.
	// Got is 0 when nothing is left (or a debt is being paid off).
	// ENOTFOUND if the subject has no balance.
	ReserveCredits(ctx context.Context, r CreditReservation) (CreditLease, error)
	// ReturnCredits hands back unspent credits: each moves N (at most what
	// the lease holds) from the replica's lease back to the balance. A
	// lease that was reaped is not restored (its credits were counted
	// lost), nor a balance that was deleted.
	ReturnCredits(ctx context.Context, replicaID string, returns []CreditAmount) error
	// ReportSpends lowers the replica's leases by what it spent, never
	// below zero. Unknown leases are ignored.
	ReportSpends(ctx context.Context, replicaID string, spends []CreditAmount) error
	// Balance returns the subject's credits at now: Remaining is the
	// total, the unreserved balance plus every lease, with the refills
	// due at now counted (not written). ENOTFOUND if it has none.
	Balance(ctx context.Context, subject string, now time.Time) (*Credits, error)
	// ApplyRefills applies the refills due at now of up to limit balances
	// and returns how many it refilled, so that refills fall for balances
	// nobody is spending. Concurrent callers never apply one refill twice.
	ApplyRefills(ctx context.Context, now time.Time, limit int) (int, error)

	// Heartbeat records that the replica is alive at now and returns the
	// number of replicas seen within ReplicaLiveFor of now (at least 1).
	Heartbeat(ctx context.Context, replicaID string, now time.Time) (live int, err error)
	// ReapLeases deletes the credit leases of replicas not seen within
	// LeaseStaleAfter of now, and those replicas, and returns the credits
	// the leases held: lost, since the spends made from them since their
	// last report are unknown and re-granting them could overspend.
	ReapLeases(ctx context.Context, now time.Time) (lost int64, err error)

	// AddUsage adds verdict counts to their hours (the hours of Hour,
	// truncated). Batches from several replicas add up.
	AddUsage(ctx context.Context, counts []UsageCount) error
	// Usage returns the counts of f, one bucket per hour or UTC day that
	// has any, oldest first. EINVALID if f names neither a key nor a
	// project.
	Usage(ctx context.Context, f UsageFilter) ([]UsageBucket, error)
	// PruneUsage deletes the hours before before and returns how many
	// rows it deleted.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)

	// Owner returns the allowance of an owner of a project, or ENOTFOUND.
	Owner(ctx context.Context, projectID, ownerID string) (*Owner, error)
}

// UsageTx is the write side of balances, valid inside Store.Update, so
// that a change of credits commits with the key's change and its audit
// event. The tx of both stores implements it beside Tx.
type UsageTx interface {
	// PutBalance creates the subject's balance or redefines it: the total
	// becomes c.Remaining (as AdjustCredits' set does), the refill
	// schedule c.Refill, with the next refill after now. A nil c deletes
	// the balance and its leases.
	PutBalance(ctx context.Context, subject string, c *Credits, now time.Time) error
	// AdjustCredits applies op to the subject's total balance (unreserved
	// plus leases), after the refills due at now, and returns the total
	// before and after: increment adds amount; decrement takes
	// min(amount, total), leaving the unreserved part negative (a debt the
	// leases pay off) if need be; set makes the total amount. ENOTFOUND if
	// the subject has no balance.
	AdjustCredits(ctx context.Context, subject string, op CreditOp, amount int64, now time.Time) (before, after int64, err error)
	// PutOwner creates or replaces an owner's allowance (its balance is
	// PutBalance's, under o.Subject()); CreatedAt is kept on replace.
	PutOwner(ctx context.Context, o *Owner) error
	// DeleteOwner deletes an owner's allowance; deleting none is no error.
	DeleteOwner(ctx context.Context, projectID, ownerID string) error
}

// Liveness of replicas, as the usage store judges it.
const (
	// ReplicaLiveFor is how recent a heartbeat must be for the replica to
	// count in the divisor of reservation sizes.
	ReplicaLiveFor = 10 * time.Second
	// LeaseStaleAfter is how long a replica may go without a heartbeat
	// before its leases are reaped as lost.
	LeaseStaleAfter = 30 * time.Second
	// UsageRetention is how long usage hours are kept (SPEC: ≥ 90 days).
	UsageRetention = 100 * 24 * time.Hour
)

// RateGrant asks UsageStore.GrantRate for admissions.
type RateGrant struct {
	Subject string
	Limit   RateLimit
	At      time.Time
	Want    int64 // at least 1
	// Need is what the replica expects to spend in the slice (0: no
	// estimate): with other replicas live, a grant is no larger, so that
	// a replica with little demand holds little of a window others need.
	Need     int64
	Replicas int
	// Span and SpanWant ask for a span grant (docs/limits.md): SpanWant
	// admissions that may be spent in any of the Span slices from the
	// slice of At on. The store grants it only when SpanGrantFits;
	// otherwise, and when Span ≤ 1, it grants for the slice of At alone.
	Span, SpanWant int64
	// Return, when its N is not 0, hands back the unspent grant of an
	// earlier slice of the same limit in the same transaction, before
	// the window is summed: a replica that moves on to a new slice
	// returns the last one without a round trip of its own.
	Return GrantReturn
}

// RateGrantResult is what GrantRate granted: Granted admissions, to be
// spent in the slices numbered Slice to Last (of Limit.SliceMS()) only,
// and Free, what the window had left after the grant.
type RateGrantResult struct {
	Granted     int64
	Slice, Last int64
	Free        int64
}

// GrantReturn hands back N unspent admissions of a grant — or, with
// ToSlice and ToLast set, narrows N admissions spent from a span grant:
// they are recorded for the slices ToSlice to ToLast (within the grant's,
// the slices they were spent in) instead of the grant's, so that they
// count only in the windows that overlap those (docs/limits.md).
type GrantReturn struct {
	Subject         string
	LimitName       string
	Slice, Last     int64 // RateGrantResult.Slice and Last of the grant
	N               int64
	ToSlice, ToLast int64
}

// Narrows reports whether r narrows rather than hands back.
func (r GrantReturn) Narrows() bool {
	return r.ToLast >= r.ToSlice && r.ToSlice > 0
}

// CreditReservation asks UsageStore.ReserveCredits for a slice of a balance.
type CreditReservation struct {
	Subject   string
	ReplicaID string
	Need      int64 // at least 1
	Replicas  int
	SliceMax  int64
	Now       time.Time
}

// CreditLease is what ReserveCredits moved to the replica's lease, with
// the balance's unreserved remainder and next refill after it.
type CreditLease struct {
	Got          int64
	Remaining    int64
	NextRefillAt time.Time
}

// CreditAmount is an amount of one subject's credits.
type CreditAmount struct {
	Subject string
	N       int64
}

// CreditOp is an operation of POST /v1/api-keys/{id}/credits.
type CreditOp string

// Credit operations.
const (
	CreditSet       CreditOp = "set"
	CreditIncrement CreditOp = "increment"
	CreditDecrement CreditOp = "decrement"
)

// UsageCount is a number of verdicts of one key in one hour.
type UsageCount struct {
	KeyID         string
	ProjectID     string
	EnvironmentID string
	OwnerID       string
	Hour          time.Time
	Code          string
	Count         int64
	CreditsSpent  int64
}

// Usage granularities.
const (
	UsageHour = "hour"
	UsageDay  = "day"
)

// UsageFilter selects usage for UsageStore.Usage: a key's (KeyID), or a
// project's (ProjectID, optionally narrowed to an environment and an
// owner), in [From, To).
type UsageFilter struct {
	KeyID         string
	ProjectID     string
	EnvironmentID string
	OwnerID       string
	From, To      time.Time // both required; To exclusive
	Granularity   string    // UsageHour (also for "") or UsageDay
}

// UsageBucket is the usage of one hour or day.
type UsageBucket struct {
	Start        time.Time
	Counts       map[string]int64
	CreditsSpent int64
}

// RootKeyStore is the part of Store that keeps root keys (SPEC §8). Root
// keys live beside keys, in a table of their own, and follow the same
// rules: only hashes are stored, Version counts changes, and replicas learn
// of changes through RootKeyChanges. A nil ProjectIDs (every project)
// comes back nil and an empty one empty; nil Permissions come back empty.
type RootKeyStore interface {
	// RootKey returns the root key with the given ID, or ENOTFOUND.
	RootKey(ctx context.Context, id string) (*RootKey, error)
	// RootKeyByHash returns the root key whose plaintext hashes to h, or
	// ENOTFOUND.
	RootKeyByHash(ctx context.Context, h Hash) (*RootKey, error)
	// RootKeys lists root keys newest first (created_at, then ID,
	// descending), starting after f.After.
	RootKeys(ctx context.Context, f RootKeyFilter) ([]*RootKey, error)
	// ScanRootKeys calls fn once for every root key, in no particular
	// order; as ScanKeys, fn must not keep rk, and its error stops the
	// scan and is returned.
	ScanRootKeys(ctx context.Context, fn func(rk *RootKey) error) error
	// RootKeyChanges is KeyChanges for root keys. Positions are shared
	// with KeyChanges: a position either returns may be given to either,
	// so a follower that asks both from one position and goes on from the
	// position the first call returned misses nothing. EINVALID if since
	// is not a position of this store.
	RootKeyChanges(ctx context.Context, since string, fn func(rk *RootKey) error) (next string, err error)
	// TouchRootKeys records when root keys were last used, as TouchKeys
	// does for keys: only forward, unknown IDs ignored, Version unchanged.
	TouchRootKeys(ctx context.Context, uses []KeyUse) error
}

// RootKeyTx is the write side of RootKeyStore, valid inside Store.Update.
type RootKeyTx interface {
	// RootKeyForUpdate returns the root key with the given ID and locks it
	// until the transaction ends. ENOTFOUND if there is none.
	RootKeyForUpdate(ctx context.Context, id string) (*RootKey, error)
	// InsertRootKey stores a new root key and sets rk.Version to 1.
	// ECONFLICT if its ID or hash exists already.
	InsertRootKey(ctx context.Context, rk *RootKey) error
	// UpdateRootKey writes every mutable field of rk — name, permissions,
	// project_ids, expires_at, updated_at, revoked_at, replaced_by_key_id,
	// grace_expires_at and replaces_key_id — and increments rk.Version. ID,
	// prefix, hash, created_at, created_by and last_used_at never change.
	// ENOTFOUND if the root key does not exist; ECONFLICT if its stored
	// version is not rk.Version.
	UpdateRootKey(ctx context.Context, rk *RootKey) error
}

// RootKeyFilter selects root keys for RootKeyStore.RootKeys.
type RootKeyFilter struct {
	Status Status    // empty for every status; decided at Now
	Now    time.Time // required when Status is set
	After  *Cursor
	Limit  int // > 0; callers cap it
}
