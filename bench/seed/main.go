// Command seed fills an apikeyd SQLite data directory with many keys,
// straight through the store in large transactions, for the benchmarks of
// docs/benchmarks.md. It prints the plaintext of a verifier key (scope
// api-keys:verify) and of the first -emit seeded keys, one per line, so that
// a load generator can present them: the verifier first, then the keys.
//
// It writes into the database file apikeyd serves from, so it locks the
// data directory as apikeyd serve does: it refuses to run while a server
// uses that directory, and a server refuses to start while it runs.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/sqlite"
)

// The optional SPEC §9 fields the seeded keys carry.
var (
	withOwner bool
	metaBytes int
	allowlist apikey.Allowlist
)

// meta returns a compact JSON object of about n bytes for key i.
func meta(i, n int) []byte {
	head := fmt.Sprintf(`{"customer":"cust-%08d","plan":"pro","pad":"`, i)
	pad := max(0, n-len(head)-2)
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// metered is -metered.
var metered bool

// The usage control of a -metered key: far more than a benchmark spends.
var (
	benchLimits  = []apikey.RateLimit{{Name: "per_second", Limit: apikey.MaxRateLimit, DurationMS: 1000}}
	benchCredits = &apikey.Credits{Remaining: apikey.MaxCredits}
)

func main() {
	dataDir := flag.String("data-dir", "./data", "apikeyd data directory (created if absent)")
	flag.StringVar(&databaseURL, "database-url", "", "seed this PostgreSQL database (postgres:// URL) instead of the data directory's SQLite file")
	n := flag.Int("n", 10000, "number of keys to seed")
	emit := flag.Int("emit", 1000, "print the plaintext of this many seeded keys")
	batch := flag.Int("batch", 20000, "keys per transaction")
	projects := flag.Int("projects", 1, "spread keys over this many projects (p1 … pN); the verifier and the printed keys are in p1")
	prefix := flag.String("prefix", "sk", "key prefix")
	flag.BoolVar(&withOwner, "owner", false, "give every key an owner_id of its own")
	flag.IntVar(&metaBytes, "meta", 0, "give every key a meta object of about this many bytes, different for each key (0: none)")
	allow := flag.String("allow-ip", "", "give every key this IP allowlist (comma-separated addresses and CIDRs)")
	flag.BoolVar(&metered, "metered", false, "give every seeded key one rate limit (never reached) and credits (never exhausted), so that each verify is admitted by the usage engine")
	flag.Parse()
	if *allow != "" {
		l, bad, err := apikey.ParseAllowlist(strings.Split(*allow, ","))
		if err != nil || bad != nil {
			log.Fatalf("-allow-ip: %v %v", err, bad)
		}
		allowlist = l
	}
	if err := run(*dataDir, *n, *emit, *batch, *projects, *prefix); err != nil {
		log.Fatal(err)
	}
}

// databaseURL, when set, names the PostgreSQL database to seed.
var databaseURL string

// open opens the store to seed: PostgreSQL when -database-url is given,
// else the SQLite file of dataDir, locked as apikeyd serve locks it.
func open(ctx context.Context, dataDir string) (apikey.Store, func(), error) {
	if databaseURL != "" {
		st, err := postgres.Open(ctx, databaseURL)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	lock, err := sqlite.LockDir(dataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "apikeyd.db"))
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return st, func() { st.Close(); lock.Unlock() }, nil
}

func run(dataDir string, n, emit, batch, projects int, prefix string) error {
	ctx := context.Background()
	st, closeStore, err := open(ctx, dataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()

	start := time.Now()
	verifier, secret, err := newKey(prefix, "p1", "bench verifier", []string{apikey.ScopeVerify}, "")
	if err != nil {
		return err
	}
	if err := st.Update(ctx, func(tx apikey.Tx) error { return tx.InsertKey(ctx, verifier) }); err != nil {
		return err
	}
	fmt.Fprintln(out, secret)

	keys := make([]*apikey.Key, 0, batch)
	for done := 0; done < n; {
		keys = keys[:0]
		for i := done; i < min(done+batch, n); i++ {
			// Every printed key is in p1 so that the verifier sees it; the
			// rest spread over the projects.
			project := "p1"
			if i >= emit && projects > 1 {
				project = fmt.Sprintf("p%d", 1+i%projects)
			}
			k, secret, err := newKey(prefix, project, fmt.Sprintf("bench key %d", i), []string{"orders:read", "orders:write"}, "prod")
			if err != nil {
				return err
			}
			if withOwner {
				k.OwnerID = fmt.Sprintf("user:%08d@tenant-%d", i, i%projects)
			}
			if metaBytes > 0 {
				k.Meta = meta(i, metaBytes)
			}
			k.IPAllowlist = allowlist
			if i < emit {
				fmt.Fprintln(out, secret)
			}
			keys = append(keys, k)
		}
		err := st.Update(ctx, func(tx apikey.Tx) error {
			for _, k := range keys {
				if err := tx.InsertKey(ctx, k); err != nil {
					return err
				}
				if k.HasCredits {
					if err := tx.PutBalance(ctx, k.Subject(), benchCredits, k.CreatedAt); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		done += len(keys)
	}
	log.Printf("seeded %d keys (+1 verifier) into %s in %s", n, dataDir, time.Since(start).Round(time.Millisecond))
	return nil
}

func newKey(prefix, project, name string, scopes []string, env string) (*apikey.Key, string, error) {
	s, err := apikey.GenerateKey(prefix)
	if err != nil {
		return nil, "", err
	}
	id, err := apikey.NewID(apikey.IDKindKey)
	if err != nil {
		return nil, "", err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	k := &apikey.Key{
		ID: id, ProjectID: project, EnvironmentID: env, Name: name,
		KeyPrefix: s.Prefix, Hash: s.Hash, Scopes: scopes,
		CreatedAt: now, UpdatedAt: now, LineageID: id,
	}
	if metered && name != "bench verifier" {
		k.RateLimits, k.HasCredits = benchLimits, true
	}
	return k, s.Plaintext, nil
}
