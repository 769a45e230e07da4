package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"
)

// Cluster is the PostgreSQL server of the test database when it runs on
// this machine as a Debian cluster (postgresql-common), which tests may
// stop and start with pg_ctlcluster.
type Cluster struct {
	Version, Name string
	stopped       bool
	restarts      bool // a cleanup starts the cluster if a test left it stopped
}

// LocalCluster takes the server for t alone (Exclusive) and returns its
// cluster. It skips the test when the server cannot be controlled from here
// (not on this machine, no pg_ctlcluster, not its owner or root), or fails
// it under CI, where the outage tests must run. If the test leaves the
// cluster stopped, it is started again when the test ends, before the
// cleanups registered earlier (such as dropping databases) run.
func LocalCluster(t testing.TB) *Cluster {
	t.Helper()
	dbURL := URL(t)
	c, why := findCluster(dbURL)
	if c == nil {
		if _, required := Lookup(); required {
			t.Fatalf("CI=true, but this test cannot stop and start the PostgreSQL server: %s", why)
		}
		t.Skipf("cannot stop and start the PostgreSQL server of %s: %s", EnvURL, why)
	}
	Exclusive(t)
	return c
}

// findCluster finds the local cluster listening on the port of dbURL, or
// says why there is none that this process may control.
func findCluster(dbURL string) (*Cluster, string) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, err.Error()
	}
	host, port := u.Hostname(), u.Port()
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if p := u.Query().Get("port"); p != "" {
		port = p
	}
	if port == "" {
		port = "5432"
	}
	local := host == "" || host == "localhost" || strings.HasPrefix(host, "/")
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		local = true
	}
	if !local {
		return nil, fmt.Sprintf("host %q is not this machine", host)
	}
	out, err := exec.Command("pg_lsclusters", "--no-header").Output()
	if err != nil {
		return nil, fmt.Sprintf("pg_lsclusters: %v", err)
	}
	me, err := user.Current()
	if err != nil {
		return nil, err.Error()
	}
	for line := range strings.Lines(string(out)) {
		// Ver Cluster Port Status Owner Data-directory Log-file
		f := strings.Fields(line)
		if len(f) < 5 || f[2] != port {
			continue
		}
		if os.Geteuid() != 0 && me.Username != f[4] {
			return nil, fmt.Sprintf("cluster %s/%s belongs to %s, and this is %s", f[0], f[1], f[4], me.Username)
		}
		return &Cluster{Version: f[0], Name: f[1]}, ""
	}
	return nil, fmt.Sprintf("no cluster listens on port %s (pg_lsclusters)", port)
}

// Stop shuts the server down in fast mode: it ends every session with
// 57P01 and waits until the server is down.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.restartLater(t)
	c.stopped = true
	c.run(t, "stop")
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.run(t, "start")
	c.stopped = false
}

// Restart stops the server in fast mode and starts it again.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.restartLater(t)
	c.stopped = true
	c.run(t, "restart")
	c.stopped = false
}

// restartLater makes sure that the cluster runs again when t ends.
func (c *Cluster) restartLater(t testing.TB) {
	if c.restarts {
		return
	}
	c.restarts = true
	t.Cleanup(func() {
		if c.stopped {
			c.run(t, "start")
			c.stopped = false
		}
	})
}

func (c *Cluster) run(t testing.TB, action string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --skip-systemctl-redirect: act on the cluster itself, also where
	// systemd would otherwise be asked to.
	cmd := exec.CommandContext(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", c.Version, c.Name, action)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %s %s %s: %v\n%s", c.Version, c.Name, action, err, out)
	}
}
