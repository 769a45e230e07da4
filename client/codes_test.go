package client

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestVerifyCodes checks the client's VerifyCode constants against the
// domain's list, apikey.VerifyCodes: the client is imported by programs
// that must not pull in the server, so it declares its own, and this test
// fails until a code added to the domain is added here too (and one removed
// there is removed here).
func TestVerifyCodes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "VerifyCode" {
				continue
			}
			for _, val := range v.Values {
				s, err := strconv.Unquote(val.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			}
		}
	}
	var want []string
	for _, c := range apikey.VerifyCodes {
		want = append(want, string(c))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("client.VerifyCode constants %v, want those of apikey.VerifyCodes %v", got, want)
	}
}
