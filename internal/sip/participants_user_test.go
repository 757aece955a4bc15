package sip_test

import (
	"context"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
)

// TestBotAddAndTransferToUser: an app answers a carrier's call and adds a communication user:
// her device rings showing the bot's number, answers, and the caller's audio reaches her (the
// device echoes it back through telgw); the app removes her, then transfers the caller to her:
// CallTransferAccepted, the app's connection ends and the caller talks to her device until
// the caller hangs up.
func TestBotAddAndTransferToUser(t *testing.T) {
	ue, auto, pub, cbs := userBotEnv(t, envOpts{})
	ctx := context.Background()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	connc := answerNext(t, auto, pub)
	caller := ue.caller(t, 8*time.Second)
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)

	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.User(alice), OperationParams: calls.OperationParams{OperationContext: "add-user"}}); err != nil {
		t.Fatal(err)
	}
	ds := <-d.answer
	if f := ds.InviteRequest.From(); f.Address.User != ourNumber {
		t.Errorf("the user sees caller %q, want the bot's number %s", f.Address.User, ourNumber)
	}
	ev := cbs.waitEvent(t, "AddParticipantSucceeded", 0)
	if rawID(ev.Data, "participant") != calls.User(alice).RawID() || ev.Data["operationContext"] != "add-user" {
		t.Fatalf("AddParticipantSucceeded %v", ev.Data)
	}
	eventually(t, "the caller's audio at her device", func() bool { return d.echoed.Load() >= 25 })
	if ps, err := auto.Participants(ctx, id); err != nil || len(ps) != 2 {
		t.Fatalf("participants %+v %v", ps, err)
	}
	if err := auto.RemoveParticipant(ctx, id, calls.User(alice), calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "RemoveParticipantSucceeded", 0)

	before := d.echoed.Load()
	if err := auto.TransferToParticipant(ctx, id, calls.TransferParams{Target: calls.User(alice)}); err != nil {
		t.Fatal(err)
	}
	<-d.answer
	cbs.waitEvent(t, "CallTransferAccepted", 0)
	cbs.waitEvent(t, "CallDisconnected", 0)
	eventually(t, "the caller's audio at her device after the transfer", func() bool { return d.echoed.Load() >= before+25 })
	if _, err := auto.Connection(ctx, id); err == nil {
		t.Error("the app's connection outlived the transfer")
	}
	caller.wait(t, 30*time.Second)
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}
