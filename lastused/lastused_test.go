package lastused_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/lastused"
)

// toucher keeps what it is given, and can fail.
type toucher struct {
	mu    sync.Mutex
	uses  map[string]time.Time
	err   error
	roots map[string]time.Time // of TouchRootKeys; nil until it is called
	// rootErr fails TouchRootKeys only.
	rootErr error
}

func (t *toucher) TouchKeys(_ context.Context, uses []apikey.KeyUse) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	for _, u := range uses {
		if u.At.After(t.uses[u.KeyID]) {
			t.uses[u.KeyID] = u.At
		}
	}
	return nil
}

func (t *toucher) TouchRootKeys(_ context.Context, uses []apikey.KeyUse) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	if t.rootErr != nil {
		return t.rootErr
	}
	if t.roots == nil {
		t.roots = map[string]time.Time{}
	}
	for _, u := range uses {
		if u.At.After(t.roots[u.KeyID]) {
			t.roots[u.KeyID] = u.At
		}
	}
	return nil
}

// TestBufferRootKeys: uses of root keys go to TouchRootKeys and those of
// keys to TouchKeys, and a failure of one batch keeps only its own uses.
func TestBufferRootKeys(t *testing.T) {
	st := &toucher{uses: map[string]time.Time{}}
	b := lastused.New(st)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Record("key_a", t0)
	b.Record("root_a", t0.Add(time.Second))
	st.rootErr = fmt.Errorf("down")
	if err := b.Flush(t.Context()); err == nil {
		t.Fatal("Flush with root keys failing succeeded")
	}
	if _, ok := b.Pending("key_a"); ok || !st.uses["key_a"].Equal(t0) {
		t.Fatalf("the key's use was not written: %v", st.uses)
	}
	if _, ok := b.Pending("root_a"); !ok {
		t.Fatal("a failed flush lost a root key's use")
	}
	rk := &apikey.RootKey{ID: "root_a", LastUsedAt: t0}
	b.OverlayRoot(rk)
	if !rk.LastUsedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("OverlayRoot: %v", rk.LastUsedAt)
	}
	st.rootErr = nil
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !st.roots["root_a"].Equal(t0.Add(time.Second)) {
		t.Fatalf("root uses %v", st.roots)
	}
	if _, ok := st.uses["root_a"]; ok {
		t.Fatal("a root key's use went to TouchKeys")
	}
}

func TestBuffer(t *testing.T) {
	st := &toucher{uses: map[string]time.Time{}}
	b := lastused.New(st)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Record("key_a", t0.Add(2*time.Second))
	b.Record("key_a", t0.Add(time.Second)) // older: ignored
	b.Record("key_b", t0)
	if got, ok := b.Pending("key_a"); !ok || !got.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("Pending = %v, %v", got, ok)
	}
	k := &apikey.Key{ID: "key_a", LastUsedAt: t0}
	b.Overlay(k)
	if !k.LastUsedAt.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("Overlay: %v", k.LastUsedAt)
	}
	st.err = fmt.Errorf("down")
	if err := b.Flush(t.Context()); err == nil {
		t.Fatal("Flush with the store down succeeded")
	}
	if _, ok := b.Pending("key_b"); !ok {
		t.Fatal("a failed flush lost a use")
	}
	st.err = nil
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !st.uses["key_a"].Equal(t0.Add(2*time.Second)) || !st.uses["key_b"].Equal(t0) {
		t.Fatalf("flushed %v", st.uses)
	}
	if _, ok := b.Pending("key_a"); ok {
		t.Fatal("use still pending after a flush")
	}
}

// BenchmarkRecord is the last-use record every verification and bearer
// check makes, on every core at once: of one hot key (a verifier's
// bearer), and of keys spread over 1,000.
func BenchmarkRecord(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%026d", i)
	}
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("Keys%d", n), func(b *testing.B) {
			buf := lastused.New(&toucher{uses: map[string]time.Time{}})
			now := time.Now()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					buf.Record(ids[i%n], now.Add(time.Duration(i)*time.Microsecond))
					i++
				}
			})
		})
	}
}
