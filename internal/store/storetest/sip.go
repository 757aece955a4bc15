package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// SIP runs the SIP store conformance cases (routing, credentials, CDRs) against a fresh
// database from open.
func SIP(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Routing", func(t *testing.T) { sipRouting(t, open(t)) })
	t.Run("Credentials", func(t *testing.T) { sipCredentials(t, open(t)) })
	t.Run("CDRs", func(t *testing.T) { sipCDRs(t, open(t)) })
	t.Run("ConcurrentCDRs", func(t *testing.T) { sipConcurrentCDRs(t, open(t)) })
}

func sipRouting(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if _, ok, err := db.SIPRoutingGet(ctx); err != nil || ok {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	want := calls.Routing{
		Trunks: []calls.ACSTrunk{{FQDN: "a.carrier.example", Port: 5061}, {FQDN: "b.carrier.example", Port: 5060}},
		Routes: []calls.OutboundRoute{
			{Name: "us", Description: "NANP", NumberPattern: `^\+1\d{10}$`, Trunks: []string{"b.carrier.example", "a.carrier.example"}},
			{Name: "rest", NumberPattern: `.*`, Trunks: []string{"a.carrier.example"}},
			{Name: "none", NumberPattern: `x`},
		},
	}
	if err := db.SIPRoutingPut(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.SIPRoutingGet(ctx)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A replace drops what is gone; an empty configuration is still "set".
	if err := db.SIPRoutingPut(ctx, calls.Routing{}); err != nil {
		t.Fatal(err)
	}
	got, ok, err = db.SIPRoutingGet(ctx)
	if err != nil || !ok || len(got.Trunks)+len(got.Routes) != 0 {
		t.Fatalf("after clear: %+v %v %v", got, ok, err)
	}
}

func sipCredentials(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if _, err := db.SIPCredential(ctx, "acme"); !errors.Is(err, calls.ErrUnknownCredential) {
		t.Fatalf("unknown: %v", err)
	}
	c := calls.NewCredential("telgw", "acme", "s3cret", []string{"+14255550100", "+14255550101"})
	c.CreatedAt = time.UnixMilli(1_800_000_000_000).UTC()
	if err := db.SIPCredentialPut(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.SIPCredential(ctx, "acme")
	if err != nil || got.HA1MD5 != c.HA1MD5 || got.HA1SHA256 != c.HA1SHA256 || !slices.Equal(got.Numbers, c.Numbers) || !got.CreatedAt.Equal(c.CreatedAt) || got.Password != "" {
		t.Fatalf("got %+v, %v", got, err)
	}
	c2 := calls.NewCredential("telgw", "acme", "other", []string{"+14255550100"})
	c2.CreatedAt = c.CreatedAt
	if err := db.SIPCredentialPut(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if err := db.SIPCredentialPut(ctx, calls.NewCredential("telgw", "beta", "x", nil)); err != nil {
		t.Fatal(err)
	}
	list, err := db.SIPCredentialList(ctx)
	if err != nil || len(list) != 2 || list[0].Username != "acme" || list[0].HA1MD5 != c2.HA1MD5 || len(list[1].Numbers) != 0 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if err := db.SIPCredentialDelete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := db.SIPCredentialDelete(ctx, "acme"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func cdr(i int, at time.Time) calls.CDR {
	c := calls.CDR{CallID: fmt.Sprintf("call-%d", i), Direction: calls.Inbound, From: "+12125550199", To: "+14255550100",
		Trunk: "carrier1", Start: at, End: at.Add(5 * time.Second), Disposition: "busy", SIPCode: 486, Q850: 17, EndedBy: "callee"}
	if i%2 == 0 {
		// An answered call that was transferred: the caller, the transfer target, the transferor.
		c.Legs = []calls.Leg{
			{ID: "a", Kind: calls.LegCarrier, Participant: calls.Phone("+12125550199"), Trunk: "carrier1", State: calls.Ended},
			{ID: "t", Kind: calls.LegWebRTC, Participant: calls.User("8:acs:u"), State: calls.Ended},
			{ID: "b", Kind: calls.LegBot, Participant: calls.Participant{Kind: calls.App, ID: "app.example.com"}, State: calls.Ended, Transferred: true, Left: at.Add(3 * time.Second)},
		}
		c.Ringing, c.Answer = at.Add(time.Second), at.Add(2*time.Second)
		c.Disposition, c.SIPCode, c.Q850, c.EndedBy, c.To = "answered", 200, 16, "caller", "+14255550111"
		c.Verstat = "TN-Validation-Passed" // STIR/SHAKEN outcomes round-trip
	} else {
		c.Direction, c.Attest = calls.Outbound, "A"
	}
	return c
}

func sipCDRs(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	for i := range 5 {
		if err := db.CDRInsert(ctx, cdr(i, at.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.CDRList(ctx, calls.CDRListParams{Top: 10})
	if err != nil || len(all) != 5 || all[0].CallID != "call-4" || all[4].CallID != "call-0" {
		t.Fatalf("list %+v, %v", all, err)
	}
	if want := cdr(4, at.Add(4*time.Minute)); fmt.Sprint(all[0]) != fmt.Sprint(want) || all[0].Duration() != 3*time.Second {
		t.Fatalf("got %+v\nwant %+v", all[0], want)
	}
	if !all[1].Answer.IsZero() || !all[1].Ringing.IsZero() {
		t.Fatalf("unanswered call has times: %+v", all[1])
	}
	page, err := db.CDRList(ctx, calls.CDRListParams{Skip: 1, Top: 2})
	if err != nil || len(page) != 2 || page[0].CallID != "call-3" {
		t.Fatalf("page %+v, %v", page, err)
	}
	by, err := db.CDRList(ctx, calls.CDRListParams{Top: 10, Number: "+14255550111"})
	if err != nil || len(by) != 3 {
		t.Fatalf("by number %+v, %v", by, err)
	}
	since, err := db.CDRList(ctx, calls.CDRListParams{Top: 10, Since: at.Add(3 * time.Minute)})
	if err != nil || len(since) != 2 {
		t.Fatalf("since %+v, %v", since, err)
	}
}

// sipConcurrentCDRs: calls end concurrently on many goroutines; no record is lost.
func sipConcurrentCDRs(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() { errs <- db.CDRInsert(ctx, cdr(i, at)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.CDRList(ctx, calls.CDRListParams{Top: 100})
	if err != nil || len(all) != 40 {
		t.Fatalf("%d cdrs, %v", len(all), err)
	}
}
