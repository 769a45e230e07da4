package service

import "github.com/apikeyd/apikeyd/apikey"

// CreateInput is what a caller gives to create a key; the domain declares
// it (apikey.KeyInput), with its checks.
type CreateInput = apikey.KeyInput

// PatchInput is a partial update of a key; the domain declares it
// (apikey.KeyPatch), with its checks and how it applies.
type PatchInput = apikey.KeyPatch

// problems collects field errors of inputs the domain does not declare
// (queries, verifications), so that a caller hears of all at once.
type problems []apikey.FieldError

func (p *problems) add(field, msg string) {
	*p = append(*p, apikey.FieldError{Field: field, Message: msg})
}

func (p *problems) identifier(field, s string) {
	if !apikey.ValidIdentifier(s) {
		p.add(field, apikey.MsgIdentifier)
	}
}

func (p problems) err() error { return apikey.InvalidFields(p) }
