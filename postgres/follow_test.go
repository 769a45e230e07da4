package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/keycache"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

// index is the real in-memory index, counting what the follower applies.
type index struct {
	*keycache.Cache
	applied atomic.Int64
}

func (i *index) Apply(k *apikey.Key) {
	i.applied.Add(1)
	i.Cache.Apply(k)
}

// replica is a store with a follower keeping an index in step, as one
// apikeyd replica has.
type replica struct {
	store *postgres.Store
	index *index
	f     *postgres.Follower
}

// startReplica opens dbURL, loads an index and runs a follower on it until
// the test ends. Its listening connection's application_name is
// appName-listen.
func startReplica(t testing.TB, dbURL, appName string, o postgres.FollowOptions) *replica {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	st, err := postgres.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{store: st, index: &index{Cache: keycache.New(keycache.Options{Store: st})}}
	since, err := st.KeyChanges(t.Context(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.index.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	o.Index = r.index
	r.f = st.Follower(o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.f.Run(ctx, since) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		st.Close()
	})
	waitUntil(t, 10*time.Second, "the follower to be ready", func() bool { return r.f.Ready() == nil })
	return r
}

// version returns the version of k in the replica's index, 0 if absent.
func (r *replica) version(k *apikey.Key) int64 {
	v, _ := r.index.Version(k.Hash)
	return v
}

func waitUntil(t testing.TB, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func insertKey(t testing.TB, s *postgres.Store, k *apikey.Key) {
	t.Helper()
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) }); err != nil {
		t.Fatal(err)
	}
}

// revoke revokes the key through s and returns it as committed.
func revoke(t testing.TB, s *postgres.Store, id string) *apikey.Key {
	t.Helper()
	var out *apikey.Key
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		k, err := tx.KeyForUpdate(t.Context(), id)
		if err != nil {
			return err
		}
		k.RevokedAt = time.Now().UTC()
		out = k
		return tx.UpdateKey(t.Context(), k)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFollowerNotified: a key inserted or changed through another replica's
// store reaches the follower's index through a notification, and a change
// the replica applied itself is not read again.
func TestFollowerNotified(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dbURL := pgtest.Schema(t)
	r := startReplica(t, dbURL, "apikeyd-follow-test", postgres.FollowOptions{ReconcileInterval: time.Hour})
	other := open(t) // another schema: its notifications must not arrive
	writer := openWriter(t, dbURL)

	for i := range 20 {
		k := testKey(i)
		insertKey(t, writer, k)
		took := waitUntil(t, 5*time.Second, "the new key", func() bool { return r.version(k) == 1 })
		revoke(t, writer, k.ID)
		took2 := waitUntil(t, 5*time.Second, "the revocation", func() bool { return r.version(k) == 2 })
		if i == 0 {
			t.Logf("insert seen after %v, revocation after %v", took, took2)
		}
		rec, found, err := r.index.Lookup(t.Context(), k.Hash)
		if err != nil || !found || rec.RevokedAt.IsZero() {
			t.Fatalf("lookup after the revocation: %+v %v %v", rec, found, err)
		}
	}

	// A change this replica makes: the service applies it to the index
	// right after the commit; here it is applied just before, so that the
	// notification cannot overtake it.
	own := testKey(101)
	insertKey(t, r.store, own)
	waitUntil(t, 5*time.Second, "the replica's own key", func() bool { return r.version(own) == 1 })
	before := r.index.applied.Load()
	// Another schema's keys are not this replica's.
	insertKey(t, other, testKey(100))
	err := r.store.Update(t.Context(), func(tx apikey.Tx) error {
		k, err := tx.KeyForUpdate(t.Context(), own.ID)
		if err != nil {
			return err
		}
		k.Name = "renamed here"
		if err := tx.UpdateKey(t.Context(), k); err != nil {
			return err
		}
		r.index.Cache.Apply(k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A heartbeat and more later, the follower has read neither.
	time.Sleep(time.Second)
	if r.version(own) != 2 {
		t.Errorf("the replica's own change: version %d, want 2", r.version(own))
	}
	if n := r.index.applied.Load() - before; n != 0 {
		t.Errorf("the follower applied %d keys: another schema's, or one the index held already", n)
	}
	if _, ok := r.index.Version(testKey(100).Hash); ok {
		t.Error("a key of another schema reached the index")
	}
}

// TestFollowerCatchesUp cuts the follower off: its listening connection is
// terminated and the database refuses new connections, while another
// replica keeps writing through connections it holds. The follower stops
// being ready at once and becomes stale once the bound has passed; when the
// database lets it back in, it reads what it missed and is ready again.
func TestFollowerCatchesUp(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	dbURL := pgtest.Database(t)
	const bound = 300 * time.Millisecond
	app := "apikeyd-catchup-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	r := startReplica(t, dbURL, app, postgres.FollowOptions{MaxStaleness: bound, ReconcileInterval: time.Hour})
	writer := openWriter(t, dbURL)
	k := testKey(1)
	insertKey(t, writer, k)
	waitUntil(t, 5*time.Second, "the new key", func() bool { return r.version(k) == 1 })
	if r.f.Stale() {
		t.Fatal("stale while following")
	}

	name := dbName(t, dbURL)
	pgtest.Exec(t, base, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	t.Cleanup(func() { pgtest.Exec(t, base, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true") })
	cut := time.Now()
	terminate(t, base, app+"-listen")
	waitUntil(t, 5*time.Second, "the follower to be unready", func() bool { return r.f.Ready() != nil })

	// Changes the follower cannot hear of.
	revoke(t, writer, k.ID)
	k2 := testKey(2)
	insertKey(t, writer, k2)
	waitUntil(t, 5*time.Second, "the follower to be stale", r.f.Stale)
	gone, age := time.Since(cut), r.f.Age()
	if age < bound {
		t.Errorf("stale %v after the last confirmation, before the bound of %v", age, bound)
	}
	t.Logf("stale %v after the cut, %v after the last confirmation", gone.Round(time.Millisecond), age.Round(time.Millisecond))
	if r.version(k) != 1 || r.version(k2) != 0 {
		t.Fatal("the follower heard of changes while cut off")
	}

	pgtest.Exec(t, base, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	back := waitUntil(t, 10*time.Second, "the follower to catch up", func() bool { return r.f.Ready() == nil })
	if r.f.Stale() || r.version(k) != 2 || r.version(k2) != 1 {
		t.Fatalf("after reconnecting: stale %v, versions %d and %d, want false, 2 and 1", r.f.Stale(), r.version(k), r.version(k2))
	}
	t.Logf("ready again %v after connections were allowed", back.Round(time.Millisecond))
}

// dbName returns the database of a URL.
func dbName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return pgx.Identifier{u.Path[1:]}.Sanitize()
}

// terminate ends the backends whose application_name is app.
func terminate(t *testing.T, base, app string) {
	t.Helper()
	pgtest.Exec(t, base, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '"+app+"'")
}

// TestFollowerReconciles: a key inserted while the keys_changed trigger is
// off (as by a restore or a bulk load that disables triggers) is never
// notified. A follower reconciling every 200ms reads it while its
// connection stays up; one reconciling every hour does not.
func TestFollowerReconciles(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dbURL := pgtest.Schema(t)
	var fastLog, slowLog logs
	fast := startReplica(t, dbURL, "apikeyd-reconcile-fast", postgres.FollowOptions{ReconcileInterval: 200 * time.Millisecond, Logger: slog.New(&fastLog)})
	slow := startReplica(t, dbURL, "apikeyd-reconcile-slow", postgres.FollowOptions{ReconcileInterval: time.Hour, Logger: slog.New(&slowLog)})
	writer := openWriter(t, dbURL)

	unnotified := testKey(1)
	insertUnnotified(t, dbURL, writer, unnotified)
	// A notified key committed after it: once a follower has it, it has
	// had every notification of what committed before.
	notified := testKey(2)
	insertKey(t, writer, notified)
	waitUntil(t, 5*time.Second, "the notified key", func() bool { return slow.version(notified) == 1 })
	if slow.version(unnotified) != 0 {
		t.Fatal("a follower that does not reconcile has the key inserted without a notification")
	}

	waitUntil(t, 10*time.Second, "the reconciling follower to read the key", func() bool { return fast.version(unnotified) == 1 })
	// What it read, it read through a reconcile of a connection that stayed
	// up: the one at connection and at least one since.
	waitUntil(t, 5*time.Second, "the reconcile's log", func() bool { return fastLog.count(msgCaughtUp) >= 2 })
	wantLogged(t, &fastLog, msgFollowing, 1, "the reconciling follower connected %d times, want 1")
	wantLogged(t, &fastLog, msgUnreadable, 0, "%d unreadable notifications, want none")
	if slow.version(unnotified) != 0 || slowLog.count(msgCaughtUp) != 1 || slowLog.count(msgFollowing) != 1 {
		t.Errorf("the hourly follower: version %d, %d catch-ups, %d connections; want 0, 1 and 1",
			slow.version(unnotified), slowLog.count(msgCaughtUp), slowLog.count(msgFollowing))
	}
}

// TestFollowerUnreadable: a notification the follower cannot read makes it
// read every change since its last position, which brings what no readable
// notification named. Neither follower reconciles on its own here.
func TestFollowerUnreadable(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()

	// A notification on the channel from another session (not the
	// trigger's) comes after a key inserted without one.
	t.Run("Foreign", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.Schema(t)
		var log logs
		r := startReplica(t, dbURL, "apikeyd-unreadable-foreign", postgres.FollowOptions{ReconcileInterval: time.Hour, Logger: slog.New(&log)})
		writer := openWriter(t, dbURL)

		unnotified := testKey(1)
		insertUnnotified(t, dbURL, writer, unnotified)
		notified := testKey(2)
		insertKey(t, writer, notified)
		waitUntil(t, 5*time.Second, "the notified key", func() bool { return r.version(notified) == 1 })
		if r.version(unnotified) != 0 {
			t.Fatal("the follower has the key inserted without a notification before any reconcile")
		}

		pgtest.Exec(t, dbURL, "SELECT pg_notify('apikeyd_keys_' || to_hex(hashtext(current_schema())), 'not a key change')")
		waitUntil(t, 10*time.Second, "the key inserted without a notification", func() bool { return r.version(unnotified) == 1 })
		waitUntil(t, 5*time.Second, "the full read's log", func() bool { return log.count(msgCaughtUp) >= 2 })
		wantLogged(t, &log, msgUnreadable, 1, "%d unreadable notifications logged, want 1")
		wantLogged(t, &log, msgFollowing, 1, "the follower connected %d times, want 1")
	})

	// The store takes any key ID (the service makes them without spaces);
	// the trigger's own notification of a key whose ID has a space cannot
	// be read, so its insert and its revocation arrive by full reads.
	t.Run("OwnPayload", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.Schema(t)
		var log logs
		r := startReplica(t, dbURL, "apikeyd-unreadable-own", postgres.FollowOptions{ReconcileInterval: time.Hour, Logger: slog.New(&log)})
		writer := openWriter(t, dbURL)

		k := testKey(1)
		k.ID = "key with spaces"
		insertKey(t, writer, k)
		waitUntil(t, 10*time.Second, "the key", func() bool { return r.version(k) == 1 })
		revoke(t, writer, k.ID)
		waitUntil(t, 10*time.Second, "the revocation", func() bool { return r.version(k) == 2 })
		rec, found, err := r.index.Lookup(t.Context(), k.Hash)
		if err != nil || !found || rec.RevokedAt.IsZero() {
			t.Fatalf("lookup after the revocation: %+v %v %v", rec, found, err)
		}
		waitUntil(t, 5*time.Second, "the full reads' log", func() bool { return log.count(msgCaughtUp) >= 3 })
		wantLogged(t, &log, msgUnreadable, 2, "%d unreadable notifications logged, want 2")
		wantLogged(t, &log, msgFollowing, 1, "the follower connected %d times, want 1")
	})
}

// openWriter opens a store on dbURL for the test to write through, as
// another replica would, closed when the test ends.
func openWriter(t testing.TB, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantLogged fails the test unless l holds exactly n lines of msg; format
// says what they are, with %d for the count found.
func wantLogged(t *testing.T, l *logs, msg string, n int, format string) {
	t.Helper()
	if got := l.count(msg); got != n {
		t.Errorf(format, got)
	}
}

// insertUnnotified inserts k through s with the keys_changed trigger off,
// so that no notification is sent; change_xid takes its default.
func insertUnnotified(t *testing.T, dbURL string, s *postgres.Store, k *apikey.Key) {
	t.Helper()
	pgtest.Exec(t, dbURL, "ALTER TABLE keys DISABLE TRIGGER keys_changed")
	insertKey(t, s, k)
	pgtest.Exec(t, dbURL, "ALTER TABLE keys ENABLE TRIGGER keys_changed")
}

// Messages of the follower's log that tell its paths apart.
const (
	msgFollowing  = "following key changes"                                            // a connection caught up
	msgCaughtUp   = "caught up with key changes"                                       // a read from the last position
	msgUnreadable = "unreadable key change notification; reading every change instead" // a payload it cannot parse
)

// logs records a follower's log at every level.
type logs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

// count returns how many records had the message msg.
func (l *logs) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
