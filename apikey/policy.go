package apikey

// Principal is who a request acts for: the operator holding the admin token,
// an API key issued by apikeyd acting inside its own project and (when it
// has one) its own environment, or a root key (SPEC §8) acting in each of
// its projects like an API key of that project without an environment
// binding.
type Principal struct {
	Admin bool
	// Root marks a root key. Its Scopes are its permissions, and it acts
	// in ProjectIDs (nil: every project); ProjectID and EnvironmentID are
	// empty.
	Root          bool
	KeyID         string
	Name          string // the acting key's name, for the audit log
	ProjectID     string
	EnvironmentID string
	ProjectIDs    []string
	Scopes        []string
}

// AdminPrincipal is the principal of the admin token.
var AdminPrincipal = Principal{Admin: true}

// Actor describes the principal for the audit log.
func (p Principal) Actor() Actor {
	switch {
	case p.Admin:
		return Actor{Type: ActorAdmin}
	case p.Root:
		return Actor{Type: ActorRootKey, KeyID: p.KeyID, Name: p.Name}
	}
	return Actor{Type: ActorAPIKey, KeyID: p.KeyID, Name: p.Name}
}

// Allows reports whether the principal holds the scope an operation needs.
// api-keys:write also allows reading, as SPEC §3 says, and root-keys:write
// root-keys:read. root-keys: scopes are held by root keys only, whatever
// wildcard an API key holds.
func (p Principal) Allows(scope string) bool {
	switch {
	case p.Admin:
		return true
	case p.Root:
		return holds(p.Scopes, scope)
	case rootKeyScope(scope):
		return false
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
	switch {
	case p.Admin:
		return true
	case p.Root:
		return p.inProjects(project)
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
	switch {
	case p.Admin:
		return true
	case p.Root:
		return p.inProjects(k.ProjectID)
	}
	return k.ProjectID == p.ProjectID && (p.EnvironmentID == "" || k.EnvironmentID == p.EnvironmentID)
}

// SeesRecord is Sees for a verification record. The record of a root key
// is seen by no one: it is not a customer's key.
func (p Principal) SeesRecord(r *Record) bool {
	switch {
	case r.Root:
		return false
	case p.Admin:
		return true
	case p.Root:
		return p.inProjects(r.ProjectID)
	}
	return r.ProjectID == p.ProjectID && (p.EnvironmentID == "" || r.EnvironmentID == p.EnvironmentID)
}

// Covers reports whether the principal holds every one of scopes, so that
// creating, changing or rotating a key with them is no escalation. A root
// key may give any scope of the customer's vocabulary, and those that would
// hold apikeyd's own (api-keys:…, *) only when it holds them itself. For
// an API key, as in Allows, api-keys:write includes api-keys:read: a key
// that may write keys may issue one that only reads them.
func (p Principal) Covers(scopes []string) bool {
	switch {
	case p.Admin:
		return true
	case p.Root:
		for _, s := range scopes {
			if apikeydScope(s) && !holds(p.Scopes, s) {
				return false
			}
		}
		return true
	}
	for _, s := range scopes {
		if !anyCovers(p.Scopes, s) && (s != ScopeRead || !anyCovers(p.Scopes, ScopeWrite)) {
			return false
		}
	}
	return true
}

// inProjects reports whether a root key acts in project.
func (p Principal) inProjects(project string) bool {
	return p.ProjectIDs == nil || contains(p.ProjectIDs, project)
}
