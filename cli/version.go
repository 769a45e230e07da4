package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/server"
)

// buildInfo is what `apikeyd version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	Module    string `json:"module,omitempty"`
	Commit    string `json:"commit,omitempty"`
	CommitAt  string `json:"commit_time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// readBuildInfo combines the linker-set version with what the Go toolchain
// recorded in the binary: the module version (for `go install …@v1.2.3`)
// and the VCS commit it was built from.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: server.Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Module = info.Main.Path
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitAt = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// version returns the version string alone.
func version() string { return readBuildInfo().Version }

func newVersion(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := readBuildInfo()
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			if _, err := fmt.Fprintln(stdout, "apikeyd", b.Version); err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			if b.Commit != "" {
				commit := b.Commit
				if b.Modified {
					commit += " (modified)"
				}
				fmt.Fprintf(w, "  commit:\t%s\n", commit)
				if b.CommitAt != "" {
					fmt.Fprintf(w, "  commit time:\t%s\n", b.CommitAt)
				}
			}
			fmt.Fprintf(w, "  go:\t%s\n  platform:\t%s\n", b.GoVersion, b.Platform)
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
