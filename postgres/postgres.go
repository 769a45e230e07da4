package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apikeyd/apikeyd/apikey"
)

// Timeouts that make an outage fail fast instead of hanging. Each can be
// overridden in the database URL (see the package documentation).
const (
	// connectTimeout bounds opening one connection.
	connectTimeout = 5 * time.Second
	// callTimeout bounds every store call (each page of ScanKeys, the whole
	// of an Update) whose context has no sooner deadline. It is a little
	// longer than statement_timeout, so that the server normally reports a
	// slow statement before the client gives up on it.
	callTimeout = 15 * time.Second
	// pingTimeout bounds Ping, which readiness checks call often.
	pingTimeout = 2 * time.Second
	// updateAttempts is how often Update runs a transaction that failed
	// with a serialization failure or a deadlock.
	updateAttempts = 4
)

// sessionDefaults are the settings of every connection that the database
// URL does not set itself.
var sessionDefaults = map[string]string{
	"application_name": "apikeyd",
	// A statement that runs this long is a symptom, not a workload.
	"statement_timeout": "10s",
	// Waiting for a row lock this long means the holder is stuck.
	"lock_timeout": "5s",
	// A replica that vanished mid-transaction releases its locks.
	"idle_in_transaction_session_timeout": "30s",
}

// Store is the apikey.Store of replicas sharing one PostgreSQL database,
// through a pgx connection pool.
type Store struct {
	pool *pgxpool.Pool
	// conn configures the connections of the pool, and the Follower's own.
	conn *pgx.ConnConfig
}

var _ apikey.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), brings its schema up to date and returns a store on a
// connection pool. Several processes may open one database at once: the
// migrations run under an advisory lock. Open fails with EUNAVAILABLE when
// the database cannot be reached.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := poolConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, cfg.ConnConfig, migrations); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{pool: pool, conn: cfg.ConnConfig.Copy()}, nil
}

// poolConfig parses url and fills in the defaults the URL leaves open. The
// pool size and the other pool_* settings keep pgxpool's defaults unless the
// URL sets them.
func poolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err // pgconn's message hides the password
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	for k, v := range sessionDefaults {
		if _, ok := cc.RuntimeParams[k]; !ok {
			cc.RuntimeParams[k] = v
		}
	}
	// A connection idle for a second is pinged before use (pgxpool's
	// default); the ping must not wait longer than a call may.
	cfg.PingTimeout = pingTimeout
	return cfg, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping reads the migrations table, so that it fails when the schema is
// gone, not only when the server is down. Any failure is EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var ok bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations)").Scan(&ok); err != nil {
		return unavailable(fmt.Errorf("ping: %w", err))
	}
	return nil
}

// bound limits a call to callTimeout, or to ctx's deadline if sooner.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// Update runs fn in a READ COMMITTED transaction, in which KeyForUpdate
// locks rows with SELECT … FOR UPDATE. When a statement fails with a
// serialization failure or a deadlock, PostgreSQL has rolled the whole
// transaction back and a new attempt may succeed: Update then runs fn again
// in a new transaction, a few times at most. A transaction whose COMMIT
// gets no answer is never retried, since it may have committed; the caller
// gets EUNAVAILABLE.
func (s *Store) Update(ctx context.Context, fn func(tx apikey.Tx) error) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		retry, err := s.update(ctx, fn)
		if !retry || attempt == updateAttempts || ctx.Err() != nil {
			return err
		}
		// Back off a little, at random, so that the transactions that
		// collided do not collide again.
		delay := time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// update runs fn in one transaction. retry reports whether the transaction
// was rolled back by a serialization failure or deadlock.
func (s *Store) update(ctx context.Context, fn func(tx apikey.Tx) error) (retry bool, err error) {
	pt, err := s.pool.Begin(ctx)
	if err != nil {
		return false, dbError("begin", err)
	}
	defer func() {
		if err != nil {
			// Rollback on a closed connection fails, which is fine: the
			// server rolls back what it never saw committed. A context
			// that has ended closes the connection instead.
			pt.Rollback(ctx)
		}
	}()
	t := &tx{tx: pt}
	if err := fn(t); err != nil {
		return t.retry, err
	}
	if err := pt.Commit(ctx); err != nil {
		// A serialization failure reported at COMMIT means the
		// transaction did not commit. ErrTxCommitRollback means fn let a
		// failed statement pass: the server rolled back.
		return serializationFailure(err), dbError("commit", err)
	}
	return false, nil
}

// tx is the apikey.Tx of Update.
type tx struct {
	tx pgx.Tx
	// retry is set when a statement failed in a way that rolled the
	// transaction back and another attempt may succeed.
	retry bool
}

// fail translates err, noting whether the transaction may be retried.
func (t *tx) fail(op string, err error) error {
	if serializationFailure(err) {
		t.retry = true
	}
	return dbError(op, err)
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queryAll runs a query and scans every row it returns.
func queryAll[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
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

// conds collects the conditions of a WHERE clause and numbers their
// arguments.
type conds struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (c *conds) arg(v any) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(len(c.args))
}

func (c *conds) and(cond string) { c.where = append(c.where, cond) }

// String returns the conditions joined by AND.
func (c *conds) String() string { return strings.Join(c.where, " AND ") }

// limit is the page size to use for a filter's Limit.
func limit(n int) int {
	if n <= 0 {
		return apikey.DefaultListLimit
	}
	return n
}

// tstz is a time stored as timestamptz: NULL when zero, written truncated
// to microseconds (the column's precision; PostgreSQL itself would round),
// read back in UTC.
type tstz time.Time

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (t tstz) TimestamptzValue() (pgtype.Timestamptz, error) {
	if time.Time(t).IsZero() {
		return pgtype.Timestamptz{}, nil
	}
	return pgtype.Timestamptz{Time: micro(time.Time(t)), Valid: true}, nil
}

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (t *tstz) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*t = tstz{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("infinite timestamp")
	default:
		*t = tstz(v.Time.UTC())
	}
	return nil
}

// micro returns t as the store keeps it: UTC, whole microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// orNull returns v, or nil (SQL NULL) for the zero value, which the domain
// uses for "unset".
func orNull[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}
