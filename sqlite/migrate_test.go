package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/apikeyd/apikeyd/internal/migration"
)

// rawDB opens a writer connection on a fresh file, without migrations.
func rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := openDB(t.Context(), filepath.Join(t.TempDir(), "m.db"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// applied returns the versions schema_migrations records.
func applied(t *testing.T, db *sql.DB) []int {
	t.Helper()
	versions, err := queryAll(t.Context(), db, func(row scanner) (int, error) {
		var v int
		return v, row.Scan(&v)
	}, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

// tableExists reports whether the database has the named table.
func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRowContext(t.Context(), "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

func TestMigrate(t *testing.T) {
	t.Run("OKOnce", func(t *testing.T) {
		db := rawDB(t)
		fsys := fstest.MapFS{
			"0002_b.sql": file("CREATE TABLE b (x INTEGER); INSERT INTO b VALUES (1);"),
			"0001_a.sql": file("CREATE TABLE a (x INTEGER);"),
			"README.md":  file("not a migration"),
		}
		for range 2 {
			if err := migrate(t.Context(), db, fsys); err != nil {
				t.Fatal(err)
			}
		}
		if got := applied(t, db); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("applied %v, want [1 2]", got)
		}
		var rows int
		if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM b").Scan(&rows); err != nil || rows != 1 {
			t.Errorf("migration 2 ran %d times (%v), want once", rows, err)
		}

		fsys["0010_c.sql"] = file("CREATE TABLE c (x INTEGER);")
		if err := migrate(t.Context(), db, fsys); err != nil {
			t.Fatal(err)
		}
		if got := applied(t, db); !slices.Equal(got, []int{1, 2, 10}) || !tableExists(t, db, "c") {
			t.Errorf("applied %v, want [1 2 10]", got)
		}
	})

	t.Run("ErrFailingMigration", func(t *testing.T) {
		db := rawDB(t)
		fsys := fstest.MapFS{
			"0001_a.sql": file("CREATE TABLE a (x INTEGER);"),
			"0002_b.sql": file("CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1);"),
			"0003_c.sql": file("CREATE TABLE c (x INTEGER);"),
		}
		if err := migrate(t.Context(), db, fsys); err == nil {
			t.Fatal("migrate succeeded, want the error of 0002")
		}
		if got := applied(t, db); !slices.Equal(got, []int{1}) {
			t.Errorf("applied %v, want [1]", got)
		}
		if !tableExists(t, db, "a") || tableExists(t, db, "b") || tableExists(t, db, "c") {
			t.Error("a failed migration left part of its changes, or later ones ran")
		}

		fsys["0002_b.sql"] = file("CREATE TABLE b (x INTEGER);")
		if err := migrate(t.Context(), db, fsys); err != nil {
			t.Fatalf("migrate after the fix: %v", err)
		}
		if got := applied(t, db); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("applied %v, want [1 2 3]", got)
		}
	})

	for name, fsys := range map[string]fstest.MapFS{
		"ErrNoVersion":        {"init.sql": file("SELECT 1;")},
		"ErrVersionZero":      {"0000_init.sql": file("SELECT 1;")},
		"ErrDuplicateVersion": {"0001_a.sql": file("SELECT 1;"), "1_b.sql": file("SELECT 1;")},
	} {
		t.Run(name, func(t *testing.T) {
			db := rawDB(t)
			if err := migrate(t.Context(), db, fsys); err == nil {
				t.Error("migrate succeeded, want an error")
			}
			if tableExists(t, db, "schema_migrations") {
				t.Error("migrate changed the database before checking the files")
			}
		})
	}

	t.Run("OKEmbedded", func(t *testing.T) {
		db := rawDB(t)
		if err := migrate(t.Context(), db, migrations); err != nil {
			t.Fatal(err)
		}
		list, err := migration.Read(migrations)
		if err != nil || len(list) == 0 {
			t.Fatalf("embedded migrations: %v, %v", list, err)
		}
		if got := applied(t, db); len(got) != len(list) {
			t.Errorf("applied %v of %d embedded migrations", got, len(list))
		}
	})
}

// TestMigrateSpanGrants upgrades a database of migrations 0001–0008 that
// holds grants: 0009 rebuilds usage_slices and keeps each as a grant of
// its own slice alone.
func TestMigrateSpanGrants(t *testing.T) {
	db := rawDB(t)
	if err := migrate(t.Context(), db, migrationsBefore(t, "0009")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "INSERT INTO usage_slices (subject, limit_name, slice, granted) VALUES ('key:a', 'x', 7, 3), ('key:a', 'x', 8, 4)"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db, migrations); err != nil {
		t.Fatalf("migrate 0009: %v", err)
	}
	rows, err := db.QueryContext(t.Context(), "SELECT slice, last_slice, granted FROM usage_slices ORDER BY slice")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got [][3]int64
	for rows.Next() {
		var r [3]int64
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if want := [][3]int64{{7, 7, 3}, {8, 8, 4}}; !slices.Equal(got, want) {
		t.Errorf("grants after 0009: %v, want %v", got, want)
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
