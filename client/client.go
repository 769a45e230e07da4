package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds each request of a client made without
// WithHTTPClient. A context deadline, when shorter, wins.
const DefaultTimeout = 30 * time.Second

// MaxIdleConnsPerHost is how many idle connections to the server the
// transport of a client made without WithHTTPClient keeps for reuse: at
// least the number of requests a busy service (such as a guard in front of
// a loaded API) has in flight at once, so that under load every request
// goes over a connection already open instead of dialling a new one.
// net/http's default transport keeps 2.
const MaxIdleConnsPerHost = 256

// NewTransport returns a transport sized as the one of a client made without
// WithHTTPClient: http.DefaultTransport's settings (proxy from the
// environment, keep-alive, HTTP/2 over TLS, 90 s idle timeout, shorter than
// apikeyd's 2 min) keeping up to MaxIdleConnsPerHost idle connections. Use
// it as the base of an http.Client of your own (for instrumentation, say),
// so that your client reuses connections as well.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}

// defaultHTTPClient is the http.Client of every client made without
// WithHTTPClient: one transport, and so one pool of connections, for them
// all.
var defaultHTTPClient = &http.Client{Timeout: DefaultTimeout, Transport: NewTransport()}

// maxResponseBytes bounds what is read of any answer (a page of 1000 keys
// is well under 1 MiB).
const maxResponseBytes = 32 << 20

// Client talks to one apikeyd server with one bearer token. It is safe for
// concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	// The values of the Authorization and User-Agent headers, nil for
	// none. Transports must not modify a request's headers, so every
	// request shares them.
	authorization, userAgent []string
}

var jsonMediaType = []string{"application/json"}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc, for
// timeouts, proxies, TLS settings or instrumentation of your own. Give hc a
// transport that keeps as many idle connections as you have requests in
// flight (NewTransport does), or each request beyond net/http's default of
// 2 opens, and then closes, a connection of its own.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		c.userAgent = nil
		if ua != "" {
			c.userAgent = []string{ua}
		}
	}
}

// New returns a client of the apikeyd server at baseURL (such as
// "http://127.0.0.1:8080", or "https://keys.internal/apikeyd" behind a
// proxy that adds a path) authenticating with token. An empty token sends
// no Authorization header, which only the health endpoints accept.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: the server URL must be http:// or https:// with a host, got %q", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("client: the server URL must not carry credentials, a query or a fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, hc: defaultHTTPClient, userAgent: []string{"apikeyd-go-client"}}
	if token != "" {
		c.authorization = []string{"Bearer " + token}
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// endpoint returns the absolute URL of an API path (already escaped, as
// keyPath does) with a query.
func (c *Client) endpoint(escapedPath string, q url.Values) *url.URL {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + escapedPath
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	return &u
}

// do sends a request and decodes a 2xx JSON answer into out (when not
// nil). Any other answer is an *Error.
func (c *Client) do(ctx context.Context, method string, u *url.URL, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("client: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// Canonical names set directly, and values made once: a guard sends
	// this on every request of its API.
	req.Header["Accept"] = jsonMediaType
	if in != nil {
		req.Header["Content-Type"] = jsonMediaType
	}
	if c.authorization != nil {
		req.Header["Authorization"] = c.authorization
	}
	if c.userAgent != nil {
		req.Header["User-Agent"] = c.userAgent
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // a *url.Error naming method and URL, neither secret
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("client: read %s %s answer: %w", method, u.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, newError(resp, raw)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("client: decode %s %s answer: %w", method, u.Path, err)
		}
	}
	return resp.Header, nil
}
