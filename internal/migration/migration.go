// Package migration reads a store's schema changes: ordered SQL files named
// <version>_<what>.sql, embedded in the binary. Each store applies them in
// its own dialect, one transaction per file, recorded in schema_migrations.
package migration

import (
	"cmp"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// File is one schema change.
type File struct {
	Version int
	Name    string
	SQL     string
}

// Read returns the .sql files of fsys in version order. It rejects names
// that do not start with a positive version and versions used twice, before
// anything is applied.
func Read(fsys fs.FS) ([]File, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	list := make([]File, len(names))
	for i, name := range names {
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name does not start with a version", name)
		}
		script, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		list[i] = File{Version: v, Name: name, SQL: string(script)}
	}
	slices.SortFunc(list, func(a, b File) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(list); i++ {
		if list[i].Version == list[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", list[i-1].Name, list[i].Name)
		}
	}
	return list, nil
}
