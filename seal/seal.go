// Package seal encrypts the few secrets apikeyd must be able to read back —
// rotation webhook secrets and undelivered replacement keys — with the master
// key, so that a copy of the database alone does not reveal them.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the length of a master key in bytes.
const KeySize = 32

// version is the first byte of every sealed value, so that the format can
// change without guessing.
const version byte = 1

// Box seals and opens values with one master key, using AES-256-GCM with a
// random nonce per value.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte master key.
func New(masterKey []byte) (*Box, error) {
	if len(masterKey) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return &Box{aead: aead}, nil
}

// ParseKey decodes a base64 master key (standard or URL alphabet, padded or
// not) and checks its length.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("must decode to %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("is not valid base64")
}

// GenerateKey returns a new random master key, base64-encoded.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Seal encrypts plaintext. context binds the value to its purpose (and, where
// useful, its owner): Open must be given the same context.
func (b *Box) Seal(plaintext []byte, context string) ([]byte, error) {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:], plaintext, []byte(context)), nil
}

// ErrOpen is returned when a sealed value cannot be opened: it was sealed
// with another master key or context, or it was tampered with.
var ErrOpen = errors.New("sealed value cannot be opened")

// Open decrypts a value made by Seal with the same context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// DeriveKey returns a 32-byte key for one purpose other than sealing
// (signing list cursors, say), derived from the master key with
// HMAC-SHA256, so that every replica holding the master key derives the
// same key and no purpose's key tells anything of the master key or of
// another purpose's.
func DeriveKey(masterKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("apikeyd derived key\x00" + purpose))
	return m.Sum(nil)
}
