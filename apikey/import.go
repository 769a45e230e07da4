package apikey

import (
	"strconv"
	"strings"
	"time"
)

// ImportItem is one key of an import (SPEC §9): the fields a creator sets,
// without rotation settings, and the key itself — as plaintext (Key,
// hashed at once and never kept) or as the hash clients' keys have (Hash,
// "sha256:<hex>"), exactly one of the two.
type ImportItem struct {
	KeyInput
	Key  string
	Hash string
	// KeyPrefix is what key_prefix shows; nil takes it from Key (see
	// importPrefix), or leaves it empty for a key given by hash.
	KeyPrefix *string
}

// NewKey checks the i-th item of an import into project at now and returns
// the key it describes, imported, without ID. env is the environment of
// an item that names none. Field errors are named after the item
// (keys[3].hash).
func (it *ImportItem) NewKey(now time.Time, project, env string, i int) (*Key, []FieldError) {
	in := it.KeyInput
	in.ProjectID = project
	in.RotationIntervalDays, in.RotationWebhookURL = nil, nil
	k, errs := in.NewKey(now, env)
	var bad problems
	for _, e := range errs {
		if e.Field != "project_id" { // the batch's, reported once by the caller
			bad = append(bad, e)
		}
	}
	switch {
	case it.Key != "" && it.Hash != "":
		bad.add("key", "give key or hash, not both")
	case it.Key != "":
		if len(it.Key) > MaxPresentedKeyBytes {
			bad.add("key", "must be at most 512 bytes")
		}
		k.Hash = HashKey(it.Key)
		k.KeyPrefix = importPrefix(it.Key)
	case it.Hash != "":
		h, err := ParseImportHash(it.Hash)
		if err != nil {
			bad.add("hash", err.Error())
		}
		k.Hash = h
	default:
		bad.add("hash", "give key or hash")
	}
	if it.KeyPrefix != nil {
		p := *it.KeyPrefix
		switch {
		case len(p) > KeyPrefixLen || !printable(p):
			bad.add("key_prefix", "must be at most 12 printable ASCII characters")
		case it.Key != "" && !strings.HasPrefix(it.Key, p):
			bad.add("key_prefix", "must be the start of key")
		}
		k.KeyPrefix = p
	}
	k.Source = SourceImported
	prefix := "keys[" + strconv.Itoa(i) + "]."
	for j := range bad {
		bad[j].Field = prefix + bad[j].Field
	}
	return k, bad
}

// importPrefix is the key_prefix of an imported plaintext: its first
// KeyPrefixLen characters, but never more than a quarter of it, so that a
// short foreign key does not show most of itself.
func importPrefix(key string) string {
	return key[:min(KeyPrefixLen, len(key)/4)]
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// HashField names the field an item gave its key in: keys[i].key or
// keys[i].hash, for a 409 about a duplicate.
func (it *ImportItem) HashField(i int) string {
	if it.Key != "" {
		return "keys[" + strconv.Itoa(i) + "].key"
	}
	return "keys[" + strconv.Itoa(i) + "].hash"
}
