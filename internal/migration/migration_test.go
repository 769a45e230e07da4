package migration

import (
	"testing"
	"testing/fstest"
)

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

func TestRead(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		list, err := Read(fstest.MapFS{
			"0010_later.sql": file("B"),
			"0002_first.sql": file("A"),
			"README.md":      file("not a migration"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Version != 2 || list[0].SQL != "A" || list[1].Name != "0010_later.sql" {
			t.Fatalf("Read = %+v", list)
		}
	})
	for name, fsys := range map[string]fstest.MapFS{
		"ErrNoVersion":   {"init.sql": file("A")},
		"ErrZero":        {"0000_init.sql": file("A")},
		"ErrNegative":    {"-1_init.sql": file("A")},
		"ErrSameVersion": {"0001_a.sql": file("A"), "1_b.sql": file("B")},
	} {
		t.Run(name, func(t *testing.T) {
			if list, err := Read(fsys); err == nil {
				t.Fatalf("Read = %+v, want an error", list)
			}
		})
	}
}
