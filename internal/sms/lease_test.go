package sms

import (
	"context"
	"testing"
	"time"
)

// TestOutcomeNeedsTheLease: a message whose lease expired while it was out and went to another
// sender is not recorded by the first (the other sender's outcome counts), and the first
// sender's token still comes back.
func TestOutcomeNeedsTheLease(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: them}}})
	if err != nil {
		t.Fatal(err)
	}
	sd := f.svc.senders["c1"]
	batch, err := sd.claim(ctx, 10)
	if err != nil || len(batch) != 1 {
		t.Fatalf("claim %v %v", batch, err)
	}
	// Past the lease another node claims the message.
	other, err := f.store.MessagesClaim(ctx, ClaimParams{Carrier: "c1", Now: f.clock().Add(leaseTTL), Limit: 10, Owner: "n2#x", Until: f.clock().Add(2 * leaseTTL)})
	if err != nil || len(other) != 1 {
		t.Fatalf("claim after the lease: %v %v", other, err)
	}
	f.svc.inflight <- struct{}{}
	sd.send(ctx, batch[0])
	sd.wg.Wait()
	if m, _ := f.store.MessageGet(ctx, res[0].MessageID); m.Status != StatusQueued {
		t.Fatalf("message %+v recorded by a sender that lost its lease", m)
	}
	if n := len(f.svc.inflight); n != 0 {
		t.Fatalf("%d tokens still out", n)
	}
}

// TestRunTakesBackLeases: Run first ends the leases an earlier process of the node left (a
// kill -9), so their messages go at once rather than when the leases expire.
func TestRunTakesBackLeases(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: them}}})
	if err != nil {
		t.Fatal(err)
	}
	if qs, err := f.store.MessagesClaim(ctx, ClaimParams{Carrier: "c1", Now: f.clock(), Limit: 10, Owner: leasePrefix(f.svc.cfg.Node) + "old",
		Until: f.clock().Add(leaseTTL)}); err != nil || len(qs) != 1 {
		t.Fatalf("claim by the earlier process: %v %v", qs, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(rctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, _ := f.store.MessageGet(ctx, res[0].MessageID); m.Status == StatusSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message leased by the earlier process was not sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
