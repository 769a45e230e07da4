// Package testserver starts a real apikeyd in the test process, through
// server.New, on 127.0.0.1:0 with a fresh data directory, for the tests of
// the packages built on top of the API (client, guard, web).
package testserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/logging"
	"github.com/apikeyd/apikeyd/server"
)

// Server is a running apikeyd.
type Server struct {
	// URL is the server's base URL, such as http://127.0.0.1:41234.
	URL string
	// AdminToken is the generated admin token.
	AdminToken string
	// Logs holds everything the server logged, as JSON lines.
	Logs *Log

	srv *server.Server
	dir string
}

// Log is a concurrency-safe buffer of log output.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer for the server's logger.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Start starts a server with the given extra flags (e.g. "--key-prefix",
// "pk"). Close stops it and removes its data.
func Start(args ...string) (*Server, error) {
	dir, err := os.MkdirTemp("", "apikeyd-test-")
	if err != nil {
		return nil, err
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	base := []string{"--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--log-format", "json",
		"--auth-failure-burst", "100000", "--last-used-flush", "200ms"}
	if err := fs.Parse(append(base, args...)); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logs := &Log{}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, logging.New(logs, cfg.LogFormat, cfg.LogLevel))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("new server: %w\n%s", err, logs)
	}
	if err := srv.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start server: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin.token"))
	if err != nil {
		srv.Shutdown(ctx)
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{URL: "http://" + srv.Addr(), AdminToken: strings.TrimSpace(string(tok)), Logs: logs, srv: srv, dir: dir}, nil
}

// Close shuts the server down and removes its data directory.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	os.RemoveAll(s.dir)
	return err
}

// New starts a server for one test and stops it when the test ends.
func New(tb testing.TB, args ...string) *Server {
	tb.Helper()
	s, err := Start(args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("shut down apikeyd: %v", err)
		}
	})
	return s
}
