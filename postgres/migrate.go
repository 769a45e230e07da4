package postgres

import (
	"context"
	"embed"
	"errors"
	"io/fs"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/internal/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the schema changes, named <version>_<what>.sql. (Sub
// fails only for an invalid directory name.)
var migrations, _ = fs.Sub(migrationFiles, "migrations")

// migrationLock is the first half of the advisory lock key that serialises
// migrations ("apkd"); the second half is the hash of the schema migrated,
// so that deployments in different schemas of one database do not wait for
// each other.
const migrationLock = 0x61706b64

// migrate applies the migrations in fsys that the database has not recorded
// yet, in version order, each in its own transaction together with its row
// in schema_migrations, so a failed one leaves nothing behind.
//
// It works on a connection of its own, which holds a session advisory lock
// from before schema_migrations is created until the last migration has
// committed: replicas starting at once take turns, and each finds the
// migrations recorded by the one before. A replica that dies mid-migration
// loses its session, and with it the lock. The connection has no statement
// or lock timeout, since a migration of a large table may take long; ctx
// bounds the whole.
func migrate(ctx context.Context, cc *pgx.ConnConfig, fsys fs.FS) error {
	list, err := migration.Read(fsys)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return dbError("connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if _, err := conn.Exec(ctx, "SET statement_timeout = 0; SET lock_timeout = 0"); err != nil {
		return dbError("migrate", err)
	}
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return dbError("migrate", err)
	}
	if schema == nil {
		return errors.New("migrate: no schema to create tables in: check the search_path of the database URL")
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", migrationLock, *schema); err != nil {
		return dbError("migrate: take the migration lock", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, hashtext($2))", migrationLock, *schema)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return dbError("create schema_migrations", err)
	}
	for _, m := range list {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var applied bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.Version).Scan(&applied); err != nil || applied {
				return err
			}
			// Without arguments, pgx sends the script as one simple query,
			// so it may hold several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.Version)
			return err
		})
		if err != nil {
			return dbError("migration "+m.Name, err)
		}
	}
	return nil
}
