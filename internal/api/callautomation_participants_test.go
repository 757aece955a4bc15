package api

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/calls"
)

// fakeControl is the SIP edge's hold on a connected call (internal/sip runs the real one with
// SIPp): +12025550142 answers at once, +12025550143 rings until cancelled, other numbers have
// no route.
type fakeControl struct {
	conn *calls.Connection
	wg   sync.WaitGroup
}

func (f *fakeControl) Invite(inv *calls.Invitation) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		switch inv.Target.ID {
		case "+12025550142":
			inv.Answered()
		case "+12025550143":
			select {
			case <-inv.Cancelled():
			case <-time.After(10 * time.Second):
			}
			inv.Failed(calls.ResultInformation{Code: 487, Message: "The invitation was cancelled."})
		default:
			inv.Failed(calls.ResultInformation{Code: 404, Message: "No route reaches " + inv.Target.ID + "."})
		}
	}()
}

func (f *fakeControl) Remove(context.Context, calls.Participant) error { return nil }
func (f *fakeControl) Mute(calls.Participant) error                    { return nil }

func (f *fakeControl) Transfer(tr *calls.Transfer) {
	if tr.Target.ID != "+12025550142" {
		tr.Failed(calls.ResultInformation{Code: 404, Message: "No route."})
		return
	}
	tr.Accepted()
	f.conn.Disconnected(calls.ResultInformation{Code: 200, Message: "The call was transferred."})
}

func TestCallAutomationParticipants(t *testing.T) {
	t.Parallel()
	// calls.maxParticipants 2: a third person is refused (400 naming participantToAdd).
	a, pub, cbs, srv, reg := automationServer(t, func(c *calls.AutomationConfig) { c.MaxParticipants = 2 })
	// A line whose answer attaches the fake control, as the SIP edge's holdBot does.
	c := calls.NewCall(time.Now(), calls.Leg{ID: uuid.NewString(), Kind: calls.LegCarrier, Participant: calls.Phone("+12125550199")})
	c.SetFrom("+12125550199")
	c.SetTo("+14155550100")
	c.SetDirection(calls.Inbound)
	in, err := a.Offer(context.Background(), calls.OfferParams{Call: c, Route: calls.BotRoute{URL: "http://app.example/cb"}, Expires: time.Now().Add(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ic := <-pub.ch
	ctl := &fakeControl{}
	go func() {
		d := <-in.Decisions()
		ctl.conn = d.Conn
		d.Conn.Attach(ctl, calls.Phone("+12125550199"))
		d.Done(nil)
		d.Conn.Connected()
	}()
	t.Cleanup(func() { ctl.wg.Wait(); in.Close() })
	var conn callConnectionJSON
	if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, `{"incomingCallContext":"`+ic.IncomingCallContext+`","callbackUri":"https://app.example/cb"}`, true, &conn); code != 200 {
		t.Fatalf("answer: %d", code)
	}
	base := "/calling/callConnections/" + conn.CallConnectionID
	list := func() []callParticipantJSON {
		var page struct {
			Value    []callParticipantJSON `json:"value"`
			NextLink string                `json:"nextLink"`
		}
		if code := call(t, srv, "GET", base+"/participants"+caVersion, "", true, &page); code != 200 || page.NextLink != "" {
			t.Fatalf("list: %d %+v", code, page)
		}
		return page.Value
	}
	if ps := list(); len(ps) != 1 || ps[0].Identifier.RawID != "4:+12125550199" || ps[0].Identifier.PhoneNumber.Value != "+12125550199" {
		t.Fatalf("participants %+v", ps)
	}
	var add struct {
		Participant      callParticipantJSON `json:"participant"`
		InvitationID     string              `json:"invitationId"`
		OperationContext string              `json:"operationContext"`
	}
	body := `{"participantToAdd":{"kind":"phoneNumber","phoneNumber":{"value":"+12025550142"}},"sourceDisplayName":"Bot","operationContext":"a1","invitationTimeoutInSeconds":30,"customCallingContext":{"sipHeaders":{}}}`
	if code := call(t, srv, "POST", base+"/participants:add?api-version=2026-03-12", body, true, &add); code != 202 || add.InvitationID == "" || add.OperationContext != "a1" ||
		add.Participant.Identifier.RawID != "4:+12025550142" {
		t.Fatalf("add: %d %+v", code, add)
	}
	if ps := list(); len(ps) != 2 {
		t.Fatalf("participants after add %+v", ps)
	}
	var e ErrorBody
	for _, tc := range []struct {
		name, path, body string
		code             int
		target           string
	}{
		{"third person", "/participants:add", `{"participantToAdd":{"rawId":"4:+12025550143"}}`, 400, "participantToAdd"},
		{"no target", "/participants:add", `{}`, 400, "participantToAdd"},
		{"bad timeout", "/participants:add", `{"participantToAdd":{"rawId":"4:+12025550143"},"invitationTimeoutInSeconds":181}`, 400, "invitationTimeoutInSeconds"},
		{"foreign caller id", "/participants:add", `{"participantToAdd":{"rawId":"4:+12025550143"},"sourceCallerIdNumber":{"value":"+12125550100"}}`, 403, "sourceCallerIdNumber"},
		{"bad callback", "/participants:add", `{"participantToAdd":{"rawId":"4:+12025550143"},"operationCallbackUri":"ftp://x"}`, 400, "operationCallbackUri"},
		{"user as third person", "/participants:add", `{"participantToAdd":{"communicationUser":{"id":"8:acs:r_u"}}}`, 400, "participantToAdd"},
		{"remove stranger", "/participants:remove", `{"participantToRemove":{"rawId":"4:+12025550100"}}`, 404, "participantToRemove"},
		{"mute nobody", "/participants:mute", `{"targetParticipants":[]}`, 400, "targetParticipants"},
		{"no invitation", "/participants:cancelAddParticipant", `{}`, 400, "invitationId"},
		{"transfer two people", ":transferToParticipant", `{"targetParticipant":{"rawId":"4:+12025550143"}}`, 400, "callConnectionId"},
		{"unknown action", "/participants:shuffle", `{}`, 404, ""},
	} {
		e = ErrorBody{}
		if code := call(t, srv, "POST", base+tc.path+caVersion, tc.body, true, &e); code != tc.code || e.Error.Code == "" || (tc.target != "" && e.Error.Target != tc.target) {
			t.Errorf("%s: %d %+v, want %d naming %s", tc.name, code, e, tc.code, tc.target)
		}
	}
	if code := call(t, srv, "POST", base+"/participants:mute"+caVersion, `{"targetParticipants":[{"rawId":"4:+12125550199"}],"operationContext":"m"}`, true, nil); code != 200 {
		t.Fatalf("mute: %d", code)
	}
	var p callParticipantJSON
	if code := call(t, srv, "GET", base+"/participants/"+url.PathEscape("4:+12125550199")+caVersion, "", true, &p); code != 200 || !p.IsMuted {
		t.Fatalf("get participant: %d %+v", code, p)
	}
	if code := call(t, srv, "GET", base+"/participants/"+url.PathEscape("4:+12025550100")+caVersion, "", true, &e); code != 404 {
		t.Fatalf("get a stranger: %d", code)
	}
	var out struct {
		OperationContext string `json:"operationContext"`
	}
	if code := call(t, srv, "POST", base+"/participants:remove"+caVersion, `{"participantToRemove":{"kind":"phoneNumber","rawId":"4:+12025550142"},"operationContext":"r"}`, true, &out); code != 202 || out.OperationContext != "r" {
		t.Fatalf("remove: %d %+v", code, out)
	}
	waitTypes := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			cbs.mu.Lock()
			n := 0
			for _, ty := range cbs.types {
				if ty == "Microsoft.Communication."+want {
					n++
				}
			}
			cbs.mu.Unlock()
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s callback", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitTypes("RemoveParticipantSucceeded")
	if ps := list(); len(ps) != 1 {
		t.Fatalf("participants after remove %+v", ps)
	}

	// A participant who rings, cancelled.
	if code := call(t, srv, "POST", base+"/participants:add"+caVersion, `{"participantToAdd":{"rawId":"4:+12025550143"}}`, true, &add); code != 202 {
		t.Fatalf("add: %d", code)
	}
	var cancel struct {
		InvitationID string `json:"invitationId"`
	}
	if code := call(t, srv, "POST", base+"/participants:cancelAddParticipant"+caVersion, `{"invitationId":"`+add.InvitationID+`"}`, true, &cancel); code != 202 || cancel.InvitationID != add.InvitationID {
		t.Fatalf("cancel: %d %+v", code, cancel)
	}
	waitTypes("CancelAddParticipantSucceeded")

	// Transfers: no route fails through the callback; a routed one ends the app's connection.
	if code := call(t, srv, "POST", base+":transferToParticipant"+caVersion, `{"targetParticipant":{"rawId":"4:+442071838750"},"operationContext":"t0"}`, true, &out); code != 202 || out.OperationContext != "t0" {
		t.Fatalf("transfer: %d %+v", code, out)
	}
	waitTypes("CallTransferFailed")
	if code := call(t, srv, "POST", base+":transferToParticipant"+caVersion, `{"targetParticipant":{"rawId":"4:+12025550142"},"transferee":{"rawId":"4:+12125550199"}}`, true, nil); code != 202 {
		t.Fatalf("transfer: %d", code)
	}
	waitTypes("CallTransferAccepted")
	waitTypes("CallDisconnected")
	for _, path := range []string{"/participants", "/participants/4%3A%2B12125550199"} {
		if code := call(t, srv, "GET", base+path+caVersion, "", true, &e); code != 404 {
			t.Errorf("GET %s after the transfer: %d", path, code)
		}
	}
	if code := call(t, srv, "POST", base+"/participants:add"+caVersion, `{"participantToAdd":{"rawId":"4:+12025550142"}}`, true, &e); code != 404 {
		t.Errorf("add after the transfer: %d", code)
	}
	for op, n := range map[string]float64{"addParticipant": 2, "removeParticipant": 1, "mute": 1, "cancelAddParticipant": 1, "getParticipants": 3, "getParticipant": 1, "transferToParticipant": 2} {
		if got := counterValue(t, reg, "telgw_callautomation_operations_total", map[string]string{"operation": op, "result": "ok"}); got != n {
			t.Errorf("%s ok: %v, want %v", op, got, n)
		}
	}
}
