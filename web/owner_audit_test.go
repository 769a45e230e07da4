package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuditPageOwnerEvents: the audit log shows the changes to an owner,
// which concern no key, with an empty key cell and the owner in the
// details.
func TestAuditPageOwnerEvents(t *testing.T) {
	project := "owner-audit"
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/v1/projects/"+project+"/owners/team_7",
			strings.NewReader(`{"credits": {"remaining": 10}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s owner: %d", method, resp.StatusCode)
		}
	}
	v := newVisitor(t, srv.URL)
	v.signIn(srv.AdminToken)
	a := v.get("/ui/projects/" + project + "/audit")
	if a.status != http.StatusOK {
		t.Fatalf("audit page: %d\n%s", a.status, a.body)
	}
	for _, want := range []string{"owner.updated", "owner.deleted", "team_7", `<td></td>`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("audit page lacks %q:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, `/ui/keys/"`) {
		t.Errorf("audit page links to a key with no ID:\n%s", a.body)
	}
}
