package apikey

import (
	"testing"
	"time"
)

func TestRecordFinal(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  Record
		want bool
	}{
		{"OKRevoked", Record{RevokedAt: now.Add(-time.Hour)}, true},
		{"OKRevokedInGrace", Record{RevokedAt: now.Add(-time.Hour), Replaced: true, GraceExpiresAt: now.Add(time.Hour)}, true},
		{"OKGraceOver", Record{Replaced: true, GraceExpiresAt: now}, true},
		{"ErrActive", Record{}, false},
		{"ErrInGrace", Record{Replaced: true, GraceExpiresAt: now.Add(time.Microsecond)}, false},
		// A PATCH may give an expired key a new expires_at.
		{"ErrExpired", Record{ExpiresAt: now.Add(-time.Hour)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.Final(now); got != tt.want {
				t.Errorf("Final = %v, want %v", got, tt.want)
			}
		})
	}
}
