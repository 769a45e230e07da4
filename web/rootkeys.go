package web

import (
	"net/http"
	"net/url"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// rootKeysView is the root keys page: a read-only list of the root keys
// the credential may see.
type rootKeysView struct {
	Keys []rootKeyRow
	Next string
	// Limited says the credential sees only root keys within its projects.
	Limited bool
}

// rootKeyRow is one root key as the list shows it.
type rootKeyRow struct {
	*apikey.RootKey
	Status    apikey.Status
	CreatedBy string
}

// rootKeys lists root keys, newest first, one page at a time.
func (u *UI) rootKeys(w http.ResponseWriter, r *http.Request, rq *request) {
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
	v := rootKeysView{Limited: rq.p.Root && rq.p.ProjectIDs != nil}
	for _, rk := range keys {
		v.Keys = append(v.Keys, rootKeyRow{RootKey: rk, Status: rk.Status(now), CreatedBy: actorLabel(rk.CreatedBy)})
	}
	if next != nil {
		v.Next = Prefix + "root-keys?" + url.Values{"after": {formatCursor(*next)}}.Encode()
	}
	u.page(w, rq, http.StatusOK, "rootkeys", "Root keys", "root-keys", v)
}
