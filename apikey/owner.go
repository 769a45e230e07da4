package apikey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Limits of the fields of SPEC §9.
const (
	MaxOwnerIDLen         = 255
	MaxMetaBytes          = 4096
	MaxMetaMembers        = 64
	MaxDisabledReasonLen  = 255
	MaxAllowlistEntries   = 100
	MaxImportBatch        = 1000
	importHashPrefix      = "sha256:"
	importHashHexLen      = 64
	revocationReasonUnset = RevocationUnspecified
)

// MsgOwnerID is what a field error says of a bad owner_id.
const MsgOwnerID = "must be 1–255 characters of A-Z, a-z, 0-9, _ . : @ -"

// ValidOwnerID reports whether s may be a key's owner_id: 1–255 characters
// of [A-Za-z0-9_.:@-]. Owners are the customer's own user, team or
// service-account IDs, so '@' is allowed beside the identifier characters
// (e-mail-like IDs are common).
func ValidOwnerID(s string) bool {
	if len(s) == 0 || len(s) > MaxOwnerIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !identChar(c) && c != '@' {
			return false
		}
	}
	return true
}

// CompactMeta checks that raw is a JSON object fit to be a key's meta — at
// most MaxMetaMembers members and MaxMetaBytes bytes once compacted — and
// returns its compact form, which is what is stored and handed to every
// verifier. A JSON null is the caller's business (it clears meta) and is
// rejected here.
func CompactMeta(raw []byte) ([]byte, error) {
	var members map[string]json.RawMessage
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, &members); err != nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	if len(members) > MaxMetaMembers {
		return nil, fmt.Errorf("must have at most %d members, got %d", MaxMetaMembers, len(members))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	if buf.Len() > MaxMetaBytes {
		return nil, fmt.Errorf("must be at most %d bytes as compact JSON, got %d", MaxMetaBytes, buf.Len())
	}
	return buf.Bytes(), nil
}

// RevocationReason says why a key was revoked, in the vocabulary of RFC
// 5280's CRL reason codes that apply to API keys.
type RevocationReason string

// Revocation reasons of SPEC §9.
const (
	RevocationUnspecified          RevocationReason = "unspecified"
	RevocationKeyCompromise        RevocationReason = "key_compromise"
	RevocationSuperseded           RevocationReason = "superseded"
	RevocationPrivilegeWithdrawn   RevocationReason = "privilege_withdrawn"
	RevocationCessationOfOperation RevocationReason = "cessation_of_operation"
)

// RevocationReasons lists every reason, for validation messages and the
// OpenAPI enum.
var RevocationReasons = []RevocationReason{
	RevocationUnspecified, RevocationKeyCompromise, RevocationSuperseded,
	RevocationPrivilegeWithdrawn, RevocationCessationOfOperation,
}

// ParseRevocationReason returns the reason named s; the empty string is
// RevocationUnspecified.
func ParseRevocationReason(s string) (RevocationReason, error) {
	if s == "" {
		return revocationReasonUnset, nil
	}
	for _, r := range RevocationReasons {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, len(RevocationReasons))
	for i, r := range RevocationReasons {
		names[i] = string(r)
	}
	return "", fmt.Errorf("must be one of %s", strings.Join(names, ", "))
}

// Source says where a key came from.
type Source string

// Key sources.
const (
	SourceIssued   Source = "issued"
	SourceImported Source = "imported"
)

// ParseImportHash reads the hash of an imported key, given as
// "sha256:<64 lowercase hex>" of the key exactly as clients present it.
func ParseImportHash(s string) (Hash, error) {
	var h Hash
	hexPart, ok := strings.CutPrefix(s, importHashPrefix)
	if !ok || len(hexPart) != importHashHexLen {
		return h, fmt.Errorf("must be sha256: followed by 64 lowercase hex digits")
	}
	for i := 0; i < len(h); i++ {
		hi, ok1 := lowerHex(hexPart[2*i])
		lo, ok2 := lowerHex(hexPart[2*i+1])
		if !ok1 || !ok2 {
			return Hash{}, fmt.Errorf("must be sha256: followed by 64 lowercase hex digits")
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
