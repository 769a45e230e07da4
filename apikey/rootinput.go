package apikey

import "time"

// RootKeyInput is what the creator of a root key chooses (SPEC §8).
// Pointers are nil when the field was not given; ProjectIDs nil means every
// project.
type RootKeyInput struct {
	Name          string
	Permissions   []string
	ProjectIDs    []string
	ExpiresInDays *int
	ExpiresAt     *time.Time
}

// NewRootKey checks in and returns the root key it describes at now, all
// field errors at once. Identity (ID, prefix, hash) and the creator are
// the caller's to add.
func (in *RootKeyInput) NewRootKey(now time.Time) (*RootKey, []FieldError) {
	var bad problems
	bad.name("name", in.Name)
	perms, perr := ValidatePermissions("permissions", in.Permissions)
	bad.fromError(perr)
	projects, prerr := ValidateProjectIDs("project_ids", in.ProjectIDs)
	bad.fromError(prerr)
	rk := &RootKey{Name: in.Name, Permissions: perms, ProjectIDs: projects, CreatedAt: now, UpdatedAt: now}
	switch {
	case in.ExpiresInDays != nil && in.ExpiresAt != nil:
		bad.add("expires_at", "give expires_in_days or expires_at, not both")
	case in.ExpiresInDays != nil:
		bad.days("expires_in_days", *in.ExpiresInDays, MaxExpiresInDays)
		rk.ExpiresAt = now.Add(time.Duration(*in.ExpiresInDays) * Day)
	case in.ExpiresAt != nil:
		rk.ExpiresAt = in.ExpiresAt.UTC().Truncate(time.Microsecond)
		bad.future("expires_at", rk.ExpiresAt, now)
	}
	return rk, bad
}

// RootKeyPatch is a partial update of a root key: each field absent, null
// or a value. A null ProjectIDs gives the key every project; a null
// ExpiresAt removes its expiry; name and permissions cannot be null.
type RootKeyPatch struct {
	Name        Optional[string]
	Permissions Optional[[]string]
	ProjectIDs  Optional[[]string]
	ExpiresAt   Optional[time.Time]
}

// Check checks p at now and normalises what it accepts.
func (p *RootKeyPatch) Check(now time.Time) []FieldError {
	var bad problems
	bad.notNull("name", p.Name.Null)
	bad.notNull("permissions", p.Permissions.Null)
	if p.Name.Valid() {
		bad.name("name", p.Name.Value)
	}
	if p.Permissions.Valid() {
		perms, err := ValidatePermissions("permissions", p.Permissions.Value)
		bad.fromError(err)
		p.Permissions.Value = perms
	}
	if p.ProjectIDs.Valid() {
		ids, err := ValidateProjectIDs("project_ids", p.ProjectIDs.Value)
		bad.fromError(err)
		p.ProjectIDs.Value = ids
	}
	if p.ExpiresAt.Valid() {
		p.ExpiresAt.Value = p.ExpiresAt.Value.UTC().Truncate(time.Microsecond)
		bad.future("expires_at", p.ExpiresAt.Value, now)
	}
	return bad
}

// NewProjectIDs returns the projects the patch gives the key, and whether
// it gives any: nil (every project) for null.
func (p *RootKeyPatch) NewProjectIDs() ([]string, bool) {
	if !p.ProjectIDs.Set {
		return nil, false
	}
	return value(p.ProjectIDs), true
}

// Apply changes rk as p (already checked) asks.
func (p *RootKeyPatch) Apply(rk *RootKey) {
	if p.Name.Valid() {
		rk.Name = p.Name.Value
	}
	if p.Permissions.Valid() {
		rk.Permissions = p.Permissions.Value
	}
	if ids, ok := p.NewProjectIDs(); ok {
		rk.ProjectIDs = ids
	}
	if p.ExpiresAt.Set {
		rk.ExpiresAt = value(p.ExpiresAt)
	}
}

// rootAuditFields are the fields of a root key that audit events record
// before and after a change, by their API names; unset values are nil, as
// is project_ids of a key of every project (null, as the API shows it).
var rootAuditFields = []struct {
	name string
	get  func(rk *RootKey) any
}{
	{"name", func(rk *RootKey) any { return rk.Name }},
	{"permissions", func(rk *RootKey) any { return rk.Permissions }},
	{"project_ids", func(rk *RootKey) any {
		if rk.ProjectIDs == nil {
			return nil
		}
		return rk.ProjectIDs
	}},
	{"expires_at", func(rk *RootKey) any { return orNil(rk.ExpiresAt) }},
	{"revoked_at", func(rk *RootKey) any { return orNil(rk.RevokedAt) }},
	{"replaced_by_key_id", func(rk *RootKey) any { return orNil(rk.ReplacedByKeyID) }},
	{"grace_expires_at", func(rk *RootKey) any { return orNil(rk.GraceExpiresAt) }},
	{"replaces_key_id", func(rk *RootKey) any { return orNil(rk.ReplacesKeyID) }},
}

// DiffRoot is Diff for root keys: the recorded fields that differ between
// before and after; before nil means a new root key, and then after holds
// every field that is set.
func DiffRoot(before, after *RootKey) (was, is map[string]any) {
	was, is = map[string]any{}, map[string]any{}
	for _, f := range rootAuditFields {
		a := f.get(after)
		if before == nil {
			if a != nil && !isEmpty(a) {
				is[f.name] = a
			}
			continue
		}
		if b := f.get(before); !equalValue(b, a) {
			was[f.name], is[f.name] = b, a
		}
	}
	return was, is
}
