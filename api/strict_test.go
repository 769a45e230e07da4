package api

import (
	"net/http"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// TestStrictJSON: member names match exactly, a member given twice is a
// 400 naming it, and text that is not valid Unicode (invalid UTF-8, a lone
// surrogate escape) is a 400, on every route with a body; none of these
// requests changes anything.
func TestStrictJSON(t *testing.T) {
	f := newFixture(t, 100)
	k := f.create(t, service.CreateInput{ProjectID: "p1", Name: "k"})
	create, patch, rotate, verify := "/v1/api-keys", "/v1/api-keys/"+k.Key.ID, "/v1/api-keys/"+k.Key.ID+"/rotate", "/v1/api-keys/verify"
	unknown := func(name string) FieldProblem { return FieldProblem{Field: name, Message: "is not a known field"} }
	required := func(name string) FieldProblem { return FieldProblem{Field: name, Message: "is required"} }
	twice := func(name string) FieldProblem {
		return FieldProblem{Message: `member "` + name + `" is given more than once`}
	}
	notUTF8 := FieldProblem{Message: "the body is not valid UTF-8"}
	surrogate := func(esc string) FieldProblem {
		return FieldProblem{Message: `a string holds a lone UTF-16 surrogate (\u` + esc + `), which is not valid Unicode`}
	}
	for _, tc := range []struct {
		name, method, path, body string
		want                     []FieldProblem
	}{
		{"ErrCaseCreate", http.MethodPost, create, `{"Project_ID":"p2","name":"n"}`, []FieldProblem{required("project_id"), unknown("Project_ID")}},
		{"ErrCasePatch", http.MethodPatch, patch, `{"NAME":"x"}`, []FieldProblem{unknown("NAME")}},
		{"ErrCaseRotate", http.MethodPost, rotate, `{"Grace_Period_Minutes":0}`, []FieldProblem{unknown("Grace_Period_Minutes")}},
		{"ErrCaseVerify", http.MethodPost, verify, `{"KEY":"` + k.Plaintext + `"}`, []FieldProblem{required("key"), unknown("KEY")}},
		{"ErrDuplicateCreate", http.MethodPost, create, `{"project_id":"bad!","project_id":"p2","name":"n"}`, []FieldProblem{twice("project_id")}},
		{"ErrDuplicateEscaped", http.MethodPost, create, `{"project_id":"p2","name":"n","n\u0061me":"m"}`, []FieldProblem{twice("name")}},
		{"ErrDuplicateScopes", http.MethodPost, create, `{"project_id":"p2","name":"n","scopes":["a"],"scopes":["*"]}`, []FieldProblem{twice("scopes")}},
		{"ErrDuplicatePatch", http.MethodPatch, patch, `{"name":"a","name":"b"}`, []FieldProblem{twice("name")}},
		{"ErrDuplicateRotate", http.MethodPost, rotate, `{"grace_period_minutes":1,"grace_period_minutes":2}`, []FieldProblem{twice("grace_period_minutes")}},
		{"ErrDuplicateVerifyKey", http.MethodPost, verify, `{"key":"x","key":"` + k.Plaintext + `"}`, []FieldProblem{twice("key")}},
		{"ErrDuplicateVerifyScopes", http.MethodPost, verify, `{"key":"` + k.Plaintext + `","scopes":["x"],"scopes":[]}`, []FieldProblem{twice("scopes")}},
		{"ErrInvalidUTF8Create", http.MethodPost, create, "{\"project_id\":\"p2\",\"name\":\"n\xff\"}", []FieldProblem{notUTF8}},
		{"ErrInvalidUTF8Name", http.MethodPost, create, "{\"project_id\":\"p2\",\"name\":\"n\",\"\xc3\":1}", []FieldProblem{notUTF8}},
		{"ErrInvalidUTF8Patch", http.MethodPatch, patch, "{\"name\":\"\xed\xa0\x80\"}", []FieldProblem{notUTF8}},
		{"ErrInvalidUTF8Verify", http.MethodPost, verify, "{\"key\":\"\xff\"}", []FieldProblem{notUTF8}},
		{"ErrLoneHighSurrogate", http.MethodPost, create, `{"project_id":"p2","name":"a\ud800b"}`, []FieldProblem{surrogate("d800")}},
		{"ErrLoneLowSurrogate", http.MethodPatch, patch, `{"name":"\uDC00"}`, []FieldProblem{surrogate("DC00")}},
		{"ErrHighThenHigh", http.MethodPatch, patch, `{"name":"\ud800\ud800"}`, []FieldProblem{surrogate("d800")}},
		{"ErrSurrogateVerify", http.MethodPost, verify, `{"key":"\udfff"}`, []FieldProblem{surrogate("dfff")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, f.admin, []byte(tc.body))
			checkProblem(t, tc.body, status, body, tc.want...)
		})
	}
	// Nothing was created in p2, and the key is as it was.
	if keys, _, err := f.svc.List(t.Context(), apikey.AdminPrincipal, service.ListInput{ProjectID: "p2"}); err != nil || len(keys) != 0 {
		t.Fatalf("p2 after rejected requests: %v, %v", keys, err)
	}
	if got, err := f.svc.Get(t.Context(), apikey.AdminPrincipal, k.Key.ID); err != nil || got.Name != "k" || got.ReplacedByKeyID != "" {
		t.Fatalf("key after rejected requests: %+v, %v", got, err)
	}
	t.Run("OK", func(t *testing.T) {
		for _, body := range []string{
			`{"project_id":"p2","name":"\ud83d\ude00 \\ud800"}`, // a pair, and an escaped backslash before "ud800"
			`{"project_id":"p2","n\u0061me":"escaped name"}`,
			`{"project_id":"p2","name":"héllo"}`,
		} {
			if status, b := f.do(t, http.MethodPost, create, f.admin, []byte(body)); status != http.StatusCreated {
				t.Errorf("%s: %d %s, want 201", body, status, b)
			}
		}
	})
}

// TestCheckDuplicatesPath: a duplicate member is named by its path from
// the body, in nested objects and arrays alike; the same name in sibling
// objects is no duplicate.
func TestCheckDuplicatesPath(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"a":{"b":1,"b":2}}`, `member "a.b" is given more than once`},
		{`{"keys":[{"name":"x"},{"name":"y","name":"z"}]}`, `member "keys[1].name" is given more than once`},
		{`{"a":[[1],{"c":{},"c":1}]}`, `member "a[1].c" is given more than once`},
		{`{"a":{"b":1},"c":{"b":1},"d":[{"b":1},{"b":2}]}`, ``},
		{`[{"x":1},{"x":1}]`, ``},
	} {
		err := checkDuplicates([]byte(tc.body))
		if got := errString(err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
