package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// Every action is a POST that ends in a redirect (POST-redirect-GET), so
// that reloading the page after it repeats nothing. A key's plaintext
// travels from the action to the page after it inside the server-side
// session, once: whichever page comes next takes it, and a reload of that
// page no longer has it.

// newKeyView is the create form.
type newKeyView struct {
	Project  string
	Form     createForm
	Expiries []option
	// Errors holds a message per form field; Error one for the form.
	Errors map[string]string
	Error  string
}

// createForm is what the create form posts.
type createForm struct {
	Name, Environment, Scopes, Expires string
}

// formFields are the fields of the create form, named as the service
// names them in its errors.
var formFields = []string{"name", "scopes", "environment_id", "expires_in_days"}

// Expiry choices of the create form, in days; "" never expires.
var expiries = []option{
	{"", "Never"},
	{"7", "In 7 days"},
	{"30", "In 30 days"},
	{"90", "In 90 days"},
	{"365", "In 1 year"},
}

func (u *UI) newKey(w http.ResponseWriter, r *http.Request, rq *request) {
	u.page(w, rq, http.StatusOK, "new", "New key", "projects", newKeyView{Project: r.PathValue("project"), Expiries: expiries})
}

// createKey issues a key and shows it once, on the key's page.
func (u *UI) createKey(w http.ResponseWriter, r *http.Request, rq *request) {
	project := r.PathValue("project")
	f := createForm{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Environment: strings.TrimSpace(r.PostFormValue("environment_id")),
		Scopes:      r.PostFormValue("scopes"),
		Expires:     r.PostFormValue("expires_in_days"),
	}
	in := service.CreateInput{ProjectID: project, Name: f.Name, Scopes: splitScopes(f.Scopes)}
	if f.Environment != "" {
		in.EnvironmentID = &f.Environment
	}
	v := newKeyView{Project: project, Form: f, Expiries: expiries}
	if f.Expires != "" {
		days, err := strconv.Atoi(f.Expires)
		if err != nil {
			v.Errors = map[string]string{"expires_in_days": "choose one of the offered lifetimes"}
			u.page(w, rq, http.StatusBadRequest, "new", "New key", "projects", v)
			return
		}
		in.ExpiresInDays = &days
	}
	created, err := u.svc.Create(r.Context(), rq.p, in)
	if err != nil {
		if !u.formError(err, &v.Errors, &v.Error) {
			u.fail(w, r, rq, err)
			return
		}
		u.page(w, rq, api.StatusOf(err), "new", "New key", "projects", v)
		return
	}
	u.sessions.leave(rq.token, "Key created.", &shownOnce{KeyID: created.Key.ID, Plaintext: created.Plaintext})
	http.Redirect(w, r, keyURL(created.Key.ID), http.StatusSeeOther)
}

// splitScopes reads the scopes field: scopes separated by spaces, commas
// or new lines.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// formError puts a refusal the person can fix (invalid input, a project or
// scope they may not use) on the form, and reports whether it did.
func (u *UI) formError(err error, fields *map[string]string, msg *string) bool {
	var e *apikey.Error
	switch apikey.ErrorCode(err) {
	case apikey.EINVALID:
		*msg = "The key was not created: fix the fields marked below."
		*fields = map[string]string{}
		if errors.As(err, &e) {
			for _, f := range e.Fields {
				// scopes[2] is the scopes field; fields the form does not
				// have (project_id, from the URL) go in the message.
				name, _, _ := strings.Cut(f.Field, "[")
				if !slices.Contains(formFields, name) {
					*msg += " " + f.Field + " " + f.Message + "."
					continue
				}
				if (*fields)[name] == "" {
					(*fields)[name] = f.Message
				}
			}
		}
		return true
	case apikey.EFORBIDDEN:
		*msg = apikey.ErrorMessage(err) + "."
		return true
	}
	return false
}

// rotateKey replaces a key with the chosen grace period and shows the
// replacement once, on its page.
func (u *UI) rotateKey(w http.ResponseWriter, r *http.Request, rq *request) {
	grace, err := strconv.Atoi(r.PostFormValue("grace_period_minutes"))
	if err != nil {
		u.showKey(w, r, rq, http.StatusBadRequest, func(v *keyView) { v.RotateError = "Choose one of the grace periods." })
		return
	}
	rot, err := u.svc.Rotate(r.Context(), rq.p, r.PathValue("id"), grace)
	if err != nil {
		u.refused(w, r, rq, err, func(v *keyView, msg string) { v.RotateError = msg })
		return
	}
	notice := "Key rotated. The old key " + rot.Old.KeyPrefix + "… stops working now."
	if rot.Old.GraceExpiresAt.After(u.now()) {
		notice = "Key rotated. The old key " + rot.Old.KeyPrefix + "… keeps working until " +
			rot.Old.GraceExpiresAt.UTC().Format("2006-01-02 15:04 UTC") + "."
	}
	u.sessions.leave(rq.token, notice, &shownOnce{KeyID: rot.New.ID, Plaintext: rot.Plaintext, Rotated: true})
	http.Redirect(w, r, keyURL(rot.New.ID), http.StatusSeeOther)
}

// revokeKey revokes a key once the person has typed its prefix.
func (u *UI) revokeKey(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	if _, err := apikey.ParseRevocationReason(r.PostFormValue("reason")); err != nil {
		u.showKey(w, r, rq, http.StatusBadRequest, func(v *keyView) { v.RevokeError = "Choose one of the reasons." })
		return
	}
	k, err := u.svc.Get(r.Context(), rq.p, id)
	if err != nil {
		u.fail(w, r, rq, err)
		return
	}
	if strings.TrimSpace(r.PostFormValue("confirm")) != k.KeyPrefix {
		u.showKey(w, r, rq, http.StatusBadRequest, func(v *keyView) {
			v.RevokeError = "Type the key's prefix, " + k.KeyPrefix + ", exactly to confirm. Nothing was revoked."
		})
		return
	}
	if err := u.svc.Revoke(r.Context(), rq.p, id, ""); err != nil {
		u.refused(w, r, rq, err, func(v *keyView, msg string) { v.RevokeError = msg })
		return
	}
	u.sessions.leave(rq.token, "Key revoked. It stopped working at once.", nil)
	http.Redirect(w, r, keyURL(id), http.StatusSeeOther)
}

// refused shows the key's page again with why an action was refused, for
// refusals about the key's state or the input; anything else is an error
// page.
func (u *UI) refused(w http.ResponseWriter, r *http.Request, rq *request, err error, set func(*keyView, string)) {
	switch apikey.ErrorCode(err) {
	case apikey.EINVALID, apikey.ECONFLICT, apikey.EFORBIDDEN:
		msg := apikey.ErrorMessage(err)
		var e *apikey.Error
		if errors.As(err, &e) {
			for _, f := range e.Fields {
				msg += ": " + f.Field + " " + f.Message
			}
		}
		u.showKey(w, r, rq, api.StatusOf(err), func(v *keyView) { set(v, msg+".") })
		return
	}
	u.fail(w, r, rq, err)
}
