package calls

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// recCallbacks records callbacks with their URI and data as JSON.
type recCallbacks struct {
	mu  sync.Mutex
	evs []recEvent
}

type recEvent struct {
	uri, typ string
	data     map[string]any
}

func (r *recCallbacks) Send(_ context.Context, uri string, evs ...CallbackEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		b, _ := json.Marshal(e.Data)
		var d map[string]any
		_ = json.Unmarshal(b, &d)
		r.evs = append(r.evs, recEvent{uri: uri, typ: e.Type[len("Microsoft.Communication."):], data: d})
	}
	return nil
}

func (r *recCallbacks) last() recEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evs) == 0 {
		return recEvent{}
	}
	return r.evs[len(r.evs)-1]
}

// recControl is the transport: it records what it is asked and lets the test report.
type recControl struct {
	invites   chan *Invitation
	transfers chan *Transfer
	removed   chan Participant
}

func (c *recControl) Invite(inv *Invitation)                        { c.invites <- inv }
func (c *recControl) Transfer(tr *Transfer)                         { c.transfers <- tr }
func (c *recControl) Mute(Participant) error                        { return nil }
func (c *recControl) Remove(_ context.Context, p Participant) error { c.removed <- p; return nil }

type ownNumber string

func (o ownNumber) CallRoute(_ context.Context, e164 string) (Route, error) {
	if e164 == string(o) {
		return BotRoute{URL: "http://app.example/cb"}, nil
	}
	return nil, ErrUnknownNumber
}

func TestParticipantOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cbs := &recCallbacks{}
	a, err := NewAutomation(AutomationConfig{Callbacks: cbs, Numbers: ownNumber("+14155550100"), MaxParticipants: 2})
	if err != nil {
		t.Fatal(err)
	}
	call := NewCall(time.Now(), Leg{Kind: LegCarrier, Participant: Phone("+12125550199")})
	call.SetDirection(Inbound)
	call.SetFrom("+12125550199")
	call.SetTo("+14155550100")
	conn := &Connection{a: a, ID: "c1", call: call, callbackURI: "http://app.example/cb", state: StateConnected,
		hangup: make(chan struct{}), done: make(chan struct{})}
	a.conns[conn.ID] = conn
	kind := func(err error) problem.Kind { return problem.KindOf(err) }
	add := func(n string) (string, error) {
		return a.AddParticipant(ctx, "c1", AddParticipantParams{Target: Phone(n), OperationParams: OperationParams{OperationContext: "add " + n}})
	}

	if _, err := add("+12025550142"); kind(err) != problem.KindConflict {
		t.Fatalf("add before the call is connected: %v", err)
	}
	ctl := &recControl{invites: make(chan *Invitation, 4), transfers: make(chan *Transfer, 4), removed: make(chan Participant, 4)}
	conn.Attach(ctl, Phone("+12125550199"))
	if _, err := add("+12125550199"); kind(err) != problem.KindInvalid {
		t.Fatalf("add the caller again: %v", err)
	}
	if _, err := a.AddParticipant(ctx, "nope", AddParticipantParams{Target: Phone("+12025550142")}); kind(err) != problem.KindNotFound {
		t.Fatalf("unknown connection: %v", err)
	}
	id, err := add("+12025550142")
	if err != nil {
		t.Fatal(err)
	}
	inv := <-ctl.invites
	if inv.ID != id || inv.CallerID != "+14155550100" {
		t.Fatalf("invitation %+v", inv)
	}
	// The ringing participant counts: no third person (calls.maxParticipants is 2 here), no
	// transfer meanwhile.
	if _, err := add("+12025550143"); kind(err) != problem.KindInvalid || !strings.Contains(err.Error(), "participantToAdd") {
		t.Fatalf("third person: %v", err)
	}
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143")}); kind(err) != problem.KindConflict {
		t.Fatalf("transfer while adding: %v", err)
	}
	inv.Answered()
	if ev := cbs.last(); ev.typ != "ParticipantsUpdated" || ev.data["sequenceNumber"] != float64(1) {
		t.Fatalf("after answer: %+v", ev)
	}
	// Cancelling an answered invitation fails through the callback, to the request's own URI.
	if err := a.CancelAddParticipant(ctx, "c1", id, OperationParams{OperationContext: "late", OperationCallbackURI: "http://app.example/op"}); err != nil {
		t.Fatal(err)
	}
	if ev := cbs.last(); ev.typ != "CancelAddParticipantFailed" || ev.uri != "http://app.example/op" || ev.data["invitationId"] != id || ev.data["operationContext"] != "late" {
		t.Fatalf("late cancel: %+v", ev)
	}
	inv.Failed(ResultInformation{Code: 500}) // a late report changes nothing
	if ps := conn.Participants(); len(ps) != 2 {
		t.Fatalf("participants %+v", ps)
	}
	if err := a.Mute(ctx, "c1", []Participant{Phone("+12025550100")}); kind(err) != problem.KindNotFound {
		t.Fatalf("mute a stranger: %v", err)
	}
	if err := a.Mute(ctx, "c1", []Participant{Phone("+12125550199")}); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Participant(ctx, "c1", "4:+12125550199"); err != nil || !p.Muted {
		t.Fatalf("muted caller: %+v %v", p, err)
	}
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143")}); kind(err) != problem.KindInvalid {
		t.Fatalf("transfer with two people: %v", err)
	}
	if err := a.RemoveParticipant(ctx, "c1", Phone("+12025550142"), OperationParams{}); err != nil {
		t.Fatal(err)
	}
	if p := <-ctl.removed; p != Phone("+12025550142") {
		t.Fatalf("removed %v", p)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cbs.last().typ != "ParticipantsUpdated" || cbs.last().data["sequenceNumber"] != float64(3) {
		if time.Now().After(deadline) {
			t.Fatalf("after remove: %+v", cbs.last())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Transfers: the caller id must be the resource's; the transferee the call's person.
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143"), SourceCallerID: "+12125550100"}); kind(err) != problem.KindForbidden {
		t.Fatalf("foreign caller id: %v", err)
	}
	stranger := Phone("+12025550100")
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143"), Transferee: &stranger}); kind(err) != problem.KindInvalid {
		t.Fatalf("transferee not in the call: %v", err)
	}
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: User("")}); kind(err) != problem.KindInvalid {
		t.Fatalf("transfer to a user without an id: %v", err)
	}
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143"), OperationParams: OperationParams{OperationContext: "t"}}); err != nil {
		t.Fatal(err)
	}
	tr := <-ctl.transfers
	if err := a.TransferToParticipant(ctx, "c1", TransferParams{Target: Phone("+12025550143")}); kind(err) != problem.KindConflict {
		t.Fatalf("second transfer: %v", err)
	}
	tr.Failed(ResultInformation{Code: 404, Message: "No route."})
	if ev := cbs.last(); ev.typ != "CallTransferFailed" || ev.data["operationContext"] != "t" || ev.data["transferee"] != nil {
		t.Fatalf("transfer failed: %+v", ev)
	}
	tr.Accepted() // a late report changes nothing
	if ev := cbs.last(); ev.typ != "CallTransferFailed" {
		t.Fatalf("late accept: %+v", ev)
	}
	if ps := conn.Participants(); len(ps) != 1 {
		t.Fatalf("participants after a failed transfer %+v", ps)
	}
}
