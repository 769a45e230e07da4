package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// pageSize is how many keys or events a list page shows.
const pageSize = 50

// projectsView is the projects page's data.
type projectsView struct {
	Projects []service.ProjectSummary
	CanWrite bool
	Error    string
}

// projects lists the projects the signed-in credential may read.
func (u *UI) projects(w http.ResponseWriter, r *http.Request, rq *request) {
	u.showProjects(w, r, rq, http.StatusOK, "")
}

func (u *UI) showProjects(w http.ResponseWriter, r *http.Request, rq *request, status int, msg string) {
	ps, err := u.svc.Projects(r.Context(), rq.p)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	u.page(w, rq, status, "projects", "Projects", "projects", projectsView{Projects: ps, CanWrite: rq.p.Allows(apikey.ScopeWrite), Error: msg})
}

// openProject goes to the project the form names, which may have no keys
// yet (projects exist through their keys).
func (u *UI) openProject(w http.ResponseWriter, r *http.Request, rq *request) {
	id := strings.TrimSpace(r.FormValue("project_id"))
	if !apikey.ValidIdentifier(id) {
		u.showProjects(w, r, rq, http.StatusBadRequest, "A project ID is 1-128 characters of A-Z a-z 0-9 _ . : -")
		return
	}
	http.Redirect(w, r, projectKeysURL(id), http.StatusSeeOther)
}

func projectKeysURL(project string) string {
	return Prefix + "projects/" + url.PathEscape(project) + "/keys"
}

func keyURL(id string) string { return Prefix + "keys/" + url.PathEscape(id) }

// keysView is a project's key list.
type keysView struct {
	Project     string
	Environment string
	Owner       string
	Status      string
	Query       string
	Statuses    []apikey.Status
	Keys        []*apikey.Key
	// Next links to the following page; empty on the last.
	Next string
	// Partial says a search stopped after maxSearchScan keys; Next goes on.
	Partial  bool
	Filtered bool
	CanWrite bool
}

var statuses = []apikey.Status{apikey.StatusActive, apikey.StatusRotating, apikey.StatusDisabled, apikey.StatusRotated, apikey.StatusExpired, apikey.StatusRevoked}

// keys lists a project's keys, newest first: filtered by environment and
// status by the service, searched by name or prefix here, one page at a
// time.
func (u *UI) keys(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v := keysView{
		Project:     r.PathValue("project"),
		Environment: strings.TrimSpace(q.Get("environment_id")),
		Owner:       strings.TrimSpace(q.Get("owner_id")),
		Status:      q.Get("status"),
		Query:       strings.TrimSpace(q.Get("q")),
		Statuses:    statuses,
		CanWrite:    rq.p.Allows(apikey.ScopeWrite),
	}
	v.Filtered = v.Environment != "" || v.Owner != "" || v.Status != "" || v.Query != ""
	if v.Owner != "" && !apikey.ValidOwnerID(v.Owner) {
		u.fail(w, r, rq, apikey.Invalid("the request is invalid", apikey.FieldError{Field: "owner_id", Message: apikey.MsgOwnerID}))
		return
	}
	in := service.ListInput{ProjectID: v.Project, EnvironmentID: v.Environment, OwnerID: v.Owner}
	if v.Status != "" {
		st, ok := apikey.ParseStatus(v.Status)
		if !ok {
			u.fail(w, r, rq, apikey.Invalid("status must be one of active, rotating, disabled, rotated, expired, revoked"))
			return
		}
		in.Status = st
	}
	if c := q.Get("after"); c != "" {
		after, ok := parseCursor(c, apikey.IDKindKey)
		if !ok {
			u.fail(w, r, rq, apikey.Invalid("that page link is not valid; start from the first page"))
			return
		}
		in.After = &after
	}
	keys, next, partial, err := u.keyPage(r.Context(), rq.p, in, v.Query)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	v.Keys, v.Partial = keys, partial
	if next != nil {
		nq := url.Values{}
		for _, f := range [][2]string{{"environment_id", v.Environment}, {"owner_id", v.Owner}, {"status", v.Status}, {"q", v.Query}} {
			if f[1] != "" {
				nq.Set(f[0], f[1])
			}
		}
		nq.Set("after", formatCursor(*next))
		v.Next = projectKeysURL(v.Project) + "?" + nq.Encode()
	}
	u.page(w, rq, http.StatusOK, "keys", v.Project+" · keys", "projects", v)
}

// Searching reads the project's keys page by page and keeps the matches;
// one request reads at most maxSearchScan keys, then offers to go on.
const (
	searchBatch   = 200
	maxSearchScan = 5000
)

// keyPage returns one page of keys matching query (all of them when query
// is empty), the cursor of the next page, and whether a search stopped
// early.
func (u *UI) keyPage(ctx context.Context, p apikey.Principal, in service.ListInput, query string) ([]*apikey.Key, *apikey.Cursor, bool, error) {
	if query == "" {
		in.Limit = pageSize
		keys, next, err := u.svc.List(ctx, p, in)
		return keys, next, false, err
	}
	var out []*apikey.Key
	for scanned := 0; ; {
		in.Limit = searchBatch
		batch, next, err := u.svc.List(ctx, p, in)
		if err != nil {
			return nil, nil, false, err
		}
		for i, k := range batch {
			scanned++
			if !matches(k, query) {
				continue
			}
			out = append(out, k)
			if len(out) == pageSize {
				if i == len(batch)-1 && next == nil {
					return out, nil, false, nil
				}
				c := apikey.Cursor{Time: k.CreatedAt, ID: k.ID}
				return out, &c, false, nil
			}
		}
		if next == nil {
			return out, nil, false, nil
		}
		if scanned >= maxSearchScan {
			return out, next, true, nil
		}
		in.After = next
	}
}

// matches reports whether a search for q finds k: by name (any part, any
// case), by key prefix (its start) or by ID.
func matches(k *apikey.Key, q string) bool {
	return strings.Contains(strings.ToLower(k.Name), strings.ToLower(q)) ||
		strings.HasPrefix(k.KeyPrefix, q) || k.ID == q
}

// A page link's cursor is the position of the last key or event shown:
// <created_at in Unix µs>.<id>. It only positions a listing the service
// restricts to what the caller may see.
func formatCursor(c apikey.Cursor) string {
	return strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + c.ID
}

func parseCursor(s, kind string) (apikey.Cursor, bool) {
	t, id, ok := strings.Cut(s, ".")
	if !ok || !apikey.ValidID(kind, id) {
		return apikey.Cursor{}, false
	}
	us, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return apikey.Cursor{}, false
	}
	return apikey.Cursor{Time: time.UnixMicro(us).UTC(), ID: id}, true
}

// keyView is a key's page.
type keyView struct {
	Key    *apikey.Key
	Status apikey.Status
	// Once is the key's plaintext, on the one page after its create or
	// rotate.
	Once   *shownOnce
	Events []eventView
	More   string // link to the rest of the key's audit trail
	// HourUsage and DayUsage chart the key's verdicts over the last 24
	// hours and 30 days.
	HourUsage, DayUsage chart
	// Limits are the key's rate limits; Credits its balance (nil:
	// unlimited) and Refill its refill schedule in words.
	Limits  []limitView
	Credits *apikey.Credits
	Refill  string
	// RevocationReason is the revoked key's reason, as the revoke form
	// names it.
	RevocationReason string
	// Meta is the key's meta, indented for reading; empty for none.
	Meta string
	// OwnerKeys links to the project's keys of the key's owner.
	OwnerKeys string
	// CanRotate, CanRevoke, CanDisable and CanEnable say which actions the
	// page offers: what the credential may do to a key in its state.
	CanRotate, CanRevoke, CanDisable, CanEnable, CanAdjustCredits bool
	CreditOps                                                     []option
	MaxCredits                                                    int64
	Graces                                                        []option
	Reasons                                                       []option
	// RotateError, RevokeError and StateError (disable, enable) explain a
	// refused action.
	RotateError, RevokeError, StateError, CreditsError string
	// MaxDisabledReason is how long a disable reason may be.
	MaxDisabledReason int
}

// option is one choice of a select.
type option struct{ Value, Label string }

// Grace presets of the rotate form, from "stop now" to the API's longest.
var graces = []option{
	{"0", "None: the old key stops now"},
	{"60", "1 hour (the API's default)"},
	{"1440", "1 day"},
	{"10080", "7 days (the longest)"},
}

// reasons are the revoke form's choices: the domain's revocation reasons,
// "key_compromise" labelled "Key compromise".
var reasons = func() []option {
	out := make([]option, len(apikey.RevocationReasons))
	for i, r := range apikey.RevocationReasons {
		label := strings.ReplaceAll(string(r), "_", " ")
		out[i] = option{Value: string(r), Label: strings.ToUpper(label[:1]) + label[1:]}
	}
	return out
}()

// reasonLabel is the revoke form's label of a revocation reason; a key
// revoked before reasons were kept has none, which is unspecified.
func reasonLabel(r apikey.RevocationReason) string {
	if r == "" {
		r = apikey.RevocationUnspecified
	}
	for _, o := range reasons {
		if o.Value == string(r) {
			return o.Label
		}
	}
	return string(r)
}

// key shows one key: every field, its audit trail and the actions the
// credential may take on it.
func (u *UI) key(w http.ResponseWriter, r *http.Request, rq *request) {
	u.showKey(w, r, rq, http.StatusOK, func(*keyView) {})
}

// keyEvents is how many of a key's audit events its page shows.
const keyEvents = 100

func (u *UI) showKey(w http.ResponseWriter, r *http.Request, rq *request, status int, edit func(*keyView)) {
	ctx := r.Context()
	k, err := u.svc.Get(ctx, rq.p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	evs, next, err := u.svc.AuditEvents(ctx, rq.p, service.AuditInput{ProjectID: k.ProjectID, KeyID: k.ID, Limit: keyEvents})
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	now := u.now()
	credits, err := u.svc.Credits(ctx, k)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	var usage [2]chart
	for i, s := range []usageSpan{hourSpan, daySpan} {
		first := s.first(now)
		buckets, err := u.svc.KeyUsage(ctx, rq.p, k.ID, service.UsageInput{From: first, To: s.step(first, s.n), Granularity: s.granularity})
		if err != nil {
			u.fail(w, r, rq, err)
			return
		}
		usage[i] = usageChart(s, first, buckets)
	}
	v := keyView{
		Key:        k,
		Status:     k.Status(now),
		Events:     eventViews(evs),
		HourUsage:  usage[0],
		DayUsage:   usage[1],
		Limits:     limitViews(k.RateLimits),
		Credits:    credits,
		Refill:     refillText(credits),
		CreditOps:  creditOps,
		MaxCredits: apikey.MaxCredits,
		Graces:     graces,
		Reasons:    reasons,

		MaxDisabledReason: apikey.MaxDisabledReasonLen,
	}
	if !k.RevokedAt.IsZero() {
		v.RevocationReason = reasonLabel(k.RevocationReason)
	}
	if k.OwnerID != "" {
		v.OwnerKeys = projectKeysURL(k.ProjectID) + "?" + url.Values{"owner_id": {k.OwnerID}}.Encode()
	}
	if len(k.Meta) > 0 {
		var b bytes.Buffer
		if err := json.Indent(&b, k.Meta, "", "  "); err != nil {
			v.Meta = string(k.Meta) // stored compact and valid; shown as it is if not
		} else {
			v.Meta = b.String()
		}
	}
	if next != nil {
		v.More = Prefix + "projects/" + url.PathEscape(k.ProjectID) + "/audit?key_id=" + url.QueryEscape(k.ID)
	}
	if rq.once != nil && rq.once.KeyID == k.ID {
		v.Once = rq.once
	}
	write := rq.p.Allows(apikey.ScopeWrite) && rq.p.Covers(k.Scopes)
	live := write && k.RevokedAt.IsZero()
	v.CanRevoke = live
	v.CanDisable = live && k.DisabledAt.IsZero()
	v.CanEnable = live && !k.DisabledAt.IsZero()
	v.CanAdjustCredits = write && credits != nil
	v.CanRotate = live && k.DisabledAt.IsZero() && k.ReplacedByKeyID == "" && v.Status != apikey.StatusExpired
	edit(&v)
	u.page(w, rq, status, "key", k.Name+" · key", "projects", v)
}

// eventView is an audit event as a timeline or the audit log shows it.
type eventView struct {
	*apikey.AuditEvent
	Actor   string
	Details []detail
}

type detail struct{ Name, Value string }

func eventViews(evs []*apikey.AuditEvent) []eventView {
	out := make([]eventView, len(evs))
	for i, e := range evs {
		out[i] = eventView{AuditEvent: e, Actor: actorLabel(e.Actor), Details: details(e.Details)}
	}
	return out
}

func actorLabel(a apikey.Actor) string {
	switch {
	case a.Type == apikey.ActorAdmin:
		return "admin token"
	case a.KeyID != "" && a.Name != "":
		return strings.ReplaceAll(a.Type, "_", " ") + " " + a.Name + " (" + a.KeyID + ")"
	case a.KeyID != "":
		return strings.ReplaceAll(a.Type, "_", " ") + " " + a.KeyID
	}
	return a.Type
}

// details renders an event's details as name/value pairs in name order.
// Details never hold a secret (the service guarantees it), so they are
// shown as they are.
func details(m map[string]any) []detail {
	out := make([]detail, 0, len(m))
	for name, val := range m {
		var s string
		switch x := val.(type) {
		case string:
			s = x
		case nil:
			s = "none"
		default:
			b, err := json.Marshal(x)
			if err != nil {
				s = fmt.Sprint(x)
			} else {
				s = string(b)
			}
		}
		out = append(out, detail{Name: strings.ReplaceAll(name, "_", " "), Value: s})
	}
	slices.SortFunc(out, func(a, b detail) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// auditView is a project's audit log.
type auditView struct {
	Project string
	KeyID   string
	Events  []eventView
	Next    string
}

// audit lists a project's audit events, newest first, optionally of one
// key.
func (u *UI) audit(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v := auditView{Project: r.PathValue("project"), KeyID: strings.TrimSpace(q.Get("key_id"))}
	in := service.AuditInput{ProjectID: v.Project, KeyID: v.KeyID, Limit: pageSize}
	if c := q.Get("after"); c != "" {
		after, ok := parseCursor(c, apikey.IDKindEvent)
		if !ok {
			u.fail(w, r, rq, apikey.Invalid("that page link is not valid; start from the first page"))
			return
		}
		in.After = &after
	}
	evs, next, err := u.svc.AuditEvents(r.Context(), rq.p, in)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	v.Events = eventViews(evs)
	if next != nil {
		nq := url.Values{"after": {formatCursor(*next)}}
		if v.KeyID != "" {
			nq.Set("key_id", v.KeyID)
		}
		v.Next = Prefix + "projects/" + url.PathEscape(v.Project) + "/audit?" + nq.Encode()
	}
	u.page(w, rq, http.StatusOK, "audit", v.Project+" · audit log", "projects", v)
}
