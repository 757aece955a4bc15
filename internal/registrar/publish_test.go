package registrar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/registrar"
)

// TestPublish: every change of a user's bindings reaches the publisher with the user's live
// bindings, in order; a failed write is retried.
func TestPublish(t *testing.T) {
	loc := registrar.NewLocation(nil)
	type write struct {
		user string
		n    int
	}
	var mu sync.Mutex
	var writes []write
	fail := 1 // the first write fails
	pub := func(_ context.Context, user string, cs []registrar.Contact) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("store down")
		}
		writes = append(writes, write{user, len(cs)})
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loc.Publish(ctx, pub, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	last := func() (write, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(writes) == 0 {
			return write{}, 0
		}
		return writes[len(writes)-1], len(writes)
	}
	wait := func(want write) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			if w, _ := last(); w == want {
				return
			}
			if time.Now().After(deadline) {
				w, n := last()
				t.Fatalf("last write %+v after %d writes, want %+v", w, n, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c := registrar.Contact{Identity: "8:acs:a", URI: sip.Uri{Scheme: "sip", User: "d1", Host: "x.invalid"}, Source: "127.0.0.1:1", Expires: time.Now().Add(time.Hour)}
	loc.Put(c)
	wait(write{"8:acs:a", 1}) // after the retry
	c2 := c
	c2.URI.User, c2.Source = "d2", "127.0.0.1:2"
	if err := loc.Update("8:acs:a", []registrar.Contact{c2}, nil, 0); err != nil {
		t.Fatal(err)
	}
	wait(write{"8:acs:a", 2})
	loc.RemoveSource("127.0.0.1:1")
	wait(write{"8:acs:a", 1})
	// TouchAll (the node rejoined the cluster) writes every user's bindings again.
	_, before := last()
	loc.TouchAll()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if w, n := last(); n > before && w == (write{"8:acs:a", 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("TouchAll did not republish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	loc.RemoveAll("8:acs:a")
	wait(write{"8:acs:a", 0})
	if n := loc.Count(); n != 0 {
		t.Fatalf("count %d", n)
	}
}
