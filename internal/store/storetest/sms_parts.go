package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/store"
)

// SMSParts runs the durable reassembly (sms.PartStore) conformance cases against a fresh
// database from open.
func SMSParts(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Complete", func(t *testing.T) { partsComplete(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { partsKeys(t, open(t)) })
	t.Run("Timeout", func(t *testing.T) { partsTimeout(t, open(t)) })
	t.Run("LapsedClaim", func(t *testing.T) { partsLapsedClaim(t, open(t)) })
	t.Run("Release", func(t *testing.T) { partsRelease(t, open(t)) })
	t.Run("Invalid", func(t *testing.T) { partsInvalid(t, open(t)) })
	t.Run("ConcurrentReceivers", func(t *testing.T) { partsConcurrent(t, open(t)) })
	t.Run("ConcurrentSweepers", func(t *testing.T) { partsConcurrentSweep(t, open(t)) })
}

var partsT0 = time.UnixMilli(1_800_000_000_000).UTC()

func inKey(ref uint16, total int) sms.InboundKey {
	return sms.InboundKey{Carrier: "smsc1", From: "+14255550199", To: "+14255550100", Ref: ref, Total: total}
}

func inPart(k sms.InboundKey, seq int, data string, at time.Time) sms.InboundPart {
	return sms.InboundPart{InboundKey: k, Seq: seq, Data: []byte(data), ReceivedAt: at}
}

// addPart adds p with a claim lasting a minute, failing the test on error.
func addPart(t *testing.T, db *store.DB, p sms.InboundPart, token string) (sms.InboundClaim, bool) {
	t.Helper()
	c, ok, err := db.InboundPartAdd(context.Background(), sms.InboundPartAddParams{Part: p, Token: token, ClaimUntil: p.ReceivedAt.Add(time.Minute)})
	if err != nil {
		t.Fatalf("add %d/%d: %v", p.Seq, p.Total, err)
	}
	return c, ok
}

func sweep(t *testing.T, db *store.DB, token string, now, startedBefore time.Time) []sms.InboundClaim {
	t.Helper()
	cs, err := db.InboundPartsClaim(context.Background(), sms.InboundClaimParams{Carrier: "smsc1", Now: now,
		StartedBefore: startedBefore, Token: token, ClaimUntil: now.Add(time.Minute)})
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return cs
}

func partsText(c sms.InboundClaim) string {
	s := ""
	for _, p := range c.Parts {
		s += fmt.Sprintf("%d:%s ", p.Seq, p.Data)
	}
	return s
}

func partsComplete(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := inKey(7, 3)
	// Out of order, with a repeated part replacing the earlier copy.
	for i, p := range []sms.InboundPart{inPart(k, 3, "c", partsT0), inPart(k, 1, "x", partsT0.Add(time.Second)),
		inPart(k, 1, "a", partsT0.Add(2*time.Second))} {
		if _, ok := addPart(t, db, p, fmt.Sprint("r", i)); ok {
			t.Fatalf("part %d completed a message of 3 with 2 parts", p.Seq)
		}
	}
	c, ok := addPart(t, db, inPart(k, 2, "b", partsT0.Add(3*time.Second)), "last")
	if !ok {
		t.Fatal("the last part did not complete the message")
	}
	if c.Key != k || c.Token != "last" || partsText(c) != "1:a 2:b 3:c " {
		t.Fatalf("claim %+v (%s)", c.Key, partsText(c))
	}
	if m := c.Message(); m.Text != "abc" || m.Missing != 0 || m.Segments != 3 || m.From != k.From || m.To != k.To {
		t.Fatalf("joined %+v", m)
	}
	if !c.Parts[0].ReceivedAt.Equal(partsT0.Add(2*time.Second)) || c.Parts[0].Carrier != "smsc1" {
		t.Fatalf("part 1 %+v", c.Parts[0])
	}
	// The SMSC repeats a part while the message is being delivered: stored, not claimed twice.
	if _, ok := addPart(t, db, inPart(k, 2, "b", partsT0.Add(4*time.Second)), "dup"); ok {
		t.Fatal("a repeated part claimed a message already claimed")
	}
	if cs := sweep(t, db, "sweeper", partsT0.Add(5*time.Second), partsT0.Add(time.Hour)); len(cs) != 0 {
		t.Fatalf("sweeper took a held claim: %+v", cs)
	}
	if err := db.InboundPartsDone(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Done again (a retry) is harmless; nothing is left to sweep.
	if err := db.InboundPartsDone(ctx, c); err != nil {
		t.Fatal(err)
	}
	if cs := sweep(t, db, "sweeper", partsT0.Add(time.Hour), partsT0.Add(time.Hour)); len(cs) != 0 {
		t.Fatalf("parts left after done: %+v", cs)
	}
	// The reference may be reused by a later message.
	if _, ok := addPart(t, db, inPart(k, 1, "again", partsT0.Add(time.Hour)), "n1"); ok {
		t.Fatal("a new message's first part completed it")
	}
}

func partsKeys(t *testing.T, db *store.DB) {
	base := inKey(9, 2)
	k16 := base
	k16.Ref16 = true
	kTotal := base
	kTotal.Total = 3
	kFrom := base
	kFrom.From = "+14255550198"
	kTo := base
	kTo.To = "+14255550101"
	kCarrier := base
	kCarrier.Carrier = "smsc2"
	others := []sms.InboundKey{k16, kTotal, kFrom, kTo, kCarrier}
	addPart(t, db, inPart(base, 1, "base", partsT0), "t")
	for i, k := range others {
		if _, ok := addPart(t, db, inPart(k, 2, fmt.Sprint("other", i), partsT0), "t"); ok {
			t.Fatalf("part of %+v joined a message with another key", k)
		}
	}
	c, ok := addPart(t, db, inPart(base, 2, "2", partsT0), "t")
	if !ok || partsText(c) != "1:base 2:2 " {
		t.Fatalf("base message: %v %s", ok, partsText(c))
	}
}

func partsTimeout(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := inKey(1, 3)
	addPart(t, db, inPart(k, 1, "one", partsT0), "r")
	addPart(t, db, inPart(k, 2, "two", partsT0.Add(time.Second)), "r")
	// The timeout counts from the first part.
	if cs := sweep(t, db, "s1", partsT0.Add(time.Second), partsT0); len(cs) != 0 {
		t.Fatalf("claimed before the timeout: %+v", cs)
	}
	cs := sweep(t, db, "s1", partsT0.Add(5*time.Minute), partsT0.Add(time.Millisecond))
	if len(cs) != 1 || cs[0].Token != "s1" || partsText(cs[0]) != "1:one 2:two " {
		t.Fatalf("sweep: %+v", cs)
	}
	if m := cs[0].Message(); m.Text != "onetwo" || m.Missing != 1 || m.Segments != 3 {
		t.Fatalf("partial %+v", m)
	}
	// Claimed: another sweeper skips it until the claim lapses.
	if again := sweep(t, db, "s2", partsT0.Add(5*time.Minute+time.Second), partsT0.Add(time.Hour)); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	// The missing part arrives after the sweeper claimed the message: it is kept, and
	// survives the claim's done as a message of its own.
	if _, ok := addPart(t, db, inPart(k, 3, "three", partsT0.Add(5*time.Minute+2*time.Second)), "late"); ok {
		t.Fatal("a late part claimed a message the sweeper holds")
	}
	if err := db.InboundPartsDone(ctx, cs[0]); err != nil {
		t.Fatal(err)
	}
	late := partsT0.Add(5*time.Minute + 2*time.Second)
	if again := sweep(t, db, "s3", late.Add(time.Second), late); len(again) != 0 {
		t.Fatalf("the late part's timeout did not restart at its arrival: %+v", again)
	}
	again := sweep(t, db, "s3", late.Add(5*time.Minute), late.Add(time.Millisecond))
	if len(again) != 1 || partsText(again[0]) != "3:three " {
		t.Fatalf("late part: %+v", again)
	}
	if err := db.InboundPartsDone(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	if left := sweep(t, db, "s4", partsT0.Add(time.Hour), partsT0.Add(time.Hour)); len(left) != 0 {
		t.Fatalf("left: %+v", left)
	}
}

func partsLapsedClaim(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := inKey(2, 2)
	addPart(t, db, inPart(k, 1, "a", partsT0), "r1")
	first, ok := addPart(t, db, inPart(k, 2, "b", partsT0), "dead") // claim lasts until t0+1m
	if !ok {
		t.Fatal("not completed")
	}
	// The claimer dies. Before the claim lapses nobody takes the message over.
	if cs := sweep(t, db, "s1", partsT0.Add(30*time.Second), partsT0); len(cs) != 0 {
		t.Fatalf("took over a live claim: %+v", cs)
	}
	// A repeated last part (the SMSC never got its response) is stored but not claimed.
	if _, ok := addPart(t, db, inPart(k, 2, "b", partsT0.Add(40*time.Second)), "r2"); ok {
		t.Fatal("repeated part claimed a live claim")
	}
	// After the lapse a sweeper takes the complete message over at once.
	cs := sweep(t, db, "s2", partsT0.Add(2*time.Minute), partsT0)
	if len(cs) != 1 || cs[0].Token != "s2" || partsText(cs[0]) != "1:a 2:b " {
		t.Fatalf("takeover: %+v", cs)
	}
	// The dead claimer's done, should it come back, deletes nothing.
	if err := db.InboundPartsDone(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := db.InboundPartsRelease(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := db.InboundPartsDone(ctx, cs[0]); err != nil {
		t.Fatal(err)
	}
	if left := sweep(t, db, "s3", partsT0.Add(time.Hour), partsT0.Add(time.Hour)); len(left) != 0 {
		t.Fatalf("left: %+v", left)
	}
	// A lapsed claim is also taken over by the receiver of a repeated part.
	k2 := inKey(3, 2)
	addPart(t, db, inPart(k2, 1, "a", partsT0), "r")
	if _, ok := addPart(t, db, inPart(k2, 2, "b", partsT0), "dead"); !ok {
		t.Fatal("not completed")
	}
	c, ok := addPart(t, db, inPart(k2, 2, "b", partsT0.Add(2*time.Minute)), "live")
	if !ok || c.Token != "live" || partsText(c) != "1:a 2:b " {
		t.Fatalf("repeated part after the lapse: %v %+v", ok, c)
	}
}

func partsRelease(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := inKey(4, 2)
	addPart(t, db, inPart(k, 1, "a", partsT0), "r")
	c, ok := addPart(t, db, inPart(k, 2, "b", partsT0), "r")
	if !ok {
		t.Fatal("not completed")
	}
	// Delivery failed: the claim is released and the SMSC's retry of the part claims again.
	if err := db.InboundPartsRelease(ctx, c); err != nil {
		t.Fatal(err)
	}
	c2, ok := addPart(t, db, inPart(k, 2, "b", partsT0.Add(time.Second)), "retry")
	if !ok || c2.Token != "retry" || partsText(c2) != "1:a 2:b " {
		t.Fatalf("retry after release: %v %+v", ok, c2)
	}
	// Released again with no retry from the SMSC: the sweeper claims the complete message.
	if err := db.InboundPartsRelease(ctx, c2); err != nil {
		t.Fatal(err)
	}
	cs := sweep(t, db, "s", partsT0.Add(2*time.Second), partsT0)
	if len(cs) != 1 || partsText(cs[0]) != "1:a 2:b " {
		t.Fatalf("sweep after release: %+v", cs)
	}
}

func partsInvalid(t *testing.T, db *store.DB) {
	ctx := context.Background()
	for _, p := range []sms.InboundPart{inPart(inKey(5, 1), 1, "x", partsT0), inPart(inKey(5, 3), 0, "x", partsT0),
		inPart(inKey(5, 3), 4, "x", partsT0), inPart(inKey(5, 256), 1, "x", partsT0)} {
		if _, _, err := db.InboundPartAdd(ctx, sms.InboundPartAddParams{Part: p, Token: "t", ClaimUntil: partsT0}); err == nil {
			t.Fatalf("part %d/%d accepted", p.Seq, p.Total)
		}
	}
	if _, _, err := db.InboundPartAdd(ctx, sms.InboundPartAddParams{Part: inPart(inKey(5, 2), 1, "", partsT0)}); err == nil {
		t.Fatal("part without a claim token accepted")
	}
	// An empty part is a part.
	addPart(t, db, inPart(inKey(6, 2), 1, "", partsT0), "t")
	c, ok := addPart(t, db, inPart(inKey(6, 2), 2, "x", partsT0), "t")
	if !ok || partsText(c) != "1: 2:x " {
		t.Fatalf("empty part: %v %+v", ok, c)
	}
}

// partsConcurrent: every part of many messages is added by its own receiver, each twice (the
// SMSC repeating a part on another bind), all at once on one database: each message is
// claimed exactly once, with all its parts.
func partsConcurrent(t *testing.T, db *store.DB) {
	const messages, total, copies = 20, 6, 2
	var wg sync.WaitGroup
	var mu sync.Mutex
	claims := map[uint16][]sms.InboundClaim{}
	errs := make(chan error, messages*total*copies)
	start := make(chan struct{})
	for m := range messages {
		k := inKey(uint16(100+m), total)
		for seq := 1; seq <= total; seq++ {
			for cp := range copies {
				wg.Go(func() {
					<-start
					p := inPart(k, seq, fmt.Sprint(seq), partsT0)
					c, ok, err := db.InboundPartAdd(context.Background(), sms.InboundPartAddParams{Part: p,
						Token: fmt.Sprintf("m%d-s%d-c%d", m, seq, cp), ClaimUntil: partsT0.Add(time.Minute)})
					if err != nil {
						errs <- err
						return
					}
					if ok {
						mu.Lock()
						claims[k.Ref] = append(claims[k.Ref], c)
						mu.Unlock()
					}
				})
			}
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for m := range messages {
		cs := claims[uint16(100+m)]
		if len(cs) != 1 {
			t.Fatalf("message %d claimed %d times", m, len(cs))
		}
		if got := partsText(cs[0]); got != "1:1 2:2 3:3 4:4 5:5 6:6 " {
			t.Fatalf("message %d claimed with %s", m, got)
		}
	}
}

// partsConcurrentSweep: sweepers on several nodes claim timed-out messages at once; each
// message is claimed by one of them.
func partsConcurrentSweep(t *testing.T, db *store.DB) {
	const messages = 30
	for m := range messages {
		addPart(t, db, inPart(inKey(uint16(200+m), 3), 1, "x", partsT0), "r")
	}
	var wg sync.WaitGroup
	var claimed atomic.Int64
	seen := sync.Map{}
	errs := make(chan error, 8)
	for s := range 8 {
		wg.Go(func() {
			for {
				cs, err := db.InboundPartsClaim(context.Background(), sms.InboundClaimParams{Carrier: "smsc1",
					Now: partsT0.Add(time.Hour), StartedBefore: partsT0.Add(time.Minute), Token: fmt.Sprint("s", s),
					ClaimUntil: partsT0.Add(2 * time.Hour), Limit: 3})
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					if _, dup := seen.LoadOrStore(c.Key.Ref, c.Token); dup {
						errs <- fmt.Errorf("message %d claimed twice", c.Key.Ref)
						return
					}
					claimed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if claimed.Load() != messages {
		t.Fatalf("%d of %d messages claimed", claimed.Load(), messages)
	}
}
