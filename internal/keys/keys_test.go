package keys

import (
	"context"
	"encoding/base64"
	"sync"
	"testing"

	"github.com/telgw/telgw/internal/problem"
)

// memStore is an in-memory Store; hide makes SettingGet miss a key that is there (another
// node stored it between this node's read and its write).
type memStore struct {
	mu   sync.Mutex
	m    map[string]string
	hide map[string]bool
}

func (s *memStore) SettingGet(_ context.Context, k string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok || s.hide[k] {
		delete(s.hide, k)
		return "", problem.ErrNotFound
	}
	return v, nil
}

func (s *memStore) SettingPut(_ context.Context, k, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *memStore) SettingPutIfAbsent(_ context.Context, k, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok {
		s.m[k] = v
	}
	return nil
}

// TestGenerated: only the start that generated and stored the primary key reports it (and so
// prints the connection string): not a later start, not a node that lost the race to store
// it, not one whose key TELGW_ACCESS_KEY pins.
func TestGenerated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{m: map[string]string{}, hide: map[string]bool{}}
	first, err := NewRing(ctx, st, "", "")
	if err != nil || !first.Generated() {
		t.Fatalf("first start: generated=%v err=%v", first != nil && first.Generated(), err)
	}
	if again, err := NewRing(ctx, st, "", ""); err != nil || again.Generated() {
		t.Fatalf("later start: generated=%v err=%v", again.Generated(), err)
	}
	st.hide[settingPrimary] = true
	lost, err := NewRing(ctx, st, "", "")
	if err != nil || lost.Generated() || lost.Current().AccessKey(PrimaryKey) != first.Current().AccessKey(PrimaryKey) {
		t.Fatalf("node that lost the race: generated=%v err=%v", lost.Generated(), err)
	}
	pin := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	if pinned, err := NewRing(ctx, &memStore{m: map[string]string{}, hide: map[string]bool{}}, pin, ""); err != nil || pinned.Generated() {
		t.Fatalf("pinned key: generated=%v err=%v", pinned.Generated(), err)
	}
}

// TestCallbackKeyShared: the callback signing key (RSA) is generated once and every node on
// the same store reads the same one back, with the same kid.
func TestCallbackKeyShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{m: map[string]string{}, hide: map[string]bool{}}
	a, err := NewRing(ctx, st, "", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRing(ctx, st, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := a.Current(), b.Current()
	if ka.CallbackKey == nil || ka.CallbackKey.N.BitLen() != 2048 {
		t.Fatalf("callback key %v, want RSA 2048", ka.CallbackKey)
	}
	if !ka.CallbackKey.Equal(kb.CallbackKey) || ka.CallbackKeyID != kb.CallbackKeyID || ka.CallbackKeyID == "" {
		t.Fatalf("nodes disagree on the callback key: kid %q vs %q", ka.CallbackKeyID, kb.CallbackKeyID)
	}
	if ka.CallbackKeyID == ka.KeyID {
		t.Fatal("callback and token keys share a kid")
	}
}
