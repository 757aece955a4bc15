package sip

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
)

// sinkCDRs keeps the CDRs a call writes.
type sinkCDRs []CDR

func (s *sinkCDRs) CDRInsert(_ context.Context, c CDR) error {
	*s = append(*s, c)
	return nil
}

// TestFinishWritesTheModelsCDR: a call's CDR is the one its calls.Call derives, with who ended
// it taken from the call when it recorded that and from the final status otherwise.
func TestFinishWritesTheModelsCDR(t *testing.T) {
	t.Parallel()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	withReason := sip.NewResponse(503, "Service Unavailable")
	withReason.AppendHeader(sip.NewHeader("Reason", "Q.850;cause=41"))
	for _, tc := range []struct {
		name     string
		endedBy  string // recorded by the call before finish
		answered bool
		code     int
		res      *sip.Response
		want     CDR
	}{
		{"answered, caller hung up", calls.EndedByCaller, true, 200, nil, CDR{Disposition: "answered", SIPCode: 200, Q850: 16, EndedBy: "caller"}},
		{"caller cancelled", "", false, 487, nil, CDR{Disposition: "cancelled", SIPCode: 487, Q850: 16, EndedBy: "caller"}},
		{"callee busy", "", false, 486, sip.NewResponse(486, "Busy Here"), CDR{Disposition: "busy", SIPCode: 486, Q850: 17, EndedBy: "callee"}},
		{"callee's Reason", "", false, 503, withReason, CDR{Disposition: "failed", SIPCode: 503, Q850: 41, EndedBy: "callee"}},
		{"refused by telgw", "", false, 404, nil, CDR{Disposition: "rejected", SIPCode: 404, Q850: 1, EndedBy: "system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sink sinkCDRs
			env := &callEnv{log: slog.New(slog.DiscardHandler), m: m, cdrs: &sink, table: newCallTable()}
			start := time.Now().Add(-time.Minute)
			c := &call{env: env, id: "a@192.0.2.1", cc: calls.NewCall(start, calls.Leg{ID: "a@192.0.2.1", Kind: calls.LegCarrier, Participant: calls.Phone("+14255550100")})}
			c.cc.SetDirection(Inbound)
			c.cc.SetFrom("+14255550100")
			c.cc.SetTo("+14255550101")
			c.cc.SetTrunk("carrier1")
			c.cc.SetCallee(calls.Leg{ID: "b@telgw", Kind: calls.LegEndpoint, Participant: calls.Phone("+14255550101")})
			if tc.answered {
				c.cc.Answer(start.Add(time.Second))
			}
			if tc.endedBy != "" {
				c.cc.SetEndedBy(tc.endedBy)
			}
			c.finish(tc.code, tc.res)
			if len(sink) != 1 {
				t.Fatalf("%d CDRs written", len(sink))
			}
			got, want := sink[0], tc.want
			want.CallID, want.Direction, want.From, want.To, want.Trunk, want.Start = "a@192.0.2.1", Inbound, "+14255550100", "+14255550101", "carrier1", start
			if tc.answered {
				want.Answer = start.Add(time.Second)
			}
			want.End = got.End
			if len(got.Legs) != 2 || got.Legs[1].Participant.ID != "+14255550101" {
				t.Fatalf("CDR legs %+v", got.Legs)
			}
			want.Legs = got.Legs
			if !reflect.DeepEqual(got, want) || got.End.Before(start) {
				t.Fatalf("CDR\n got %+v\nwant %+v", got, want)
			}
			if c.cc.State() != calls.Ended {
				t.Fatalf("call left in %v", c.cc.State())
			}
			for _, l := range c.cc.Legs() {
				if l.State != calls.Ended {
					t.Fatalf("leg %s left in %v", l.ID, l.State)
				}
			}
		})
	}
}
