package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// rootKeysView is the root keys page: the root keys the credential may
// see and, for a credential holding root-keys:write, the create form.
type rootKeysView struct {
	Keys []rootKeyRow
	Next string
	// Limited says the credential sees only root keys within its projects.
	Limited bool
	// Once is a new root key's plaintext, on the one page after its create.
	Once        *shownOnce
	CanWrite    bool
	Permissions []string
	Expiries    []option
	Form        rootKeyForm
	// Error says why the create form was refused; nothing was created.
	Error string
}

// rootKeyForm is what the create form posts.
type rootKeyForm struct {
	Name        string
	Permissions []string
	Projects    string
	AllProjects bool
	Expires     string
}

// Checked reports whether the form had permission p ticked.
func (f rootKeyForm) Checked(p string) bool { return slices.Contains(f.Permissions, p) }

// rootKeyRow is one root key as the list shows it.
type rootKeyRow struct {
	*apikey.RootKey
	Status    apikey.Status
	CreatedBy string
}

func rootKeysURL() string { return Prefix + "root-keys" }

// rootKeys lists root keys, newest first, one page at a time.
func (u *UI) rootKeys(w http.ResponseWriter, r *http.Request, rq *request) {
	u.showRootKeys(w, r, rq, http.StatusOK, rootKeyForm{}, "")
}

func (u *UI) showRootKeys(w http.ResponseWriter, r *http.Request, rq *request, status int, form rootKeyForm, msg string) {
	in := service.RootKeyListInput{Limit: pageSize}
	if c := r.URL.Query().Get("after"); c != "" {
		after, ok := parseCursor(c, apikey.IDKindRootKey)
		if !ok {
			u.fail(w, r, rq, apikey.Invalid("that page link is not valid; start from the first page"))
			return
		}
		in.After = &after
	}
	keys, next, err := u.svc.RootKeys(r.Context(), rq.p, in)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	now := u.now()
	v := rootKeysView{
		Limited:     rq.p.Root && rq.p.ProjectIDs != nil,
		CanWrite:    rq.p.Allows(apikey.ScopeRootWrite),
		Permissions: apikey.RootPermissions,
		Expiries:    expiries,
		Form:        form,
		Error:       msg,
	}
	if rq.once != nil && apikey.ValidID(apikey.IDKindRootKey, rq.once.KeyID) {
		v.Once = rq.once
	}
	for _, rk := range keys {
		v.Keys = append(v.Keys, rootKeyRow{RootKey: rk, Status: rk.Status(now), CreatedBy: actorLabel(rk.CreatedBy)})
	}
	if next != nil {
		v.Next = rootKeysURL() + "?" + url.Values{"after": {formatCursor(*next)}}.Encode()
	}
	u.page(w, rq, status, "rootkeys", "Root keys", "root-keys", v)
}

// createRootKey issues a root key and shows it once, on the root keys
// page. Where it acts is an explicit choice: listed projects, or "every
// project" ticked.
func (u *UI) createRootKey(w http.ResponseWriter, r *http.Request, rq *request) {
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, rq, apikey.Invalid("the form could not be read"))
		return
	}
	f := rootKeyForm{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Permissions: r.PostForm["permission"],
		Projects:    r.PostFormValue("project_ids"),
		AllProjects: r.PostFormValue("all_projects") == "on",
		Expires:     r.PostFormValue("expires_in_days"),
	}
	in := service.RootKeyInput{Name: f.Name, Permissions: f.Permissions}
	projects := splitScopes(f.Projects)
	switch {
	case f.AllProjects && len(projects) > 0:
		u.showRootKeys(w, r, rq, http.StatusBadRequest, f, "Give projects or tick every project, not both. Nothing was created.")
		return
	case !f.AllProjects && len(projects) == 0:
		u.showRootKeys(w, r, rq, http.StatusBadRequest, f, "Say where the root key acts: list its projects, or tick every project. Nothing was created.")
		return
	case !f.AllProjects:
		in.ProjectIDs = projects
	}
	if f.Expires != "" {
		days, err := strconv.Atoi(f.Expires)
		if err != nil {
			u.showRootKeys(w, r, rq, http.StatusBadRequest, f, "Choose one of the offered lifetimes. Nothing was created.")
			return
		}
		in.ExpiresInDays = &days
	}
	created, err := u.svc.CreateRootKey(r.Context(), rq.p, in)
	switch apikey.ErrorCode(err) {
	case "":
	case apikey.EINVALID, apikey.EFORBIDDEN:
		msg := apikey.ErrorMessage(err)
		var e *apikey.Error
		if errors.As(err, &e) {
			for _, fe := range e.Fields {
				msg += "; " + fe.Field + ": " + fe.Message
			}
		}
		u.showRootKeys(w, r, rq, api.StatusOf(err), f, msg+". Nothing was created.")
		return
	default:
		u.fail(w, r, rq, err)
		return
	}
	u.sessions.leave(rq.token, "Root key created.", &shownOnce{KeyID: created.RootKey.ID, Plaintext: created.Plaintext})
	http.Redirect(w, r, rootKeysURL(), http.StatusSeeOther)
}

// revokeRootKey revokes a root key once the person has typed its prefix.
// Revoking ends the root key's own sessions too, this one included when
// it revokes itself.
func (u *UI) revokeRootKey(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	rk, err := u.svc.RootKey(r.Context(), rq.p, id)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	if strings.TrimSpace(r.PostFormValue("confirm")) != rk.KeyPrefix {
		u.showRootKeys(w, r, rq, http.StatusBadRequest, rootKeyForm{},
			"Type the root key's prefix, "+rk.KeyPrefix+", exactly to confirm. Nothing was revoked.")
		return
	}
	if err := u.svc.RevokeRootKey(r.Context(), rq.p, id); err != nil {
		if apikey.ErrorCode(err) == apikey.EFORBIDDEN {
			u.showRootKeys(w, r, rq, http.StatusForbidden, rootKeyForm{}, apikey.ErrorMessage(err)+". Nothing was revoked.")
			return
		}
		u.fail(w, r, rq, err)
		return
	}
	u.sessions.leave(rq.token, "Root key "+rk.Name+" revoked. It stopped working at once.", nil)
	http.Redirect(w, r, rootKeysURL(), http.StatusSeeOther)
}
