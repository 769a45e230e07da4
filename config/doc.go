package config

import (
	"strings"
)

// MarkdownTable renders Settings as the configuration table of the docs.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | accepted values | meaning |\n|---|---|---|---|---|\n")
	for _, s := range Settings {
		def := "`" + s.Default + "`"
		switch {
		case s.File != "":
			def = "generated (SQLite)"
		case s.Default == "":
			def = "empty"
		}
		env := "`" + s.Env + "`"
		if s.File != "" {
			env += " (or `" + s.File + "`)"
		}
		b.WriteString("| " + env + " | `--" + s.Flag + "` | " + def + " | " + cell(s.Limits()) + " | " + cell(s.Usage) + " |\n")
	}
	return b.String()
}

// cell escapes the pipes of a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
