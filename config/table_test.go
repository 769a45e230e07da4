package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration tables of the docs")

// TestDocsTable keeps the configuration tables of the README and the docs
// equal to Settings. Run `go test ./config -update` after changing a setting.
func TestDocsTable(t *testing.T) {
	const start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
	for _, path := range []string{"../README.md", "../docs/configuration.md"} {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		i, j := strings.Index(doc, start), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no config-table markers", path)
		}
		want := doc[:i+len(start)] + MarkdownTable() + doc[j:]
		if doc == want {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: the configuration table is out of date; run go test ./config -update", path)
	}
}
