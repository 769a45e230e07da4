package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/postgres"
)

// checkDataDir refuses an SQLite data directory that holds secrets but no
// database: the database was lost or moved, and starting would create an
// empty one beside the old secrets, every key gone without a word.
func checkDataDir(cfg config.Config) error {
	if cfg.Postgres() {
		return nil
	}
	db := dataPath(cfg, "apikeyd.db")
	if _, err := os.Stat(db); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return dataDirError(cfg, err)
	}
	var found []string
	for _, name := range []string{"admin.token", "master.key"} {
		if _, err := os.Stat(dataPath(cfg, name)); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil // a first start
	}
	return fmt.Errorf("data directory %s (APIKEYD_DATA_DIR) has %v but no database apikeyd.db: it was deleted or moved, "+
		"and starting would create an empty one, every key lost. Restore apikeyd.db (with apikeyd.db-wal if there is one) "+
		"from a backup; or, to start afresh on purpose, move %v out of the directory", cfg.DataDir, found, found)
}

// dataDirError adds to an error of reaching the data directory, when it is
// one of permissions, which setting names the directory and as whom the
// server runs, so that the fix (chown, or another directory) is plain.
func dataDirError(cfg config.Config, err error) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return fmt.Errorf("data directory %s (APIKEYD_DATA_DIR) cannot be used by user %s: %w; "+
		"give that user read and write access to it (chown), or set APIKEYD_DATA_DIR to a directory it owns",
		cfg.DataDir, currentUser(), err)
}

// currentUser names the user the process runs as: "name (uid N)".
func currentUser() string {
	uid := os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// openPostgres opens the PostgreSQL store, retrying with backoff while the
// database does not answer (it may be starting beside apikeyd), for at
// most cfg.DatabaseWait. An answer that is a refusal — wrong password, no
// such database — or a URL that does not parse is not retried.
func openPostgres(ctx context.Context, cfg config.Config, log *slog.Logger) (*postgres.Store, error) {
	deadline := time.Now().Add(cfg.DatabaseWait)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err == nil {
			return st, nil
		}
		if !retryable(err) || ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			if attempt > 1 {
				return nil, fmt.Errorf("open postgres store: no answer after %d attempts in %s (APIKEYD_DATABASE_WAIT=%s): %w",
					attempt, cfg.DatabaseWait, cfg.DatabaseWait, err)
			}
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		log.Warn("PostgreSQL does not answer yet; retrying", "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open postgres store: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// retryable reports whether an error of opening PostgreSQL may go away by
// itself: the server did not answer, as opposed to answering no.
func retryable(err error) bool {
	var pe *pgconn.PgError
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pe) || errors.As(err, &pce) {
		return false
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || apikey.ErrorCode(err) == apikey.EUNAVAILABLE
}
