package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the schema changes, named <version>_<what>.sql. (Sub
// fails only for an invalid directory name.)
var migrations, _ = fs.Sub(migrationFiles, "migrations")

// migration is one schema change.
type migration struct {
	version int
	name    string
}

// migrate applies the migrations in fsys that db has not recorded yet, in
// version order, each in its own transaction together with its row in
// schema_migrations, so a failed one leaves nothing behind. Checking and
// applying happen in the same write transaction, so two processes opening
// one file at once do not both apply a migration.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	list, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return dbError("create schema_migrations", err)
	}
	for _, m := range list {
		script, err := fs.ReadFile(fsys, m.name)
		if err != nil {
			return fmt.Errorf("read migration: %w", err)
		}
		err = inTx(ctx, db, func(t *sql.Tx) error {
			var applied bool
			if err := t.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)", m.version).Scan(&applied); err != nil || applied {
				return err
			}
			if _, err := t.ExecContext(ctx, string(script)); err != nil {
				return err
			}
			_, err := t.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return dbError("migration "+m.name, err)
		}
	}
	return nil
}

// readMigrations lists the .sql files of fsys by version, rejecting names
// without a version and versions used twice.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	list := make([]migration, len(names))
	for i, name := range names {
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name does not start with a version", name)
		}
		list[i] = migration{v, name}
	}
	slices.SortFunc(list, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(list); i++ {
		if list[i].version == list[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", list[i-1].name, list[i].name)
		}
	}
	return list, nil
}
