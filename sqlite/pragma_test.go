package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestPragmas checks that the DSN parameters took effect: SQLite ignores
// pragmas it does not know, so a misspelt one would fail silently.
func TestPragmas(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tests := []struct {
		name   string
		db     *sql.DB
		pragma string
		want   string
	}{
		{"WriterWAL", s.write, "journal_mode", "wal"},
		{"WriterFullSync", s.write, "synchronous", "2"},
		{"WriterBusyTimeout", s.write, "busy_timeout", "5000"},
		{"WriterForeignKeys", s.write, "foreign_keys", "1"},
		{"WriterWritable", s.write, "query_only", "0"},
		{"ReaderWAL", s.read, "journal_mode", "wal"},
		{"ReaderBusyTimeout", s.read, "busy_timeout", "5000"},
		{"ReaderQueryOnly", s.read, "query_only", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if err := tt.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %s, want %s", tt.pragma, got, tt.want)
			}
		})
	}
	t.Run("ReaderCannotWrite", func(t *testing.T) {
		if _, err := s.read.ExecContext(t.Context(), "DELETE FROM keys"); err == nil {
			t.Error("a reader connection wrote to the database")
		}
	})
}
