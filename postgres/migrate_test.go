package postgres

import (
	"io/fs"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/postgres/pgtest"

	"github.com/apikeyd/apikeyd/internal/migration"
)

// rawConfig returns the connection settings of a fresh schema, without
// migrations, and a connection to it for inspection.
func rawConfig(t *testing.T) (*pgx.ConnConfig, *pgx.Conn) {
	t.Helper()
	cfg, err := poolConfig(pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg.ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	return cfg.ConnConfig, conn
}

// applied returns the versions schema_migrations records.
func applied(t *testing.T, conn *pgx.Conn) []int {
	t.Helper()
	versions, err := queryAll(t.Context(), conn, func(row pgx.Row) (int, error) {
		var v int
		return v, row.Scan(&v)
	}, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

// tableExists reports whether the schema has the named table.
func tableExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

func TestMigrate(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	t.Run("OKOnce", func(t *testing.T) {
		cc, conn := rawConfig(t)
		fsys := fstest.MapFS{
			"0002_b.sql": file("CREATE TABLE b (x integer); INSERT INTO b VALUES (1);"),
			"0001_a.sql": file("CREATE TABLE a (x integer);"),
			"README.md":  file("not a migration"),
		}
		for range 2 {
			if err := migrate(t.Context(), cc, fsys); err != nil {
				t.Fatal(err)
			}
		}
		if got := applied(t, conn); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("applied %v, want [1 2]", got)
		}
		var rows int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM b").Scan(&rows); err != nil || rows != 1 {
			t.Errorf("migration 2 ran %d times (%v), want once", rows, err)
		}

		fsys["0010_c.sql"] = file("CREATE TABLE c (x integer);")
		if err := migrate(t.Context(), cc, fsys); err != nil {
			t.Fatal(err)
		}
		if got := applied(t, conn); !slices.Equal(got, []int{1, 2, 10}) || !tableExists(t, conn, "c") {
			t.Errorf("applied %v, want [1 2 10]", got)
		}
	})

	t.Run("ErrFailingMigration", func(t *testing.T) {
		cc, conn := rawConfig(t)
		fsys := fstest.MapFS{
			"0001_a.sql": file("CREATE TABLE a (x integer);"),
			"0002_b.sql": file("CREATE TABLE b (x integer); INSERT INTO missing VALUES (1);"),
			"0003_c.sql": file("CREATE TABLE c (x integer);"),
		}
		if err := migrate(t.Context(), cc, fsys); err == nil {
			t.Fatal("migrate succeeded, want the error of 0002")
		}
		if got := applied(t, conn); !slices.Equal(got, []int{1}) {
			t.Errorf("applied %v, want [1]", got)
		}
		if !tableExists(t, conn, "a") || tableExists(t, conn, "b") || tableExists(t, conn, "c") {
			t.Error("a failed migration left part of its changes, or later ones ran")
		}

		fsys["0002_b.sql"] = file("CREATE TABLE b (x integer);")
		if err := migrate(t.Context(), cc, fsys); err != nil {
			t.Fatalf("migrate after the fix: %v", err)
		}
		if got := applied(t, conn); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("applied %v, want [1 2 3]", got)
		}
	})

	// OKConcurrent runs slow migrations from several connections at once.
	// Each would fail if it ran twice (CREATE TABLE without IF NOT EXISTS),
	// and without the lock two of them would both find 0001 missing while
	// the first is still sleeping.
	t.Run("OKConcurrent", func(t *testing.T) {
		cc, conn := rawConfig(t)
		fsys := fstest.MapFS{
			"0001_a.sql": file("CREATE TABLE a (x integer); SELECT pg_sleep(0.3); INSERT INTO a VALUES (1);"),
			"0002_b.sql": file("CREATE TABLE b (x integer); INSERT INTO b SELECT x FROM a;"),
		}
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = migrate(t.Context(), cc, fsys) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("migrate %d: %v", i, err)
			}
		}
		if got := applied(t, conn); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("applied %v, want [1 2]", got)
		}
		var rows int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM b").Scan(&rows); err != nil || rows != 1 {
			t.Errorf("b has %d rows (%v), want 1", rows, err)
		}
	})

	for name, fsys := range map[string]fstest.MapFS{
		"ErrNoVersion":        {"init.sql": file("SELECT 1;")},
		"ErrVersionZero":      {"0000_init.sql": file("SELECT 1;")},
		"ErrDuplicateVersion": {"0001_a.sql": file("SELECT 1;"), "1_b.sql": file("SELECT 1;")},
	} {
		t.Run(name, func(t *testing.T) {
			cc, conn := rawConfig(t)
			if err := migrate(t.Context(), cc, fsys); err == nil {
				t.Error("migrate succeeded, want an error")
			}
			if tableExists(t, conn, "schema_migrations") {
				t.Error("migrate changed the database before checking the files")
			}
		})
	}

	t.Run("OKEmbedded", func(t *testing.T) {
		cc, conn := rawConfig(t)
		if err := migrate(t.Context(), cc, migrations); err != nil {
			t.Fatal(err)
		}
		list, err := migration.Read(migrations)
		if err != nil || len(list) == 0 {
			t.Fatalf("embedded migrations: %v, %v", list, err)
		}
		if got := applied(t, conn); len(got) != len(list) {
			t.Errorf("applied %v of %d embedded migrations", got, len(list))
		}
	})
}

// TestSessionDefaults checks that connections get the timeouts that make
// an outage fail fast, and that the URL can override them.
func TestSessionDefaults(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	base := pgtest.Schema(t)
	for _, tt := range []struct {
		name, url string
		want      map[string]string
	}{
		{"OKDefaults", base, map[string]string{"statement_timeout": "10s", "lock_timeout": "5s", "idle_in_transaction_session_timeout": "30s", "application_name": "apikeyd"}},
		{"OKOverride", base + "&statement_timeout=1min&application_name=replica-a", map[string]string{"statement_timeout": "1min", "lock_timeout": "5s", "application_name": "replica-a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnConfig.ConnectTimeout != connectTimeout {
				t.Errorf("connect timeout %v, want %v", cfg.ConnConfig.ConnectTimeout, connectTimeout)
			}
			conn, err := pgx.ConnectConfig(t.Context(), cfg.ConnConfig)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())
			for name, want := range tt.want {
				var got string
				if err := conn.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s = %s, want %s", name, got, want)
				}
			}
		})
	}
}

// migrationsBefore is the embedded migrations older than version (e.g.
// "0009"), for tests that upgrade a database holding data.
func migrationsBefore(t *testing.T, version string) fstest.MapFS {
	t.Helper()
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < version {
			data, err := fs.ReadFile(migrations, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			before[e.Name()] = file(string(data))
		}
	}
	return before
}

// TestMigrateSpanGrants upgrades a database of migrations 0001–0008 that
// holds grants: 0009 keeps each as a grant of its own slice alone.
func TestMigrateSpanGrants(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	cc, conn := rawConfig(t)
	if err := migrate(t.Context(), cc, migrationsBefore(t, "0009")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "INSERT INTO usage_slices (subject, limit_name, slice, granted) VALUES ('key:a', 'x', 7, 3), ('key:a', 'x', 8, 4)"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), cc, migrations); err != nil {
		t.Fatalf("migrate 0009: %v", err)
	}
	rows, err := queryAll(t.Context(), conn, func(row pgx.Row) ([3]int64, error) {
		var r [3]int64
		return r, row.Scan(&r[0], &r[1], &r[2])
	}, "SELECT slice, last_slice, granted FROM usage_slices ORDER BY slice")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][3]int64{{7, 7, 3}, {8, 8, 4}}; !slices.Equal(rows, want) {
		t.Errorf("grants after 0009: %v, want %v", rows, want)
	}
}
