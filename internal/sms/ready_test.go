package sms

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// readyCarrier is a scriptCarrier with a bind that comes and goes (sms.Readier).
type readyCarrier struct {
	*scriptCarrier
	ready atomic.Bool
}

func (c *readyCarrier) Ready() bool { return c.ready.Load() }

// claimCounter counts the store's claims.
type claimCounter struct {
	*memStore
	claims atomic.Int64
}

func (s *claimCounter) MessagesClaim(ctx context.Context, p ClaimParams) ([]Queued, error) {
	s.claims.Add(1)
	return s.memStore.MessagesClaim(ctx, p)
}

// TestSenderClaimsOnlyWhileReady: a node whose carrier has no bound link (its binds are held
// by other nodes of the cluster) claims nothing, so the queued messages wait for a node that
// has one; once a link is bound here, they go.
func TestSenderClaimsOnlyWhileReady(t *testing.T) {
	t.Parallel()
	st := &claimCounter{memStore: newMemStore()}
	c := &readyCarrier{scriptCarrier: &scriptCarrier{name: "c1", errs: map[string]error{}}}
	svc := New(Config{Store: st, Events: &memEvents{}, Carriers: []Carrier{c}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.senders["c1"].run(ctx) }()
	defer func() { cancel(); <-done }()
	res, err := svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: them}}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * senderPoll)
	if n := st.claims.Load(); n != 0 {
		t.Fatalf("the sender claimed %d times without a bound link", n)
	}
	c.ready.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := st.MessageGet(ctx, res[0].MessageID)
		if m.Status == StatusSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %+v not sent after the link was bound", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
