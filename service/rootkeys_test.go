package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/service"
)

// rootKey creates a root key as the admin and returns it with the
// principal its plaintext authenticates as.
func rootKey(t *testing.T, svc *service.Service, name string, perms, projects []string) (*service.CreatedRootKey, apikey.Principal) {
	t.Helper()
	ctx := context.Background()
	c, err := svc.CreateRootKey(ctx, apikey.AdminPrincipal, service.RootKeyInput{Name: name, Permissions: perms, ProjectIDs: projects})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, c.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func code(err error) string { return apikey.ErrorCode(err) }

func TestRootKeyAuthenticate(t *testing.T) {
	svc, c := newService(t)
	ctx := context.Background()
	rk, p := rootKey(t, svc, "ops", []string{apikey.ScopeVerify}, nil)
	if !p.Root || p.KeyID != rk.RootKey.ID || p.Name != "ops" || p.ProjectIDs != nil {
		t.Fatalf("principal %+v", p)
	}
	t.Run("OK/VerifiesEveryProject", func(t *testing.T) {
		for _, project := range []string{"a", "b"} {
			k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: project, Name: "k"})
			if err != nil {
				t.Fatal(err)
			}
			v, err := svc.Verify(ctx, p, service.VerifyInput{Key: k.Plaintext})
			if err != nil || v.Code != apikey.CodeValid {
				t.Fatalf("%s: %v %v", project, v.Code, err)
			}
		}
	})
	t.Run("ErrRootKeyVerifiedIsNotFound", func(t *testing.T) {
		if got := verdict(t, svc, rk.Plaintext); got != apikey.CodeNotFound {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		if err := svc.RevokeRootKey(ctx, apikey.AdminPrincipal, rk.RootKey.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, rk.Plaintext); err != apikey.ErrUnauthenticated {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		days := 1
		e, err := svc.CreateRootKey(ctx, apikey.AdminPrincipal, service.RootKeyInput{Name: "e", Permissions: []string{"*"}, ExpiresInDays: &days})
		if err != nil {
			t.Fatal(err)
		}
		c.advance(25 * time.Hour)
		if _, err := svc.Authenticate(ctx, e.Plaintext); err != apikey.ErrUnauthenticated {
			t.Fatalf("got %v", err)
		}
	})
}

func TestRootKeyPermissions(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	_, verifier := rootKey(t, svc, "verifier", []string{apikey.ScopeVerify}, nil)
	_, limited := rootKey(t, svc, "limited", []string{apikey.ScopeRootWrite, apikey.ScopeWrite}, []string{"a"})
	other, _ := rootKey(t, svc, "other", []string{apikey.ScopeVerify}, []string{"b"})
	apiKey, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "a", Name: "k", Scopes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	customer, err := svc.Authenticate(ctx, apiKey.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	create := func(p apikey.Principal, perms, projects []string) error {
		_, err := svc.CreateRootKey(ctx, p, service.RootKeyInput{Name: "n", Permissions: perms, ProjectIDs: projects})
		return err
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"OK/LimitedCreatesWithin", create(limited, []string{apikey.ScopeRead}, []string{"a"}), ""},
		{"ErrVerifierCreates", create(verifier, []string{apikey.ScopeVerify}, nil), apikey.EFORBIDDEN},
		{"ErrEscalatePermission", create(limited, []string{apikey.ScopeVerify}, []string{"a"}), apikey.EFORBIDDEN},
		{"ErrEscalateAll", create(limited, []string{apikey.ScopeRead}, nil), apikey.EFORBIDDEN},
		{"ErrEscalateProject", create(limited, []string{apikey.ScopeRead}, []string{"a", "b"}), apikey.EFORBIDDEN},
		{"ErrAPIKeyCreates", create(customer, []string{apikey.ScopeRead}, []string{"a"}), apikey.EFORBIDDEN},
		{"ErrEmptyPermissions", create(apikey.AdminPrincipal, nil, nil), apikey.EINVALID},
		{"ErrUnknownPermission", create(apikey.AdminPrincipal, []string{"orders:read"}, nil), apikey.EINVALID},
		{"ErrEmptyProjects", create(apikey.AdminPrincipal, []string{"*"}, []string{}), apikey.EINVALID},
		{"ErrOtherProjectsKeyIsNotFound", func() error { _, err := svc.RootKey(ctx, limited, other.RootKey.ID); return err }(), apikey.ENOTFOUND},
		{"ErrAPIKeyReads", func() error { _, err := svc.RootKey(ctx, customer, other.RootKey.ID); return err }(), apikey.EFORBIDDEN},
		{"ErrUpdateOtherProjects", func() error {
			_, err := svc.UpdateRootKey(ctx, limited, other.RootKey.ID, service.RootKeyPatch{Name: apikey.Some("x")})
			return err
		}(), apikey.ENOTFOUND},
		{"ErrLimitedListsKeysOutside", func() error {
			_, _, err := svc.List(ctx, limited, service.ListInput{ProjectID: "b"})
			return err
		}(), apikey.EFORBIDDEN},
		{"ErrVerifierLists", func() error {
			_, _, err := svc.List(ctx, verifier, service.ListInput{ProjectID: "a"})
			return err
		}(), apikey.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(tt.err); got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, tt.err, tt.want)
			}
		})
	}
	t.Run("OK/ListSeesOwnProjectsOnly", func(t *testing.T) {
		keys, _, err := svc.RootKeys(ctx, limited, service.RootKeyListInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rk := range keys {
			if rk.ProjectIDs == nil || len(rk.ProjectIDs) != 1 || rk.ProjectIDs[0] != "a" {
				t.Errorf("sees %s (%v)", rk.Name, rk.ProjectIDs)
			}
		}
		if len(keys) != 2 { // itself and the one it created
			t.Fatalf("%d root keys", len(keys))
		}
	})
	t.Run("ErrVerifyOutsideIsNotFound", func(t *testing.T) {
		k, err := svc.Create(ctx, apikey.AdminPrincipal, service.CreateInput{ProjectID: "b", Name: "k"})
		if err != nil {
			t.Fatal(err)
		}
		aonly, _ := rootKey(t, svc, "a-verifier", []string{apikey.ScopeVerify}, []string{"a"})
		ap, err := svc.Authenticate(ctx, aonly.Plaintext)
		if err != nil {
			t.Fatal(err)
		}
		v, err := svc.Verify(ctx, ap, service.VerifyInput{Key: k.Plaintext})
		if err != nil || v.Code != apikey.CodeNotFound {
			t.Fatalf("%v %v", v.Code, err)
		}
	})
}

func TestRootKeyLifecycle(t *testing.T) {
	svc, c := newService(t)
	ctx := context.Background()
	admin := apikey.AdminPrincipal
	rk, p := rootKey(t, svc, "deploy", []string{apikey.ScopeWrite}, []string{"a"})

	// A key created by the root key names it as its creator.
	k, err := svc.Create(ctx, p, service.CreateInput{ProjectID: "a", Name: "k", Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, svc, "a", k.Key.ID)
	if want := (apikey.Actor{Type: apikey.ActorRootKey, KeyID: rk.RootKey.ID, Name: "deploy"}); len(evs) != 1 || evs[0].Actor != want {
		t.Fatalf("events %+v, want actor %+v", evs, want)
	}

	up, err := svc.UpdateRootKey(ctx, admin, rk.RootKey.ID, service.RootKeyPatch{Name: apikey.Some("deploy-2"), ProjectIDs: apikey.Null[[]string]()})
	if err != nil || up.Name != "deploy-2" || up.ProjectIDs != nil {
		t.Fatalf("%+v %v", up, err)
	}
	c.advance(time.Minute)
	rot, err := svc.RotateRootKey(ctx, admin, rk.RootKey.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rot.New.Name != "deploy-2" || rot.New.ProjectIDs != nil || rot.New.ReplacesKeyID != rk.RootKey.ID {
		t.Fatalf("replacement %+v", rot.New)
	}
	if _, err := svc.Authenticate(ctx, rk.Plaintext); err != apikey.ErrUnauthenticated {
		t.Fatalf("old key after rotation with grace 0: %v", err)
	}
	if _, err := svc.Authenticate(ctx, rot.Plaintext); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := svc.UpdateRootKey(ctx, admin, rk.RootKey.ID, service.RootKeyPatch{Name: apikey.Some("x")}); code(err) != apikey.ECONFLICT {
		t.Fatalf("update of a replaced key: %v", err)
	}
	if _, err := svc.RotateRootKey(ctx, admin, rot.New.ID, 10081); code(err) != apikey.EINVALID {
		t.Fatalf("grace 10081: %v", err)
	}
	for range 2 { // idempotent
		if err := svc.RevokeRootKey(ctx, admin, rot.New.ID); err != nil {
			t.Fatal(err)
		}
	}

	// The changes are audit events of no project, with the values before.
	root, _, err := svc.AuditEvents(ctx, admin, service.AuditInput{NoProject: true, KeyID: rk.RootKey.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range root {
		actions = append(actions, e.Action)
		if e.ProjectID != "" || e.Actor.Type != apikey.ActorAdmin {
			t.Errorf("event %+v", e)
		}
	}
	want := []string{apikey.ActionRootKeyRotated, apikey.ActionRootKeyUpdated, apikey.ActionRootKeyCreated}
	if len(actions) != len(want) {
		t.Fatalf("actions %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("actions %v, want %v", actions, want)
		}
	}
	if before := root[1].Details["before"].(map[string]any); before["name"] != "deploy" {
		t.Fatalf("update before %v", before)
	}
	// The replacement's one event is its revocation (the rotation is the
	// old key's event), written once however often it was revoked.
	revoked, _, err := svc.AuditEvents(ctx, admin, service.AuditInput{NoProject: true, KeyID: rot.New.ID})
	if err != nil || len(revoked) != 1 || revoked[0].Action != apikey.ActionRootKeyRevoked {
		t.Fatalf("events of the replacement: %+v %v", revoked, err)
	}
	if _, _, err := svc.AuditEvents(ctx, p, service.AuditInput{NoProject: true}); code(err) != apikey.EFORBIDDEN {
		t.Fatalf("a root key without root-keys:read lists root events: %v", err)
	}
}

func TestRootKeySignIn(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	rk, _ := rootKey(t, svc, "operator", []string{apikey.ScopeRead}, []string{"a"})
	cred, p, err := svc.SignIn(ctx, rk.Plaintext)
	if err != nil || cred.Kind != service.CredentialRootKey || !p.Root || p.KeyID != rk.RootKey.ID {
		t.Fatalf("%+v %+v %v", cred, p, err)
	}
	if err := svc.RevokeRootKey(ctx, apikey.AdminPrincipal, rk.RootKey.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resolve(ctx, cred); err != apikey.ErrUnauthenticated {
		t.Fatalf("a revoked root key's session resolves: %v", err)
	}
}

// TestRootKeyIndex checks that root-key changes reach the in-memory index
// once committed (writeTx → ApplyRoot): a root key held in memory is
// narrowed and then refused on the very next authentication.
func TestRootKeyIndex(t *testing.T) {
	var idx *keycache.Cache
	svc, _ := newService(t, func(o *service.Options) {
		idx = keycache.New(keycache.Options{Store: o.Store})
		if err := idx.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		o.Index = idx
	})
	ctx := context.Background()
	rk, p := rootKey(t, svc, "ops", []string{apikey.ScopeWrite, apikey.ScopeVerify}, nil)
	if idx.RootLen() != 1 || !p.Allows(apikey.ScopeWrite) {
		t.Fatalf("index holds %d root keys; principal %+v", idx.RootLen(), p)
	}
	if _, err := svc.UpdateRootKey(ctx, apikey.AdminPrincipal, rk.RootKey.ID, service.RootKeyPatch{
		Permissions: apikey.Some([]string{apikey.ScopeVerify}), ProjectIDs: apikey.Some([]string{"a"}),
	}); err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, rk.Plaintext)
	if err != nil || p.Allows(apikey.ScopeWrite) || len(p.ProjectIDs) != 1 {
		t.Fatalf("after the update: %+v %v", p, err)
	}
	if err := svc.RevokeRootKey(ctx, apikey.AdminPrincipal, rk.RootKey.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, rk.Plaintext); err != apikey.ErrUnauthenticated {
		t.Fatalf("after the revocation: %v", err)
	}
}

// countingIndex counts the lookups of keys it is asked.
type countingIndex struct {
	service.Index
	lookups int
}

func (c *countingIndex) Lookup(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	c.lookups++
	return c.Index.Lookup(ctx, h)
}

// TestVerifyRootKeyWithoutLookup: a root key presented to verify is
// NOT_FOUND by its shape, without asking the index of keys.
func TestVerifyRootKeyWithoutLookup(t *testing.T) {
	idx := &countingIndex{}
	svc, _ := newService(t, func(o *service.Options) {
		idx.Index = service.StoreIndex{Store: o.Store}
		o.Index = idx
	})
	rk, p := rootKey(t, svc, "verifier", []string{apikey.ScopeVerify}, nil)
	before := idx.lookups
	v, err := svc.Verify(context.Background(), p, service.VerifyInput{Key: rk.Plaintext})
	if err != nil || v.Code != apikey.CodeNotFound || v.Known {
		t.Fatalf("%+v %v", v, err)
	}
	if idx.lookups != before {
		t.Fatalf("verify of a root key looked it up %d times", idx.lookups-before)
	}
}
