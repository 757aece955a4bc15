package calls

import (
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestCallStates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewCall(t0, Leg{ID: "a@x", Kind: LegCarrier, Participant: Phone("+14255550100"), Trunk: "carrier1"})
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(c.ID) || c.CorrelationID != c.ID {
		t.Fatalf("ids %q %q", c.ID, c.CorrelationID)
	}
	if c.State() != Setup || c.Caller().State != Setup {
		t.Fatalf("new call in %v", c.State())
	}
	c.SetCallee(Leg{ID: "b1@x", Kind: LegEndpoint, Participant: Phone("+14255550101")})
	c.SetCallee(Leg{ID: "b2@x", Kind: LegEndpoint, Participant: Phone("+14255550101")}) // failover replaces
	if legs := c.Legs(); len(legs) != 2 || legs[1].ID != "b2@x" {
		t.Fatalf("legs %+v", legs)
	}
	c.Ring(t0.Add(time.Second))
	c.Ring(t0.Add(2 * time.Second)) // only the first alert counts
	if c.State() != Ringing || c.Legs()[1].State != Ringing {
		t.Fatalf("after ring: %v", c.State())
	}
	if !c.Answer(t0.Add(3*time.Second)) || c.Answer(t0.Add(4*time.Second)) {
		t.Fatal("Answer must succeed once")
	}
	c.Ring(t0.Add(5 * time.Second)) // no way back
	if c.State() != Answered {
		t.Fatalf("ring after answer moved the call to %v", c.State())
	}
	cdr := c.End(t0.Add(63*time.Second), Outcome{Disposition: DispositionAnswered, SIPCode: 200, Q850: 16, EndedBy: EndedBySystem})
	if c.State() != Ended || c.Caller().State != Ended || c.Answer(t0) {
		t.Fatalf("after end: %v", c.State())
	}
	if cdr.Ringing != t0.Add(time.Second) || cdr.Duration() != time.Minute {
		t.Fatalf("cdr %+v", cdr)
	}
	again := c.End(t0.Add(time.Hour), Outcome{Disposition: DispositionFailed, SIPCode: 500})
	if !reflect.DeepEqual(again, cdr) || !reflect.DeepEqual(c.CDR(), cdr) {
		t.Fatalf("a second End changed the CDR: %+v", again)
	}
}

func TestCallCDR(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		run     func(c *Call)
		o       Outcome
		want    CDR
		wantDur time.Duration
	}{
		{"answered, caller hung up", func(c *Call) {
			c.Ring(t0.Add(time.Second))
			c.Answer(t0.Add(2 * time.Second))
			c.SetEndedBy(EndedByCaller)
		}, Outcome{Disposition: DispositionAnswered, SIPCode: 200, Q850: 16, EndedBy: EndedBySystem},
			CDR{Ringing: t0.Add(time.Second), Answer: t0.Add(2 * time.Second), Disposition: "answered", SIPCode: 200, Q850: 16, EndedBy: "caller"}, 8 * time.Second},
		{"busy", func(c *Call) { c.Ring(t0.Add(time.Second)) },
			Outcome{Disposition: DispositionBusy, SIPCode: 486, Q850: 17, EndedBy: EndedByCallee},
			CDR{Ringing: t0.Add(time.Second), Disposition: "busy", SIPCode: 486, Q850: 17, EndedBy: "callee"}, 0},
		{"rejected before ringing", func(*Call) {},
			Outcome{Disposition: DispositionRejected, SIPCode: 404, Q850: 1, EndedBy: EndedBySystem},
			CDR{Disposition: "rejected", SIPCode: 404, Q850: 1, EndedBy: "system"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCall(t0, Leg{ID: "a@x", Kind: LegCarrier, Participant: Phone("+14255550100")})
			c.SetDirection(Inbound)
			c.SetFrom("+14255550100")
			c.SetTo("+14255550101")
			c.SetTrunk("carrier1")
			c.SetRoute(SIPRoute{URI: "sip:pbx@203.0.113.5"})
			if got := c.CDR(); got.CallID != "a@x" || got.From != "+14255550100" || !got.End.IsZero() {
				t.Fatalf("CDR in progress %+v", got)
			}
			tc.run(c)
			got := c.End(t0.Add(10*time.Second), tc.o)
			want := tc.want
			want.CallID, want.Direction, want.From, want.To, want.Trunk = "a@x", Inbound, "+14255550100", "+14255550101", "carrier1"
			want.Start, want.End = t0, t0.Add(10*time.Second)
			want.Legs = []Leg{{ID: "a@x", Kind: LegCarrier, Participant: Phone("+14255550100"), State: Ended}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("CDR\n got %+v\nwant %+v", got, want)
			}
			if got.Duration() != tc.wantDur {
				t.Fatalf("duration %v, want %v", got.Duration(), tc.wantDur)
			}
			if c.Route() != (SIPRoute{URI: "sip:pbx@203.0.113.5"}) {
				t.Fatalf("route %v", c.Route())
			}
		})
	}
}

func TestStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{Setup: "setup", Ringing: "ringing", Answered: "answered", Ended: "ended", State(9): "state(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

// A transfer replaces the transferor's leg and keeps it, marked, in the CDR; an app's leg
// shows only its callback URL's host.
func TestCallTransferLegs(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewCall(t0, Leg{ID: "a", Kind: LegCarrier, Participant: Phone("+14255550100"), Trunk: "carrier1"})
	c.SetTo("+14255550101")
	c.SetCallee(Leg{ID: "b", Kind: LegEndpoint, Participant: Phone("+14255550101")})
	c.Answer(t0.Add(time.Second))
	c.Transfer(1, Leg{ID: "t", Kind: LegCarrier, Participant: Phone("+12125550123"), Trunk: "carrier2"}, t0.Add(5*time.Second))
	cdr := c.End(t0.Add(9*time.Second), Outcome{Disposition: DispositionAnswered, SIPCode: 200})
	if len(cdr.Legs) != 3 || cdr.Legs[1].ID != "t" || cdr.Legs[2].ID != "b" || !cdr.Legs[2].Transferred || cdr.Legs[2].Left != t0.Add(5*time.Second) || cdr.Legs[1].Transferred {
		t.Fatalf("legs %+v", cdr.Legs)
	}
	if cdr.To != "+14255550101" {
		t.Fatalf("cdr %+v", cdr)
	}
	b := NewCall(t0, Leg{ID: "x", Kind: LegCarrier, Participant: Phone("+14255550100")})
	b.SetCallee(Leg{ID: "x", Kind: LegBot, Participant: Participant{Kind: App, ID: "https://app.example.com:8443/cb?secret=1"}})
	if l := b.CDR().Legs[1]; l.Participant.ID != "app.example.com:8443" || l.Kind != LegBot {
		t.Fatalf("bot leg %+v", l)
	}
}
