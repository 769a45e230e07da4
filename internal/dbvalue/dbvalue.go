// Package dbvalue holds the column types both stores share: domain values
// stored in one column the same way on SQLite and PostgreSQL.
package dbvalue

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"

	"github.com/apikeyd/apikeyd/apikey"
)

// RateLimits stores a key's rate limits as a JSON array, NULL for none.
type RateLimits []apikey.RateLimit

// Value implements driver.Valuer.
func (ls RateLimits) Value() (driver.Value, error) {
	if ls == nil {
		return nil, nil
	}
	j, err := json.Marshal([]apikey.RateLimit(ls))
	return string(j), err
}

// Scan implements sql.Scanner.
func (ls *RateLimits) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*ls = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("ratelimits: cannot scan %T", src)
	}
	var out []apikey.RateLimit
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("ratelimits: %w", err)
	}
	*ls = out
	return nil
}
