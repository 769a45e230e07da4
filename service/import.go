package service

import (
	"context"

	"github.com/apikeyd/apikeyd/apikey"
)

// ImportInput is a batch of keys to import into one project (SPEC §9).
type ImportInput struct {
	ProjectID string
	Keys      []apikey.ImportItem
}

// Import stores a batch of existing keys, atomically: any invalid item is
// 400 naming it (keys[3].hash), a hash that exists already or comes twice
// is 409 naming it, and then nothing is stored. The caller must hold
// api-keys:write in the project (and each key's environment) and every
// scope it grants. Each key gets an api_key.imported event.
func (s *Service) Import(ctx context.Context, p apikey.Principal, in ImportInput) ([]*apikey.Key, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return nil, errNoWrite
	}
	now := s.now()
	var bad problems
	bad.identifier("project_id", in.ProjectID)
	if n := len(in.Keys); n == 0 || n > apikey.MaxImportBatch {
		bad.add("keys", "must have 1-1000 keys")
	}
	keys := make([]*apikey.Key, len(in.Keys))
	for i := range in.Keys {
		k, errs := in.Keys[i].NewKey(now, in.ProjectID, p.EnvironmentID, i)
		bad = append(bad, errs...)
		keys[i] = k
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	first := make(map[apikey.Hash]int, len(keys))
	for i, k := range keys {
		if !p.InProject(k.ProjectID, k.EnvironmentID) {
			return nil, errProject
		}
		if !p.Covers(k.Scopes) {
			return nil, errEscalate
		}
		if _, dup := first[k.Hash]; dup {
			return nil, duplicateKey(in.Keys[i].HashField(i), "comes twice in the batch")
		}
		first[k.Hash] = i
		id, err := apikey.NewID(apikey.IDKindKey)
		if err != nil {
			return nil, apikey.Internal(err)
		}
		k.ID, k.LineageID = id, id
	}
	err := s.update(ctx, func(tx *writeTx) error {
		for i, k := range keys {
			if err := tx.InsertKey(ctx, k); err != nil {
				if apikey.ErrorCode(err) == apikey.ECONFLICT {
					return duplicateKey(in.Keys[i].HashField(i), "exists already")
				}
				return err
			}
			if c := in.Keys[i].Credits; c != nil {
				if err := tx.PutBalance(ctx, k.Subject(), c, now); err != nil {
					return err
				}
				tx.changed(k, "credits", nil, c.Remaining)
			}
			if err := tx.audit(ctx, p.Actor(), apikey.ActionImported, k, now, map[string]any{"source": string(apikey.SourceImported)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// duplicateKey is the 409 of an import whose key is not new.
func duplicateKey(field, msg string) error {
	return &apikey.Error{Code: apikey.ECONFLICT, Message: "a key of the batch is not new; nothing was imported",
		Fields: []apikey.FieldError{{Field: field, Message: msg}}}
}

// mayBeImported reports whether a presented key not in apikeyd's own
// format could be an imported key, and so is worth a lookup: only once
// the index has seen an imported key. Otherwise it is MALFORMED without
// one, as before imports existed.
func (s *Service) mayBeImported() bool { return hasImported(s.index) }

// hasImported asks an index whether it holds an imported key. An index
// that cannot tell (StoreIndex, which tools and tests use) keeps the
// offline rejection; the server's index, keycache, can.
func hasImported(i Index) bool {
	a, ok := i.(interface{ HasImported() bool })
	return ok && a.HasImported()
}
