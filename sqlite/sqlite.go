package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// readers is the size of the read pool: WAL lets this many readers work
// beside the one writer.
const readers = 4

// Store is the embedded apikey.Store: one SQLite file, written through a
// single connection and read through a small pool.
type Store struct {
	write *sql.DB // one connection; every transaction is BEGIN IMMEDIATE
	read  *sql.DB // query_only connections

	// Lookups of single keys, the hot path of verification, prepared once
	// per connection instead of once per call.
	keyByID, keyByHash *sql.Stmt

	// files are the database file and its WAL as Open found them: SQLite
	// keeps writing to files that were deleted or replaced under it, and
	// what it writes there is gone at the next start (checkFiles).
	files []openedFile
}

// openedFile is a file of the database and its identity when opened.
type openedFile struct {
	path string
	info os.FileInfo
}

var _ apikey.Store = (*Store)(nil)

// Open opens the database file at path, creating it if need be, and brings
// its schema up to date. It fails with EUNAVAILABLE when the file cannot be
// opened as a database. The path must name a file: an in-memory database
// would not be shared between the two pools.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: invalid database path %q", path)
	}
	write, err := openDB(ctx, path, 1, url.Values{
		"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"},
		"_txlock": {"immediate"},
	})
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, write, migrations); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	read, err := openDB(ctx, path, readers, url.Values{
		"_pragma":     {"busy_timeout(5000)"},
		"_query_only": {"1"},
	})
	if err != nil {
		write.Close()
		return nil, err
	}
	s := &Store{write: write, read: read}
	for _, p := range []string{path, path + "-wal"} {
		// The WAL exists once the write connection has opened the database
		// in WAL mode, and lives until the last connection closes.
		if info, err := os.Stat(p); err == nil {
			s.files = append(s.files, openedFile{path: p, info: info})
		}
	}
	if s.keyByID, err = read.PrepareContext(ctx, selectKey+"WHERE id = ?"); err == nil {
		s.keyByHash, err = read.PrepareContext(ctx, selectKey+"WHERE key_hash = ?")
	}
	if err != nil {
		read.Close()
		write.Close()
		return nil, dbError("sqlite: prepare", err)
	}
	return s, nil
}

// openDB opens a pool of at most conns connections to path, configured by
// the driver's DSN parameters, and checks that one connection works.
func openDB(ctx context.Context, path string, conns int, params url.Values) (*sql.DB, error) {
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	return db, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.keyByID.Close(), s.keyByHash.Close(), s.read.Close(), s.write.Close())
}

// Ping reports whether the store can be read and written: the database
// file and its WAL are still the ones opened (checkFiles), a read works,
// and a write does — a rolled-back update, which fails at once when the
// file is read-only (SQLITE_READONLY), corrupt or on a failing disk. It
// takes the write connection for a moment.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkFiles(); err != nil {
		return err
	}
	var n int
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		return unavailable(fmt.Errorf("sqlite: ping: %w", err))
	}
	err := inTx(ctx, s.write, func(t *sql.Tx) error {
		if _, err := t.ExecContext(ctx, "UPDATE schema_migrations SET version = version"); err != nil {
			return dbError("sqlite: write probe", err)
		}
		return errProbe
	})
	if !errors.Is(err, errProbe) {
		var e *apikey.Error
		if !errors.As(err, &e) || e.Code != apikey.EUNAVAILABLE {
			err = unavailable(err)
		}
		return err
	}
	return nil
}

// errProbe rolls back Ping's write probe.
var errProbe = errors.New("write probe: roll back")

// checkFiles reports, as EUNAVAILABLE, a database file or WAL that was
// deleted or replaced since Open, and a database file that no longer
// starts as one (truncated, overwritten): SQLite would go on writing to
// the open files and acknowledge what is lost at the next start.
func (s *Store) checkFiles() error {
	for _, f := range s.files {
		info, err := os.Stat(f.path)
		if err != nil {
			return unavailable(fmt.Errorf("sqlite: %s: %w", f.path, err))
		}
		if !os.SameFile(info, f.info) {
			return unavailable(fmt.Errorf("sqlite: %s was replaced by another file since it was opened", f.path))
		}
	}
	if len(s.files) == 0 {
		return nil
	}
	fh, err := os.Open(s.files[0].path)
	if err != nil {
		return unavailable(fmt.Errorf("sqlite: %w", err))
	}
	defer fh.Close()
	var header [len(sqliteMagic)]byte
	if _, err := io.ReadFull(fh, header[:]); err != nil || string(header[:]) != sqliteMagic {
		return unavailable(fmt.Errorf("sqlite: %s is no longer an SQLite database (truncated or overwritten)", s.files[0].path))
	}
	return nil
}

// sqliteMagic is how every SQLite database file starts.
const sqliteMagic = "SQLite format 3\x00"

// Update runs fn in a write transaction. SQLite has a single writer, so fn
// is called exactly once; it must not call Update itself, which would wait
// for its own connection. The transaction commits only while the files
// are the ones opened (checkFiles), so that a write to a deleted database
// is refused rather than acknowledged.
func (s *Store) Update(ctx context.Context, fn func(tx apikey.Tx) error) error {
	return inTx(ctx, s.write, func(t *sql.Tx) error {
		if err := fn(&tx{t}); err != nil {
			return err
		}
		return s.checkFiles()
	})
}

// inTx runs fn in a transaction of db and commits when fn returns nil. The
// error of fn is returned as it is.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	t, err := db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("begin", err)
	}
	defer t.Rollback()
	if err := fn(t); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return dbError("commit", err)
	}
	return nil
}

// tx is the apikey.Tx of Update.
type tx struct{ tx *sql.Tx }

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row it returns.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
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

// conds collects the conditions of a WHERE clause and their arguments.
type conds struct {
	where []string
	args  []any
}

func (c *conds) and(cond string, args ...any) {
	c.where = append(c.where, cond)
	c.args = append(c.args, args...)
}

// String returns the conditions joined by AND.
func (c *conds) String() string { return strings.Join(c.where, " AND ") }

// limit is the page size to use for a filter's Limit.
func limit(n int) int {
	if n <= 0 {
		return apikey.DefaultListLimit
	}
	return n
}

// micros is a time stored as Unix microseconds, NULL when zero.
type micros time.Time

// Value implements driver.Valuer.
func (m micros) Value() (driver.Value, error) {
	if time.Time(m).IsZero() {
		return nil, nil
	}
	return time.Time(m).UnixMicro(), nil
}

// Scan implements sql.Scanner.
func (m *micros) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*m = micros{}
	case int64:
		*m = micros(time.UnixMicro(v).UTC())
	default:
		return fmt.Errorf("scan %T as time", v)
	}
	return nil
}

// orNull returns v, or nil (SQL NULL) for the zero value, which the domain
// uses for "unset".
func orNull[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// dbError translates a driver error into the domain's terms and adds op as
// context. Driver messages name tables and columns, never bound values, so
// no key hash or secret can end up in an error.
func dbError(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, apikey.ErrNotFound)
	}
	err = fmt.Errorf("%s: %w", op, err)
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &apikey.Error{Code: apikey.ECONFLICT, Message: "already exists", Err: err}
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		// A store that cannot be written, or read as a database, is as
		// unavailable as one that does not answer: 503, never a 500.
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM:
		return unavailable(err)
	}
	return err
}

// unavailable marks err as the database not answering.
func unavailable(err error) error {
	return &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "the database is unavailable", Err: err}
}
