package web

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/apikey"
)

// request is a signed-in request: who it acts for, and what its session
// left for this page.
type request struct {
	token  string
	p      apikey.Principal
	notice string
	once   *shownOnce
}

// signedIn runs h for a request with a live session; without one, the
// browser is sent to the sign-in form. The session's credential is
// resolved on every request, so one that stopped working ends it.
func (u *UI) signedIn(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, err := u.session(w, r)
		switch {
		case err != nil:
			u.fail(w, r, nil, err)
		case rq == nil:
			redirectHome(w, r)
		default:
			h(w, r, rq)
		}
	}
}

// session returns r's signed-in session, or nil without one. A session
// whose credential no longer authenticates ends; one whose credential
// cannot be resolved just now (the store is away) is an error, and lives
// on.
func (u *UI) session(w http.ResponseWriter, r *http.Request) (*request, error) {
	token := sessionToken(r)
	cred, notice, once, ok := u.sessions.use(token)
	if !ok {
		return nil, nil
	}
	p, err := u.svc.Resolve(r.Context(), cred)
	switch {
	case apikey.ErrorCode(err) == apikey.EUNAUTHENTICATED:
		u.sessions.close(token)
		u.setSessionCookie(w, r, "", -1)
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &request{token: token, p: p, notice: notice, once: once}, nil
}

// home is the projects page, or the sign-in form without a session.
func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	rq, err := u.session(w, r)
	switch {
	case err != nil:
		u.fail(w, r, nil, err)
	case rq == nil:
		u.render(w, http.StatusOK, "login", &view{Title: "Sign in"})
	default:
		u.projects(w, r, rq)
	}
}

// loginView is the sign-in form's data.
type loginView struct{ Error string }

// login signs a person in with the admin token (or, once they exist, a
// root key). A wrong token counts as a failed authentication in the
// API's limiter; a blocked address is refused without its token being
// looked at.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if wait, blocked := u.blocked(r); blocked {
		u.tooMany(w, wait)
		return
	}
	// A pasted token may bring a line break along; tokens have no spaces.
	cred, _, err := u.svc.SignIn(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	switch {
	case apikey.ErrorCode(err) == apikey.EUNAUTHENTICATED:
		if u.failures != nil {
			if wait, ok := u.failures.Fail(r); !ok {
				u.tooMany(w, wait)
				return
			}
		}
		u.render(w, http.StatusUnauthorized, "login", &view{Title: "Sign in", Data: loginView{Error: "That token does not open the dashboard. Sign in with a root key or the admin token."}})
		return
	case err != nil:
		u.fail(w, r, nil, err)
		return
	}
	if wait, blocked := u.blocked(r); blocked {
		u.tooMany(w, wait)
		return
	}
	if old := sessionToken(r); old != "" {
		u.sessions.close(old)
	}
	u.setSessionCookie(w, r, u.sessions.open(cred), 0)
	redirectHome(w, r)
}

func (u *UI) blocked(r *http.Request) (time.Duration, bool) {
	if u.failures == nil {
		return 0, false
	}
	return u.failures.Blocked(r)
}

func (u *UI) tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	msg := fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d seconds.", secs)
	u.render(w, http.StatusTooManyRequests, "login", &view{Title: "Sign in", Data: loginView{Error: msg}})
}

// logout ends the session.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if token := sessionToken(r); token != "" {
		u.sessions.close(token)
	}
	u.setSessionCookie(w, r, "", -1)
	redirectHome(w, r)
}

// crossOrigin answers a change another site's page tried to make.
func (u *UI) crossOrigin(w http.ResponseWriter, r *http.Request) {
	u.render(w, http.StatusForbidden, "error", &view{Title: "Refused", Data: errorView{
		Message: "This change came from another site's page and was refused. Make changes from the dashboard itself.",
	}})
}

// errorView is an error page's data.
type errorView struct{ Message string }

func (u *UI) notFound(w http.ResponseWriter, r *http.Request) {
	u.render(w, http.StatusNotFound, "error", &view{Title: "Not found", Data: errorView{Message: "There is no such page."}})
}

// fail answers a request the service refused, with the API's status for
// the error and its caller-safe message; the cause of a 5xx goes to the
// operator's log only.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	status := api.StatusOf(err)
	if status >= 500 {
		u.log.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	msg := apikey.ErrorMessage(err)
	switch apikey.ErrorCode(err) {
	case apikey.ENOTFOUND:
		msg = "There is no such key, or it is not yours to see."
	case apikey.EUNAVAILABLE:
		msg = "The key store does not answer right now. Try again in a moment."
	case apikey.EINTERNAL:
		msg = "Something went wrong on the server; the operator's log has the details."
	}
	v := &view{Title: http.StatusText(status), Data: errorView{Message: msg}}
	if rq != nil {
		v.request = rq
	}
	u.render(w, status, "error", v)
}
