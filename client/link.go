package client

import (
	"fmt"
	"net/url"
	"strings"
)

// nextURL returns the target of the rel="next" link among the Link header
// values, resolved against the URL of the page that carried it, or nil.
// apikeyd's links are path-absolute ("/v1/api-keys?…"); when the client's
// base URL has a path of its own (a proxy serving apikeyd under a prefix),
// the prefix is kept.
func (c *Client) nextURL(page *url.URL, links []string) (*url.URL, error) {
	target := nextTarget(links)
	if target == "" {
		return nil, nil
	}
	ref, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("client: the server's Link header is not a URL: %w", err)
	}
	if ref.Host == "" && strings.HasPrefix(ref.Path, "/") && c.base.Path != "" && !strings.HasPrefix(ref.Path, c.base.Path+"/") {
		ref.Path = c.base.Path + ref.Path
		ref.RawPath = ""
	}
	next := page.ResolveReference(ref)
	if next.Host != page.Host || next.Scheme != page.Scheme {
		// Never send the token to another server than the one configured.
		return nil, fmt.Errorf("client: the server's next-page link leaves %s", page.Host)
	}
	return next, nil
}

// nextTarget finds the URI reference of rel="next" in RFC 8288 Link
// header values such as `<…>; rel="next", <…>; rel="prev"`.
func nextTarget(values []string) string {
	for _, v := range values {
		for v != "" {
			start := strings.IndexByte(v, '<')
			end := strings.IndexByte(v, '>')
			if start < 0 || end < start {
				break
			}
			target := v[start+1 : end]
			rest := v[end+1:]
			params := rest
			if i := strings.IndexByte(rest, '<'); i >= 0 {
				params = rest[:i]
			}
			for _, p := range strings.Split(params, ";") {
				name, val, ok := strings.Cut(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(p), ",")), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
			v = rest
		}
	}
	return ""
}
