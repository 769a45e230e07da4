package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"time"

	"github.com/apikeyd/apikeyd/internal/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the schema changes, named <version>_<what>.sql. (Sub
// fails only for an invalid directory name.)
var migrations, _ = fs.Sub(migrationFiles, "migrations")

// migrate applies the migrations in fsys that db has not recorded yet, in
// version order, each in its own transaction together with its row in
// schema_migrations, so a failed one leaves nothing behind. Checking and
// applying happen in the same write transaction, so two processes opening
// one file at once do not both apply a migration.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	list, err := migration.Read(fsys)
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
		err = inTx(ctx, db, func(t *sql.Tx) error {
			var applied bool
			if err := t.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)", m.Version).Scan(&applied); err != nil || applied {
				return err
			}
			if _, err := t.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := t.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.Version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return dbError("migration "+m.Name, err)
		}
	}
	return nil
}
