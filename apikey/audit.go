package apikey

import "time"

// Audit actions. Every mutation of a key writes one event in the same
// transaction as the change itself.
const (
	ActionCreated        = "api_key.created"
	ActionUpdated        = "api_key.updated"
	ActionRevoked        = "api_key.revoked"
	ActionRotated        = "api_key.rotated"
	ActionRotationFailed = "api_key.rotation_failed"
	ActionDisabled       = "api_key.disabled"
	ActionEnabled        = "api_key.enabled"
	ActionImported       = "api_key.imported"
	// ActionCreditsAdjusted records POST /v1/api-keys/{id}/credits, with
	// the balance before and after.
	ActionCreditsAdjusted = "api_key.credits_adjusted"
)

// Audit actions of owners' shared allowances (PUT and DELETE
// /v1/projects/{project_id}/owners/{owner_id}). Their events belong to the
// owner's project, have no EnvironmentID and no KeyID, and carry the
// owner_id in their details.
const (
	ActionOwnerUpdated = "owner.updated" // created or replaced
	ActionOwnerDeleted = "owner.deleted"
)

// AuditActions lists every action an audit event may have, in the order
// the API documents them: the values of the audit listing's action filter.
var AuditActions = []string{
	ActionCreated, ActionUpdated, ActionRevoked, ActionRotated, ActionRotationFailed,
	ActionDisabled, ActionEnabled, ActionImported, ActionCreditsAdjusted,
	ActionRootKeyCreated, ActionRootKeyUpdated, ActionRootKeyRevoked, ActionRootKeyRotated,
	ActionOwnerUpdated, ActionOwnerDeleted,
}

// Actor types.
const (
	ActorAdmin   = "admin"
	ActorRootKey = "root_key"
	ActorAPIKey  = "api_key"
	ActorSystem  = "system"
)

// Actor is who caused an audit event (SPEC §8: type, key_id, name).
type Actor struct {
	Type  string // ActorAdmin, ActorRootKey, ActorAPIKey or ActorSystem
	KeyID string // the acting key, for ActorRootKey and ActorAPIKey
	// Name is the acting key's name when it acted, so that the log says
	// who acted even after a rename.
	Name string
}

// SystemActor is the actor of scheduled work.
var SystemActor = Actor{Type: ActorSystem}

// AuditEvent records who did what to which key (or owner), and when. Details hold the
// changed fields and other context; never a plaintext key or secret.
type AuditEvent struct {
	ID            string
	ProjectID     string
	EnvironmentID string
	KeyID         string
	Action        string
	Actor         Actor
	Details       map[string]any
	CreatedAt     time.Time
}
