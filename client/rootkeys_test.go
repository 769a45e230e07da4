package client_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/apikeyd/apikeyd/client"
)

// TestRootKeys drives every root-key method against a real server: the
// admin issues a verify-only root key of every project, which verifies the
// keys of two projects and can do nothing else.
func TestRootKeys(t *testing.T) {
	ctx := t.Context()
	admin := newClient(t, srv.AdminToken)
	pa, pb := project("rk-a"), project("rk-b")
	ops, err := admin.CreateRootKey(ctx, client.CreateRootKeyParams{Name: "ops", Permissions: []string{client.PermissionRootKeys, client.PermissionWrite}, ProjectIDs: []string{pa}})
	if err != nil {
		t.Fatal(err)
	}
	if ops.ProjectIDs[0] != pa || ops.CreatedBy.Type != "admin" || ops.Status != client.StatusActive {
		t.Fatalf("%+v", ops)
	}
	guard, err := admin.CreateRootKey(ctx, client.CreateRootKeyParams{Name: "guard", Permissions: []string{client.PermissionVerify}})
	if err != nil {
		t.Fatal(err)
	}
	if guard.ProjectIDs != nil {
		t.Fatalf("project_ids %v, want nil (every project)", guard.ProjectIDs)
	}
	verifier := newClient(t, guard.Secret)
	for _, project := range []string{pa, pb} {
		k, err := admin.CreateKey(ctx, client.CreateParams{ProjectID: project, Name: "k"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifier.Verify(ctx, client.VerifyParams{Key: k.Secret})
		if err != nil || !v.Valid || v.ProjectID != project {
			t.Fatalf("%s: %+v %v", project, v, err)
		}
	}
	var apiErr *client.Error
	if _, err := verifier.CreateKey(ctx, client.CreateParams{ProjectID: pa, Name: "x"}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
		t.Fatalf("verify-only root key creates: %v", err)
	}

	// ops manages root keys of its project only.
	opsc := newClient(t, ops.Secret)
	if _, err := opsc.GetRootKey(ctx, guard.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("get of a root key of every project: %v", err)
	}
	mine, err := opsc.CreateRootKey(ctx, client.CreateRootKeyParams{Name: "ci", Permissions: []string{client.PermissionRead}, ProjectIDs: []string{pa}})
	if err != nil {
		t.Fatal(err)
	}
	if mine.CreatedBy.Type != "root_key" || *mine.CreatedBy.KeyID != ops.ID || *mine.CreatedBy.Name != "ops" {
		t.Fatalf("created_by %+v", mine.CreatedBy)
	}
	up, err := opsc.UpdateRootKey(ctx, mine.ID, client.UpdateRootKeyParams{Name: client.Value("ci-2")})
	if err != nil || up.Name != "ci-2" {
		t.Fatalf("%+v %v", up, err)
	}
	if _, err := opsc.UpdateRootKey(ctx, mine.ID, client.UpdateRootKeyParams{ProjectIDs: client.Null[[]string]()}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
		t.Fatalf("escalation to every project: %v", err)
	}
	var seen []string
	for rk, err := range opsc.ListRootKeys(ctx, client.RootKeyListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, rk.ID)
	}
	if len(seen) != 2 || seen[0] != mine.ID || seen[1] != ops.ID {
		t.Fatalf("ops sees %v, want [%s %s]", seen, mine.ID, ops.ID)
	}
	zero := 0
	rot, err := opsc.RotateRootKey(ctx, mine.ID, client.RotateParams{GracePeriodMinutes: &zero})
	if err != nil || rot.OldKeyID != mine.ID || rot.Name != "ci-2" || rot.Secret == "" {
		t.Fatalf("%+v %v", rot, err)
	}
	if _, err := newClient(t, mine.Secret).GetKey(ctx, "key_x"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("old root key after rotation with grace 0: %v", err)
	}
	if err := opsc.RevokeRootKey(ctx, rot.NewKeyID); err != nil {
		t.Fatal(err)
	}
	got, err := admin.GetRootKey(ctx, rot.NewKeyID)
	if err != nil || got.Status != client.StatusRevoked {
		t.Fatalf("%+v %v", got, err)
	}
	var actions []string
	for e, err := range admin.AuditEvents(ctx, client.AuditParams{KeyID: mine.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ProjectID != "" || e.Actor.Type != "root_key" {
			t.Fatalf("event %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if len(actions) != 3 {
		t.Fatalf("events of the rotated root key: %v", actions)
	}
}
