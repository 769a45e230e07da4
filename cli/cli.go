// Package cli is apikeyd's command line: `apikeyd serve` runs the server,
// `apikeyd keys …` manages and verifies keys on a running server through
// the Go client (so the CLI speaks exactly the server's contract),
// `apikeyd version` says what was built, and `apikeyd completion` writes
// shell completion scripts.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/apikeyd/apikeyd/client"
	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/logging"
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
// returns the process exit code. `keys verify -` reads standard input.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return run(args, os.Stdin, stdout, stderr, getenv)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRoot(stdin, stdout, stderr, getenv)
	started := markStart(root)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	if !*started {
		// cobra refused the command line before running anything: unknown
		// command, wrong arguments, a required flag missing.
		err = usageError{err}
	}
	if errors.Is(err, errInvalidKey) {
		return exitInvalidKey
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, err) // already says "apikeyd: <status> …"
		return exitFailed
	}
	fmt.Fprintln(stderr, "apikeyd:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

// markStart makes every command record that it started to run, so that
// errors from before (cobra's checks of arguments and flags) are told from
// errors of the command itself.
func markStart(c *cobra.Command) *bool {
	started := new(bool)
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*started = true
				return run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(c)
	return started
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:           "apikeyd",
		Short:         "Self-hosted API key service: issue, verify, rotate and revoke keys",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(stderr, getenv), newKeys(stdin, stdout, stderr, getenv), newRootKeys(stdout, stderr, getenv), newVersion(stdout))
	return root
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
		// Logs, one line per request included, are written in batches: see
		// package logging for what that trades.
		lw := logging.NewWriter(stderr, logging.FlushInterval, logging.MaxPending)
		defer lw.Close()
		log := logging.New(lw, cfg.LogFormat, cfg.LogLevel)
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
