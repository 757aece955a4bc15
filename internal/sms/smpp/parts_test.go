package smpp

import (
	"context"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// moPart is a deliver_sm with an 8-bit reference UDH (TS 23.040 §9.2.3.24.1) and GSM-7 text.
func moPart(ref, total, seq int, text string) map[string]any {
	udh := []byte{5, 0, 3, byte(ref), byte(total), byte(seq)}
	hex := ""
	for _, b := range append(udh, []byte(text)...) {
		hex += string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
	}
	return map[string]any{"cmd": "mo", "from": "14255550199", "to": "14255550100", "hex": hex, "esmClass": 0x40}
}

func expectInbound(t *testing.T, rec *recorder, text string, segs, missing int, timeout time.Duration) {
	t.Helper()
	select {
	case m := <-rec.inbound:
		if m.Text != text || m.Segments != segs || m.Missing != missing || m.From != "+14255550199" || m.To != "+14255550100" {
			t.Fatalf("inbound %+v, want %q in %d, %d missing", m, text, segs, missing)
		}
	case <-time.After(timeout):
		t.Fatalf("no inbound %q", text)
	}
}

func expectNoInbound(t *testing.T, rec *recorder, d time.Duration) {
	t.Helper()
	select {
	case m := <-rec.inbound:
		t.Fatalf("unexpected inbound %+v", m)
	case <-time.After(d):
	}
}

// waitResp waits for the SMSC to see the n-th deliver_sm_resp and returns its status.
func waitResp(t *testing.T, s *smsctest.SMSC) float64 {
	t.Helper()
	return s.Wait("deliver_sm_resp", nil, 5*time.Second)["status"].(float64)
}

// TestDurableReassembly: with a part store, parts acknowledged by one carrier are joined by
// another carrier on the same store (a restarted or second node), exactly once.
func TestDurableReassembly(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		t.Parallel()
		db := open(t)
		s := smsctest.Start(t, "../../../test/peers", nil)
		rec1 := newRecorder()
		c1 := startCarrierWithParts(t, s, rec1, db, nil)
		waitBound(t, c1.Carrier, 1)
		s.Send(moPart(0x21, 3, 1, "one "))
		if st := waitResp(t, s); st != 0 {
			t.Fatalf("deliver_sm_resp status %v", st)
		}
		// The parts' source of truth is the store, not c1's memory.
		if c1.reasm.Pending() != 0 {
			t.Fatal("the part waits in memory")
		}
		c1.stop()
		rec2 := newRecorder()
		c2 := startCarrierWithParts(t, s, rec2, db, nil)
		waitBound(t, c2.Carrier, 1)
		s.Send(moPart(0x21, 3, 3, "three"))
		s.Send(moPart(0x21, 3, 2, "two "))
		expectInbound(t, rec2, "one two three", 3, 0, 5*time.Second)
		for range 2 {
			if st := waitResp(t, s); st != 0 {
				t.Fatalf("deliver_sm_resp status %v", st)
			}
		}
		expectNoInbound(t, rec1, 0)
		expectNoInbound(t, rec2, 300*time.Millisecond)
	})
}

// TestDurableReassemblyTimeout: parts of a message that never completes are delivered as a
// partial message by the sweeper once the reassembly timeout passed.
func TestDurableReassemblyTimeout(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	s := smsctest.Start(t, "../../../test/peers", nil)
	rec := newRecorder()
	c := startCarrierWithParts(t, s, rec, db, func(cfg *Config) { cfg.ReassemblyTimeout = 400 * time.Millisecond })
	waitBound(t, c.Carrier, 1)
	s.Send(moPart(0x22, 3, 1, "first "))
	s.Send(moPart(0x22, 3, 3, "third"))
	expectInbound(t, rec, "first third", 3, 1, 5*time.Second)
	expectNoInbound(t, rec, 500*time.Millisecond)
}

// TestDurableReassemblyHandlerFailure: when the completed message cannot be recorded the last
// part is answered ESME_RX_T_APPN and nothing is lost: the SMSC's retry delivers it once.
func TestDurableReassemblyHandlerFailure(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	s := smsctest.Start(t, "../../../test/peers", nil)
	rec := newRecorder()
	c := startCarrierWithParts(t, s, rec, db, nil)
	waitBound(t, c.Carrier, 1)
	s.Send(moPart(0x23, 2, 1, "hello "))
	if st := waitResp(t, s); st != 0 {
		t.Fatalf("part 1: status %v", st)
	}
	rec.mu.Lock()
	rec.fail = true
	rec.mu.Unlock()
	s.Send(moPart(0x23, 2, 2, "world"))
	if st := waitResp(t, s); st != float64(statusRxTAppn) {
		t.Fatalf("part 2 with the handler down: status %v", st)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	s.Send(moPart(0x23, 2, 2, "world"))
	if st := waitResp(t, s); st != 0 {
		t.Fatalf("part 2 retried: status %v", st)
	}
	expectInbound(t, rec, "hello world", 2, 0, 5*time.Second)
	expectNoInbound(t, rec, 300*time.Millisecond)
}

// stoppableCarrier is a running carrier the test may stop early.
type stoppableCarrier struct {
	*Carrier
	stop func()
}

func startCarrierWithParts(t *testing.T, s *smsctest.SMSC, h sms.CarrierHandler, db *store.DB, mod func(*Config)) stoppableCarrier {
	t.Helper()
	cfg := Config{Name: "smsc1", Address: s.Addr(), SystemID: "telgw", Password: "secret", SystemType: "telgw",
		Parts: db, Logger: testLogger(t), RebindMin: 50 * time.Millisecond, RebindMax: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, h) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stoppableCarrier{Carrier: c, stop: stop}
}
