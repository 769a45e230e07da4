package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func newBox(t *testing.T) *Box {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := newBox(t)
	plain := []byte("whsec_secret")
	sealed, err := b.Seal(plain, "webhook-secret")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b.Open(sealed, "webhook-secret")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := b.Seal(plain, "webhook-secret")
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
}

func TestOpenErr(t *testing.T) {
	b := newBox(t)
	sealed, _ := b.Seal([]byte("x"), "ctx")
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		box     *Box
		sealed  []byte
		context string
	}{
		"ErrContext":  {b, sealed, "other"},
		"ErrKey":      {newBox(t), sealed, "ctx"},
		"ErrTampered": {b, tampered, "ctx"},
		"ErrShort":    {b, sealed[:5], "ctx"},
		"ErrEmpty":    {b, nil, "ctx"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.box.Open(tc.sealed, tc.context); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %v, want ErrOpen", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, KeySize)
	for name, s := range map[string]string{
		"OK/std":    base64.StdEncoding.EncodeToString(raw),
		"OK/rawurl": base64.RawURLEncoding.EncodeToString(raw),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseKey(s)
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("ParseKey = %x, %v", got, err)
			}
		})
	}
	for name, s := range map[string]string{
		"ErrShort":  base64.StdEncoding.EncodeToString(raw[:16]),
		"ErrBase64": "not base64!",
		"ErrEmpty":  "",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKey(s); err == nil {
				t.Fatal("ParseKey succeeded")
			}
		})
	}
}

// TestDeriveKey: one master key and purpose give one key (so replicas
// agree); another purpose or master key gives another.
func TestDeriveKey(t *testing.T) {
	m1, m2 := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	a := DeriveKey(m1, "list cursors")
	if len(a) != 32 || !bytes.Equal(a, DeriveKey(m1, "list cursors")) {
		t.Fatalf("derived %x, not 32 bytes or not stable", a)
	}
	for _, other := range [][]byte{DeriveKey(m1, "other"), DeriveKey(m2, "list cursors"), m1} {
		if bytes.Equal(a, other) {
			t.Fatalf("derived key %x equals %x", a, other)
		}
	}
}
