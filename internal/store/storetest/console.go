package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// Console runs the web console's token cases (sessions and single-use sign-in links).
func Console(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Sessions", func(t *testing.T) { t.Parallel(); consoleSessions(t, open(t)) })
	t.Run("LinkOnce", func(t *testing.T) { t.Parallel(); consoleLinkOnce(t, open(t)) })
}

var consoleT0 = time.UnixMilli(1_800_000_000_000).UTC()

func consoleSessions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	s := console.Token{Hash: console.HashSecret("s1"), Kind: console.KindSession, CSRF: "c1", KeyFP: "fp",
		CreatedAt: consoleT0, ExpiresAt: consoleT0.Add(time.Hour)}
	if err := db.ConsoleTokenPut(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := db.ConsoleTokenPut(ctx, s); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("second put: %v, want ErrConflict", err)
	}
	got, err := db.ConsoleTokenGet(ctx, s.Hash, console.KindSession, consoleT0.Add(time.Minute))
	if err != nil || got != s {
		t.Fatalf("get = %+v, %v; want %+v", got, err, s)
	}
	if _, err := db.ConsoleTokenGet(ctx, s.Hash, console.KindLink, consoleT0); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("get as link: %v, want ErrNotFound", err)
	}
	if _, err := db.ConsoleTokenGet(ctx, s.Hash, console.KindSession, s.ExpiresAt); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("get expired: %v, want ErrNotFound", err)
	}
	other := s
	other.Hash, other.ExpiresAt = console.HashSecret("s2"), consoleT0.Add(2*time.Hour)
	if err := db.ConsoleTokenPut(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n, err := db.ConsoleTokenSweep(ctx, consoleT0.Add(90*time.Minute)); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1", n, err)
	}
	if err := db.ConsoleTokenDelete(ctx, other.Hash); err != nil {
		t.Fatal(err)
	}
	if err := db.ConsoleTokenDelete(ctx, other.Hash); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	if _, err := db.ConsoleTokenGet(ctx, other.Hash, console.KindSession, consoleT0); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
}

func consoleLinkOnce(t *testing.T, db *store.DB) {
	ctx := context.Background()
	secret, err := console.IssueLink(ctx, db, "fp", 10*time.Minute, consoleT0)
	if err != nil {
		t.Fatal(err)
	}
	h := console.HashSecret(secret)
	if _, err := db.ConsoleTokenTake(ctx, h, console.KindLink, consoleT0.Add(10*time.Minute)); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("take expired: %v, want ErrNotFound", err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := db.ConsoleTokenTake(ctx, h, console.KindLink, consoleT0.Add(time.Minute))
			switch {
			case err == nil:
				if tok.KeyFP != "fp" || tok.Kind != console.KindLink {
					t.Errorf("took %+v", tok)
				}
				wins.Add(1)
			case !errors.Is(err, problem.ErrNotFound):
				t.Errorf("take: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d takers got the link, want exactly 1", wins.Load())
	}
}
