package apikey

// Principal is who a request acts for: the operator holding the admin token,
// or an API key issued by apikeyd acting inside its own project and (when it
// has one) its own environment.
type Principal struct {
	Admin         bool
	KeyID         string
	ProjectID     string
	EnvironmentID string
	Scopes        []string
}

// AdminPrincipal is the principal of the admin token.
var AdminPrincipal = Principal{Admin: true}

// Actor describes the principal for the audit log.
func (p Principal) Actor() Actor {
	if p.Admin {
		return Actor{Type: ActorAdmin}
	}
	return Actor{Type: ActorAPIKey, KeyID: p.KeyID}
}

// Allows reports whether the principal holds the scope an operation needs.
// api-keys:write also allows reading, as SPEC §3 says.
func (p Principal) Allows(scope string) bool {
	if p.Admin {
		return true
	}
	if anyCovers(p.Scopes, scope) {
		return true
	}
	return scope == ScopeRead && anyCovers(p.Scopes, ScopeWrite)
}

// InProject reports whether the principal may act in project (and, when
// environment is not empty, in that environment). Callers answer 403 when it
// does not, for operations that name a project rather than a key.
func (p Principal) InProject(project, environment string) bool {
	if p.Admin {
		return true
	}
	if p.ProjectID != project {
		return false
	}
	return p.EnvironmentID == "" || environment == "" || environment == p.EnvironmentID
}

// Sees reports whether the principal may see the key at all. A key it may not
// see must be reported as not found, never as forbidden, so that key IDs
// cannot be probed across projects.
func (p Principal) Sees(k *Key) bool {
	if p.Admin {
		return true
	}
	return k.ProjectID == p.ProjectID && (p.EnvironmentID == "" || k.EnvironmentID == p.EnvironmentID)
}

// SeesRecord is Sees for a verification record.
func (p Principal) SeesRecord(r *Record) bool {
	if p.Admin {
		return true
	}
	return r.ProjectID == p.ProjectID && (p.EnvironmentID == "" || r.EnvironmentID == p.EnvironmentID)
}

// Covers reports whether the principal holds every one of scopes, so that
// creating, changing or rotating a key with them is no escalation. As in
// Allows, api-keys:write includes api-keys:read: a key that may write keys
// may issue one that only reads them.
func (p Principal) Covers(scopes []string) bool {
	if p.Admin {
		return true
	}
	for _, s := range scopes {
		if !p.Allows(s) {
			return false
		}
	}
	return true
}
