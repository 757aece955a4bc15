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
