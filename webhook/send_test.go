package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/webhook/webhooktest"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func message() Message {
	return Message{ID: "msg_01jd3m5x8q7w9e2r4t6y8u0i1o", Timestamp: time.Unix(1700000000, 0), Body: []byte(`{"type":"api_key.rotated"}`)}
}

func TestSend(t *testing.T) {
	var got *http.Request
	var body []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		if r.URL.Path == "/elsewhere" {
			t.Error("a redirect was followed")
		}
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 10*MaxResponseBytes)))
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c := NewClient(Policy{Insecure: true})
	m := message()

	t.Run("OK", func(t *testing.T) {
		if err := c.Send(t.Context(), srv.URL+"/hook?token=abc", secret, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" || string(body) != string(m.Body) {
			t.Errorf("request %s %q %s", got.Method, got.Header.Get("Content-Type"), body)
		}
		if got.Header.Get("webhook-id") != m.ID || got.Header.Get("webhook-timestamp") != "1700000000" {
			t.Errorf("headers %v", got.Header)
		}
		if !Verify(secret, m.ID, 1700000000, body, got.Header.Get("webhook-signature")) {
			t.Errorf("signature %q does not verify", got.Header.Get("webhook-signature"))
		}
		// The Standard Webhooks reference vector, computed independently.
		sig, _ := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
		if sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
			t.Errorf("Sign of the reference vector = %s", sig)
		}
	})
	t.Run("OKBigAnswer", func(t *testing.T) {
		if err := c.Send(t.Context(), srv.URL+"/big", secret, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	})
	t.Run("ErrStatus", func(t *testing.T) {
		status = http.StatusServiceUnavailable
		defer func() { status = http.StatusNoContent }()
		err := c.Send(t.Context(), srv.URL+"/hook", secret, m)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
			t.Fatalf("Send: %v, want status 503", err)
		}
	})
	t.Run("ErrRedirect", func(t *testing.T) {
		err := c.Send(t.Context(), srv.URL+"/redirect", secret, m)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusFound {
			t.Fatalf("Send: %v, want status 302 unfollowed", err)
		}
	})
	t.Run("ErrRefusedConnection", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		err := c.Send(t.Context(), "http://"+addr+"/hook?token=sekrit", secret, m)
		if err == nil || strings.Contains(err.Error(), "sekrit") {
			t.Fatalf("Send: %v, want an error without the query", err)
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		hang := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
		defer slow.Close()
		defer close(hang)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if err := c.Send(ctx, slow.URL, secret, m); err == nil {
			t.Fatal("Send to a receiver that never answers succeeded")
		}
	})
}

// TestSendRefused checks that outside insecure mode nothing private is
// reached at connect time, whatever the URL says and whatever its name
// resolves to. The loopback server must never see a connection.
func TestSendRefused(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(net.Conn, http.ConnState) { conns.Add(1) }
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	c := NewClient(Policy{Resolver: webhooktest.LoopbackResolver(t)})
	for name, target := range map[string]string{
		"ErrLoopback":      "https://127.0.0.1:" + port + "/h",
		"ErrPrivate":       "https://10.0.0.1/h",
		"ErrLoopbackV6":    "https://[::1]:" + port + "/h",
		"ErrMetadata":      "https://169.254.169.254/latest/meta-data",
		"ErrLocalhost":     "https://localhost:" + port + "/h",
		"ErrRebinding":     "https://hooks.rebind.example:" + port + "/h",
		"ErrMappedV4":      "https://[::ffff:127.0.0.1]:" + port + "/h",
		"ErrHTTP":          "http://hooks.example.com/h",
		"ErrHTTPLoopback":  "http://127.0.0.1:" + port + "/h",
		"ErrCredentials":   "https://user:pw@hooks.example.com/h",
		"ErrNotAbsolute":   "/relative",
		"ErrUnspecified":   "https://0.0.0.0:" + port + "/h",
		"ErrSharedAddress": "https://100.64.0.1/h",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := c.Send(ctx, target, secret, message())
			if !errors.Is(err, ErrTarget) {
				t.Fatalf("Send(%s): %v, want ErrTarget", target, err)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback server saw %d connection events", n)
	}
}

// TestDialer checks the connect-time hook directly: a name that resolves
// to loopback is refused outside insecure mode, and reached inside it.
func TestDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	resolver := webhooktest.LoopbackResolver(t)
	target := net.JoinHostPort("hooks.rebind.example", port)

	addrs, err := resolver.LookupHost(t.Context(), "hooks.rebind.example")
	if err != nil || len(addrs) == 0 {
		t.Fatalf("the test resolver does not work: %v %v", addrs, err)
	}
	t.Run("ErrSecure", func(t *testing.T) {
		_, err := Policy{Resolver: resolver}.Dialer().DialContext(t.Context(), "tcp", target)
		if !errors.Is(err, ErrTarget) {
			t.Fatalf("dial %s (resolves to %v): %v, want ErrTarget", target, addrs, err)
		}
	})
	t.Run("OKInsecure", func(t *testing.T) {
		c, err := Policy{Insecure: true, Resolver: resolver}.Dialer().DialContext(t.Context(), "tcp4", target)
		if err != nil {
			t.Fatalf("dial %s in insecure mode: %v", target, err)
		}
		c.Close()
	})
	t.Run("ErrCheckURL", func(t *testing.T) {
		err := Policy{Resolver: resolver}.CheckURL(t.Context(), "https://hooks.rebind.example/h")
		if !errors.Is(err, ErrTarget) {
			t.Fatalf("CheckURL of a name resolving to loopback: %v", err)
		}
	})
}

func TestControlPublic(t *testing.T) {
	for addr, ok := range map[string]bool{
		"93.184.215.14:443": true, "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443": true,
		"127.0.0.1:443": false, "[::1]:443": false, "10.1.2.3:443": false, "192.168.0.1:443": false,
		"172.16.0.1:443": false, "169.254.169.254:80": false, "[fe80::1]:443": false, "[fc00::1]:443": false,
		"[::ffff:10.0.0.1]:443": false, "0.0.0.0:443": false, "not-an-address": false,
		"[::127.0.0.1]:443": false, "[::ffff:0:7f00:1]:443": false, "[2002:7f00:1::1]:443": false,
		"[64:ff9b::a00:1]:443": false, "[3fff::1]:443": false, "[5f00::1]:443": false, "93.184.215.14:0": false,
	} {
		err := controlPublic("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("controlPublic(%s) = %v, want ok=%v", addr, err, ok)
		}
		if err != nil && !errors.Is(err, ErrTarget) {
			t.Errorf("controlPublic(%s) = %v, not ErrTarget", addr, err)
		}
	}
}
