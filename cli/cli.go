// Package cli is apikeyd's command line: `apikeyd serve` runs the server,
// and the other commands talk to a running server.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/server"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks errors that are the caller's to fix (bad flags or
// configuration): exit code 2.
type usageError struct{ error }

// Main runs the command line with the given arguments and environment and
// returns the process exit code.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRoot(stdout, stderr, getenv)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "apikeyd:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:           "apikeyd",
		Short:         "Self-hosted API key service: issue, verify, rotate and revoke keys",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(stderr, getenv), newVersion(stdout))
	return root
}

func newVersion(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, "apikeyd", server.Version)
			return err
		},
	}
}

func newServe(stderr io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: `Run the server. Every setting is a flag and an environment variable; flags win.
With nothing configured it stores its data in ./data (SQLite), generates an
admin token and a master key there, and listens on 127.0.0.1:8080.
SIGTERM or SIGINT drains in-flight requests, writes buffered last uses and exits 0.`,
		Args: cobra.NoArgs,
	}
	config.RegisterFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(cmd.Flags(), getenv)
		if err != nil {
			return usageError{err}
		}
		log := newLogger(stderr, cfg)
		server.TuneGC(getenv)
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		srv, err := server.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return srv.Run(ctx, 25*time.Second)
	}
	return cmd
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
