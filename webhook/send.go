package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Limits of a delivery attempt.
const (
	// Timeout bounds a whole attempt: connecting, sending and reading the
	// answer.
	Timeout = 10 * time.Second
	// MaxResponseBytes is how much of an answer's body is read (and thrown
	// away) before the connection is given up.
	MaxResponseBytes = 64 << 10
)

// Message is one signed delivery: the same ID on every attempt, the
// timestamp of this attempt, and the JSON body.
type Message struct {
	ID        string
	Timestamp time.Time
	Body      []byte
}

// Client delivers messages to webhook targets under a Policy. Outside
// insecure mode it speaks only https and connects only to public addresses:
// the address is checked when the socket is about to connect, after name
// resolution, so a host name that resolves to a private address — whether
// at configuration time or only later, as in DNS rebinding — is refused.
// It follows no redirects and uses no proxy.
type Client struct {
	policy Policy
	http   *http.Client
}

// NewClient returns a Client for the policy.
func NewClient(p Policy) *Client {
	dialer := p.Dialer()
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would connect on our behalf, unchecked
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    Timeout,
		ResponseHeaderTimeout:  Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &Client{
		policy: p,
		http: &http.Client{
			Transport: transport,
			Timeout:   Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is an answer, and not a 2xx
			},
		},
	}
}

// Dialer returns the dialer deliveries connect with. Outside insecure mode
// its Control hook refuses any address that is not public (PublicAddr),
// whatever name led to it.
func (p Policy) Dialer() *net.Dialer {
	d := &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second, Resolver: p.Resolver}
	if !p.Insecure {
		d.Control = controlPublic
	}
	return d
}

// controlPublic is a net.Dialer Control hook: it runs with the resolved
// address just before the socket connects.
func controlPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse("cannot check address " + address)
	}
	if !PublicAddr(ap.Addr()) {
		return refuse("address " + ap.Addr().String() + " is not public")
	}
	if ap.Port() == 0 {
		return refuse("port 0 is not a port to connect to")
	}
	return nil
}

// StatusError is an answer other than 2xx.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "answered " + strconv.Itoa(e.Status) }

// Send POSTs the message to target, signed with secret per Standard
// Webhooks, and returns nil only for a 2xx answer. Errors are fit for the
// operator's log and the audit trail: they never contain the body or the
// secret, nor the target's query string.
func (c *Client) Send(ctx context.Context, target, secret string, m Message) error {
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return refuse("invalid URL")
	}
	if u.Scheme != "https" && !(c.policy.Insecure && u.Scheme == "http") {
		return refuse("must use https")
	}
	if u.User != nil {
		return refuse("must not contain credentials")
	}
	ts := m.Timestamp.Unix()
	sig, err := Sign(secret, m.ID, ts, m.Body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(m.Body))
	if err != nil {
		return refuse("invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "apikeyd-webhook/1")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := c.http.Do(req)
	if err != nil {
		return sendError(err)
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused; the
	// receiver's words are not ours to keep.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Status: resp.StatusCode}
	}
	return nil
}

// sendError strips the URL (which may carry a token in its query) from a
// client error and keeps its cause.
func sendError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return fmt.Errorf("%s failed: %w", ue.Op, ue.Err)
	}
	return err
}
