package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// view is what every page template gets: the layout's part (title, who is
// signed in, the notice) and the page's own Data.
type view struct {
	Title string
	// Nav names the section the page belongs to, for the navigation.
	Nav  string
	Data any
	// request is the signed-in request, nil on the sign-in form.
	request *request
}

// SignedIn reports whether the page is shown to a signed-in person.
func (v *view) SignedIn() bool { return v.request != nil }

// Who names the credential the page acts with.
func (v *view) Who() string {
	switch {
	case v.request == nil:
		return ""
	case v.request.p.Admin:
		return "admin token"
	case v.request.p.Root:
		return "root key " + v.request.p.Name + " (" + v.request.p.KeyID + ")"
	}
	return "key " + v.request.p.KeyID
}

// SeesRootKeys reports whether the credential may list root keys, so that
// the navigation offers the page.
func (v *view) SeesRootKeys() bool {
	return v.request != nil && v.request.p.Allows(apikey.ScopeRootRead)
}

// Notice is the line a previous action left for this page.
func (v *view) Notice() string {
	if v.request == nil {
		return ""
	}
	return v.request.notice
}

// pages are the parsed templates, one per page, each with the layout.
type pages map[string]*template.Template

// parsePages parses templates/layout.html (the layout and the partials
// every page shares) with each other template. A template that does not
// parse is a programming error, found by every test.
func parsePages(funcs template.FuncMap) pages {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := pages{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.Must(layout.Clone()).ParseFS(files, name))
		out[strings.TrimSuffix(base, ".html")] = t
	}
	return out
}

// render writes page name with status. The page is rendered into memory
// first, so that a template error becomes a clean 500, not half a page.
func (u *UI) render(w http.ResponseWriter, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		u.log.Error("dashboard template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// page renders a signed-in page.
func (u *UI) page(w http.ResponseWriter, rq *request, status int, name, title, nav string, data any) {
	u.render(w, status, name, &view{Title: title, Nav: nav, Data: data, request: rq})
}

// funcs are the template functions. Times are shown relative to now, with
// the absolute UTC time in the element's title.
func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"rel": func(t time.Time) string { return relative(t, u.now()) },
		"abs": func(t time.Time) string {
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"path": url.PathEscape,
		"tab": func(project, tab string) map[string]string {
			return map[string]string{"Project": project, "Tab": tab}
		},
		"join": strings.Join,
		"status": func(k *apikey.Key) apikey.Status {
			return k.Status(u.now())
		},
	}
}

// relative says how far t is from now in the largest whole unit.
func relative(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		if future {
			return "in a few seconds"
		}
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	case d < 730*24*time.Hour:
		s = plural(int(d/(30*24*time.Hour)), "month")
	default:
		s = plural(int(d/(365*24*time.Hour)), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
