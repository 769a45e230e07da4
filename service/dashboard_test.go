package service_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

func TestSignIn(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	created, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "p1", Name: "k", Scopes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK/admin", func(t *testing.T) {
		c, p, err := svc.SignIn(ctx, adminToken)
		if err != nil || !p.Admin || c.Kind != service.CredentialAdmin || c.Hash != apikey.HashKey(adminToken) {
			t.Fatalf("%+v %+v %v", c, p, err)
		}
		if p, err := svc.Resolve(ctx, c); err != nil || !p.Admin {
			t.Fatalf("resolve: %+v %v", p, err)
		}
	})
	for name, token := range map[string]string{
		"ErrEmpty":  "",
		"ErrWrong":  adminToken + "x",
		"ErrAPIKey": created.Plaintext, // customers' keys do not open the dashboard
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := svc.SignIn(ctx, token); err != apikey.ErrUnauthenticated {
				t.Fatalf("got %v, want ErrUnauthenticated", err)
			}
		})
	}
	t.Run("ErrUnknownKind", func(t *testing.T) {
		if _, err := svc.Resolve(ctx, service.Credential{Kind: "other", Hash: apikey.HashKey(adminToken)}); err != apikey.ErrUnauthenticated {
			t.Fatalf("got %v", err)
		}
	})
}

func TestProjects(t *testing.T) {
	svc, clk := newService(t)
	ctx := context.Background()
	create := func(project string) *service.Created {
		t.Helper()
		c, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: project, Name: "k", Scopes: []string{"api-keys:read"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	create("beta")
	a := create("alpha")
	create("alpha")
	if err := svc.Revoke(ctx, apikey.AdminPrincipal, a.Key.ID, ""); err != nil {
		t.Fatal(err)
	}
	clk.advance(1)
	t.Run("OK/admin", func(t *testing.T) {
		got, err := svc.Projects(ctx, apikey.AdminPrincipal)
		want := []service.ProjectSummary{{ID: "alpha", Keys: 2, Usable: 1}, {ID: "beta", Keys: 1, Usable: 1}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("OK/projectKeySeesItsOwn", func(t *testing.T) {
		p, err := svc.Authenticate(ctx, create("beta").Plaintext)
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Projects(ctx, p)
		if err != nil || len(got) != 1 || got[0].ID != "beta" || got[0].Keys != 2 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("ErrNoScope", func(t *testing.T) {
		p := apikey.Principal{KeyID: "key_x", ProjectID: "alpha", Scopes: []string{"api-keys:verify"}}
		if _, err := svc.Projects(ctx, p); apikey.ErrorCode(err) != apikey.EFORBIDDEN {
			t.Fatalf("got %v", err)
		}
	})
}
