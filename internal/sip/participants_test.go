package sip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// The far party an app adds or transfers to, reached through trunk carrier2.
const farNumber = "+12025550142"

// partsEnv is botEnv with a second carrier (the added participant's, on carrier2IP) and an
// outbound route for US numbers through it, and calls.maxParticipants 2 (conference_test.go
// has more); it returns the far side's port.
func partsEnv(t *testing.T) (*env, *calls.Automation, *fakePublisher, *fakeCallbacks, int) {
	t.Helper()
	sippPath(t)
	c2Port := freePort(t, carrier2IP)
	e, auto, pub, cbs := botEnv(t, envOpts{
		trunks:          []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes:          []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
		maxParticipants: 2,
	}, true)
	return e, auto, pub, cbs, c2Port
}

// event is a recorded callback as the app receives it: its type and JSON data.
type event struct {
	Type string
	Data map[string]any
	URI  string
}

func (f *fakeCallbacks) events() []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]event, 0, len(f.evs))
	for i, e := range f.evs {
		b, _ := json.Marshal(e.Data)
		var d map[string]any
		_ = json.Unmarshal(b, &d)
		out = append(out, event{Type: e.Type, Data: d, URI: f.uri[i]})
	}
	return out
}

// waitEvent waits for a callback of type typ (Microsoft.Communication. omitted) after the
// first skip of that type and returns it.
func (f *fakeCallbacks) waitEvent(t *testing.T, typ string, skip int) event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, e := range f.events() {
			if e.Type == "Microsoft.Communication."+typ {
				if n == skip {
					return e
				}
				n++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s callback (#%d) in %v", typ, skip, f.types())
	return event{}
}

func rawID(d map[string]any, field string) string {
	m, _ := d[field].(map[string]any)
	s, _ := m["rawId"].(string)
	return s
}

// answerNext answers the next IncomingCall and returns the connection (through ch).
func answerNext(t *testing.T, auto *calls.Automation, pub *fakePublisher) <-chan calls.ConnectionProperties {
	t.Helper()
	ch := make(chan calls.ConnectionProperties, 1)
	go func() {
		select {
		case ic := <-pub.calls:
			conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL, OperationContext: "op"})
			if err != nil {
				t.Errorf("answer: %v", err)
				close(ch)
				return
			}
			ch <- conn
		case <-time.After(20 * time.Second):
			close(ch)
		}
	}()
	return ch
}

// caller starts a carrier caller to the bot's number talking for talk (RTP from a file)
// before it hangs up.
func (e *env) caller(t *testing.T, talk time.Duration) *sipp {
	t.Helper()
	return e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac.xml"), e.addr, "-s", "14155550100", "-key", "caller", otherNumber,
		"-m", "1", "-d", strconv.Itoa(int(talk.Milliseconds())), "-mp", strconv.Itoa(freePort(t, carrierIP)))
}

// TestBotAddMuteRemoveParticipant: a carrier caller to a bot; the app answers and adds a PSTN
// participant (SIPp through carrier2, echoing RTP): AddParticipantSucceeded, ParticipantsUpdated,
// the two people's media relayed to each other. Muting the caller drops its audio and shows in
// ParticipantsUpdated; removing the participant BYEs its leg (RemoveParticipantSucceeded) and
// the caller goes back to the app until it hangs up.
func TestBotAddMuteRemoveParticipant(t *testing.T) {
	e, auto, pub, cbs, c2Port := partsEnv(t)
	ctx := context.Background()
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 9*time.Second)
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	ps, err := auto.Participants(ctx, id)
	if err != nil || len(ps) != 1 || ps[0].Participant != calls.Phone(otherNumber) {
		t.Fatalf("participants %+v %v", ps, err)
	}

	// Caller ids the resource does not own are refused.
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber), SourceCallerID: "+12125550100"}); problem.KindOf(err) != problem.KindForbidden {
		t.Fatalf("foreign caller id: %v", err)
	}
	invID, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber), OperationParams: calls.OperationParams{OperationContext: "add1"}})
	if err != nil || invID == "" {
		t.Fatalf("add: %q %v", invID, err)
	}
	ev := cbs.waitEvent(t, "AddParticipantSucceeded", 0)
	if rawID(ev.Data, "participant") != "4:"+farNumber || ev.Data["operationContext"] != "add1" || ev.Data["callConnectionId"] != id {
		t.Fatalf("AddParticipantSucceeded %v", ev.Data)
	}
	up := cbs.waitEvent(t, "ParticipantsUpdated", 0)
	if ps, _ := up.Data["participants"].([]any); len(ps) != 2 || up.Data["sequenceNumber"] != float64(1) {
		t.Fatalf("ParticipantsUpdated %v", up.Data)
	}
	if p, err := auto.Participant(ctx, id, "4:"+farNumber); err != nil || p.Muted {
		t.Fatalf("participant: %+v %v", p, err)
	}
	// A third person is beyond calls.maxParticipants (2 here): refused, naming the field.
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone("+12025550143")}); problem.KindOf(err) != problem.KindInvalid ||
		!strings.Contains(err.Error(), "maxParticipants") {
		t.Fatalf("third participant: %v", err)
	}
	eventually(t, "media relayed between the people", func() bool {
		return e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "relayed"}) > 50
	})

	if err := auto.Mute(ctx, id, []calls.Participant{calls.Phone(otherNumber)}); err != nil {
		t.Fatal(err)
	}
	up = cbs.waitEvent(t, "ParticipantsUpdated", 1)
	muted := 0
	for _, p := range up.Data["participants"].([]any) {
		if pm := p.(map[string]any); pm["isMuted"] == true && rawID(pm, "identifier") == "4:"+otherNumber {
			muted++
		}
	}
	if muted != 1 {
		t.Fatalf("ParticipantsUpdated after mute %v", up.Data)
	}
	eventually(t, "the muted caller's audio dropped", func() bool {
		return e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "muted"}) > 10
	})

	if err := auto.RemoveParticipant(ctx, id, calls.Phone("+12025550199"), calls.OperationParams{}); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("remove a stranger: %v", err)
	}
	if err := auto.RemoveParticipant(ctx, id, calls.Phone(farNumber), calls.OperationParams{OperationContext: "rm"}); err != nil {
		t.Fatal(err)
	}
	ev = cbs.waitEvent(t, "RemoveParticipantSucceeded", 0)
	if rawID(ev.Data, "participant") != "4:"+farNumber || ev.Data["operationContext"] != "rm" {
		t.Fatalf("RemoveParticipantSucceeded %v", ev.Data)
	}
	far.wait(t, 20*time.Second) // it got its BYE
	if ps, _ := auto.Participants(ctx, id); len(ps) != 1 {
		t.Fatalf("after remove: %+v", ps)
	}
	caller.wait(t, 30*time.Second)
	cbs.waitEvent(t, "CallDisconnected", 0)
	cdrs := e.cdrs.wait(t, 2)
	var legs []string
	for _, c := range cdrs {
		legs = append(legs, fmt.Sprintf("%s %s→%s %s %s", c.Direction, c.From, c.To, c.Disposition, c.Trunk))
	}
	slices.Sort(legs)
	want := []string{"inbound " + otherNumber + "→" + ourNumber + " answered carrier1", "outbound " + ourNumber + "→" + farNumber + " answered carrier2"}
	if !slices.Equal(legs, want) {
		t.Fatalf("cdrs %v, want %v", legs, want)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotAddParticipantFails: a number no route reaches gives AddParticipantFailed saying why;
// a participant who rings is cancelled (CANCEL, RFC 3261 §9.1) by cancelAddParticipant.
func TestBotAddParticipantFails(t *testing.T) {
	e, auto, pub, cbs, c2Port := partsEnv(t)
	ctx := context.Background()
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas_ring.xml"), "-m", "2")
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 8*time.Second)
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)

	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone("+442071838750"), OperationParams: calls.OperationParams{OperationContext: "uk"}}); err != nil {
		t.Fatal(err)
	}
	ev := cbs.waitEvent(t, "AddParticipantFailed", 0)
	ri, _ := ev.Data["resultInformation"].(map[string]any)
	if ri["code"] != float64(404) || ri["message"] == "" || rawID(ev.Data, "participant") != "4:+442071838750" || ev.Data["operationContext"] != "uk" {
		t.Fatalf("AddParticipantFailed %v", ev.Data)
	}

	invID, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber)})
	if err != nil {
		t.Fatal(err)
	}
	// While it rings it counts: a second one would make three people, beyond calls.maxParticipants.
	time.Sleep(500 * time.Millisecond)
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone("+12025550143")}); problem.KindOf(err) != problem.KindInvalid {
		t.Fatalf("third participant while one rings: %v", err)
	}
	if err := auto.CancelAddParticipant(ctx, id, invID, calls.OperationParams{OperationContext: "cancel"}); err != nil {
		t.Fatal(err)
	}
	ev = cbs.waitEvent(t, "CancelAddParticipantSucceeded", 0)
	if ev.Data["invitationId"] != invID || ev.Data["operationContext"] != "cancel" {
		t.Fatalf("CancelAddParticipantSucceeded %v", ev.Data)
	}
	// Nobody answers within invitationTimeoutInSeconds: CANCEL, AddParticipantFailed.
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber), InvitationTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	ev = cbs.waitEvent(t, "AddParticipantFailed", 1)
	if ri, _ := ev.Data["resultInformation"].(map[string]any); ri["code"] != float64(480) {
		t.Fatalf("AddParticipantFailed after the invitation timeout %v", ev.Data)
	}
	far.wait(t, 20*time.Second) // it got both CANCELs
	// Too late: the invitation is over.
	if err := auto.CancelAddParticipant(ctx, id, invID, calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CancelAddParticipantFailed", 0)
	caller.wait(t, 30*time.Second)
	cbs.waitEvent(t, "CallDisconnected", 0)
	if got := cbs.types(); slices.Contains(got, "Microsoft.Communication.AddParticipantSucceeded") {
		t.Fatalf("callbacks %v", got)
	}
}

// TestBotTransferToPSTN: the app transfers its caller to another number (SIPp echoing RTP
// through carrier2): CallTransferAccepted, then CallDisconnected for the app, whose connection
// is gone; caller and target keep talking (media relayed) until the caller hangs up and the
// target gets its BYE. A transfer to a number no route reaches fails (CallTransferFailed) and
// the call stays with the app.
func TestBotTransferToPSTN(t *testing.T) {
	e, auto, pub, cbs, c2Port := partsEnv(t)
	ctx := context.Background()
	far := e.start("target", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 7*time.Second)
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)

	if err := auto.TransferToParticipant(ctx, id, calls.TransferParams{Target: calls.Phone("+442071838750"), OperationParams: calls.OperationParams{OperationContext: "t0"}}); err != nil {
		t.Fatal(err)
	}
	ev := cbs.waitEvent(t, "CallTransferFailed", 0)
	if ri, _ := ev.Data["resultInformation"].(map[string]any); ri["code"] != float64(404) || ev.Data["operationContext"] != "t0" {
		t.Fatalf("CallTransferFailed %v", ev.Data)
	}
	if got, err := auto.Connection(ctx, id); err != nil || got.State != calls.StateConnected {
		t.Fatalf("after a failed transfer: %+v %v", got, err)
	}
	stranger := calls.Phone("+12025550100")
	if err := auto.TransferToParticipant(ctx, id, calls.TransferParams{Target: calls.Phone(farNumber), Transferee: &stranger}); problem.KindOf(err) != problem.KindInvalid {
		t.Fatalf("transferee not in the call: %v", err)
	}
	if err := auto.TransferToParticipant(ctx, id, calls.TransferParams{Target: calls.Phone(farNumber), OperationParams: calls.OperationParams{OperationContext: "t1"}}); err != nil {
		t.Fatal(err)
	}
	ev = cbs.waitEvent(t, "CallTransferAccepted", 0)
	if rawID(ev.Data, "transferTarget") != "4:"+farNumber || rawID(ev.Data, "transferee") != "4:"+otherNumber || ev.Data["operationContext"] != "t1" {
		t.Fatalf("CallTransferAccepted %v", ev.Data)
	}
	cbs.waitEvent(t, "CallDisconnected", 0)
	if _, err := auto.Connection(ctx, id); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("connection after the transfer: %v", err)
	}
	before := e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "relayed"})
	eventually(t, "media relayed between caller and target", func() bool {
		return e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "relayed"}) > before+50
	})
	caller.wait(t, 30*time.Second)
	far.wait(t, 20*time.Second) // the caller's hang-up reached the target
	// The call's CDR, the target's leg, and the attempt no route reached.
	cdrs := e.cdrs.wait(t, 3)
	var legs []string
	for _, c := range cdrs {
		legs = append(legs, fmt.Sprintf("%s %s→%s %s %s", c.Direction, c.From, c.To, c.Disposition, c.Trunk))
	}
	slices.Sort(legs)
	want := []string{"inbound " + otherNumber + "→" + ourNumber + " answered carrier1", "outbound " + ourNumber + "→" + farNumber + " answered carrier2",
		"outbound " + ourNumber + "→+442071838750 rejected "}
	if !slices.Equal(legs, want) {
		t.Fatalf("cdrs %v, want %v", legs, want)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotTransferPlacedCall: a call the app placed (createCall) is transferred: the callee is
// connected to the target (a second trunk), the app leaves, and when the target hangs up
// telgw hangs up the callee.
func TestBotTransferPlacedCall(t *testing.T) {
	sippPath(t)
	const target = "+12025550144"
	c2Port, c3Port := freePort(t, carrier2IP), freePort(t, carrier2IP)
	e, auto, _, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port), {Name: "carrier3", Address: carrier2IP + ":" + strconv.Itoa(c3Port)}},
		routes: []sip.OutboundRoute{
			{Name: "target", NumberPattern: `\+12025550144`, Trunks: []string{"carrier3"}},
			{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}},
		},
	}, true)
	ctx := context.Background()
	callee := e.start("callee", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	tgt := e.start("target", carrier2IP, c3Port, e.scenario("uas_bye.xml", `<pause milliseconds="1000"/>`, `<pause milliseconds="3000"/>`),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	conn, err := auto.CreateCall(ctx, calls.CreateCallParams{Target: calls.Phone(farNumber), SourceCallerID: ourNumber, CallbackURI: appURL})
	if err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CallConnected", 0)
	if err := auto.TransferToParticipant(ctx, conn.CallConnectionID, calls.TransferParams{Target: calls.Phone(target)}); err != nil {
		t.Fatal(err)
	}
	ev := cbs.waitEvent(t, "CallTransferAccepted", 0)
	if rawID(ev.Data, "transferee") != "4:"+farNumber || rawID(ev.Data, "transferTarget") != "4:"+target {
		t.Fatalf("CallTransferAccepted %v", ev.Data)
	}
	cbs.waitEvent(t, "CallDisconnected", 0)
	tgt.wait(t, 20*time.Second)
	callee.wait(t, 20*time.Second)
	cdrs := e.cdrs.wait(t, 2)
	var legs []string
	for _, c := range cdrs {
		legs = append(legs, fmt.Sprintf("%s %s→%s %s %s %s", c.Direction, c.From, c.To, c.Disposition, c.Trunk, c.EndedBy))
	}
	slices.Sort(legs)
	want := []string{"outbound " + ourNumber + "→" + farNumber + " answered carrier2 caller", "outbound " + ourNumber + "→" + target + " answered carrier3 callee"}
	if !slices.Equal(legs, want) {
		t.Fatalf("cdrs %v, want %v", legs, want)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotRemoveCaller: the app removes the caller; the added participant stays with the app
// until they hang up, which ends the call.
func TestBotRemoveCaller(t *testing.T) {
	e, auto, pub, cbs, c2Port := partsEnv(t)
	ctx := context.Background()
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas_bye.xml", `<pause milliseconds="1000"/>`, `<pause milliseconds="2000"/>`),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac_callee_bye.xml"), e.addr, "-s", "14155550100", "-key", "caller", otherNumber,
		"-m", "1", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber)}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "AddParticipantSucceeded", 0)
	if err := auto.RemoveParticipant(ctx, id, calls.Phone(otherNumber), calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "RemoveParticipantSucceeded", 0)
	caller.wait(t, 20*time.Second) // it got its BYE
	if ps, err := auto.Participants(ctx, id); err != nil || len(ps) != 1 || ps[0].Participant != calls.Phone(farNumber) {
		t.Fatalf("participants after removing the caller: %+v %v", ps, err)
	}
	far.wait(t, 20*time.Second)
	ev := cbs.waitEvent(t, "CallDisconnected", 0)
	if ri, _ := ev.Data["resultInformation"].(map[string]any); ri["message"] != "The participant hung up." {
		t.Fatalf("CallDisconnected %v", ev.Data)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotParticipantDialogMatching: the leg of an added participant (a peer written by hand,
// so the test knows its Call-ID and tags) is filed in the call table like any callee leg:
// a BYE with its tags from a stranger, or with forged tags from the carrier, gets 481 and the
// participant stays (RFC 3261 §12.2.2); the participant's own BYE takes them out of the call
// (ParticipantsUpdated) while the caller stays with the app.
func TestBotParticipantDialogMatching(t *testing.T) {
	sippPath(t)
	peer := newUDPPeer(t, carrier2IP)
	_, port, _ := net.SplitHostPort(peer.addr())
	p2, _ := strconv.Atoi(port)
	e, auto, pub, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, p2)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
	}, true)
	ctx := context.Background()
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 6*time.Second)
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber)}); err != nil {
		t.Fatal(err)
	}
	inv := peer.await("INVITE to the participant", startsWith("INVITE "))
	toTag := randTag()
	rtp := newRTPPeer(t, carrier2IP, true)
	peer.send(e.addr, reply(inv, "200 OK", toTag, peer.addr(), audioSDP(carrier2IP, rtp.port())))
	cbs.waitEvent(t, "AddParticipantSucceeded", 0)
	// The participant's dialog as the participant writes it: From is telgw's To with the
	// participant's tag, To is telgw's From.
	cid, from, to := header(inv, "Call-ID"), header(inv, "To")+";tag="+toTag, header(inv, "From")
	forged := func(h string) string { return tagParam.ReplaceAllString(h, ";tag="+randTag()) }
	for _, tc := range []struct{ name, ip, msg string }{
		{"BYE, right tags, from a stranger", strangerIP, request("BYE", "sip:telgw@"+e.addr, "x", from, to, cid, 2, "")},
		{"BYE, forged tags, from the carrier", carrier2IP, request("BYE", "sip:telgw@"+e.addr, "x", forged(from), forged(to), cid, 2, "")},
	} {
		if got := spoof(t, tc.ip, e.addr, tc.msg, 2*time.Second); got != "481" {
			t.Errorf("%s: got %q, want 481", tc.name, got)
		}
	}
	if ps, _ := auto.Participants(ctx, id); len(ps) != 2 {
		t.Fatalf("participants after forged BYEs: %+v", ps)
	}
	peer.send(e.addr, request("BYE", "sip:telgw@"+e.addr, peer.addr(), from, to, cid, 2, ""))
	peer.await("200 for the participant's BYE", func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 200") && strings.Contains(header(m, "CSeq"), "BYE")
	})
	up := cbs.waitEvent(t, "ParticipantsUpdated", 1)
	if ps, _ := up.Data["participants"].([]any); len(ps) != 1 {
		t.Fatalf("ParticipantsUpdated after the participant hung up: %v", up.Data)
	}
	caller.wait(t, 30*time.Second)
	cbs.waitEvent(t, "CallDisconnected", 0)
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotAppLeaves: with two people on the call, hangUp takes only the app out (its
// connection ends, the people talk on until the caller hangs up and telgw hangs up the
// participant); terminate hangs up everyone.
func TestBotAppLeaves(t *testing.T) {
	for _, tc := range []struct {
		name      string
		terminate bool
		scenario  string
	}{{"hangUp", false, "uac.xml"}, {"terminate", true, "uac_callee_bye.xml"}} {
		t.Run(tc.name, func(t *testing.T) {
			e, auto, pub, cbs, c2Port := partsEnv(t)
			ctx := context.Background()
			far := e.start("participant", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
			connc := answerNext(t, auto, pub)
			caller := e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario(tc.scenario), e.addr, "-s", "14155550100", "-key", "caller", otherNumber,
				"-m", "1", "-d", "6000", "-mp", strconv.Itoa(freePort(t, carrierIP)))
			conn, ok := <-connc
			if !ok {
				t.Fatal("no call answered")
			}
			id := conn.CallConnectionID
			cbs.waitEvent(t, "CallConnected", 0)
			if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(farNumber)}); err != nil {
				t.Fatal(err)
			}
			cbs.waitEvent(t, "AddParticipantSucceeded", 0)
			hang := auto.HangUp
			if tc.terminate {
				hang = auto.Terminate
			}
			if err := hang(ctx, id); err != nil {
				t.Fatal(err)
			}
			ev := cbs.waitEvent(t, "CallDisconnected", 0)
			if _, err := auto.Connection(ctx, id); problem.KindOf(err) != problem.KindNotFound {
				t.Fatalf("connection after %s: %v", tc.name, err)
			}
			if !tc.terminate {
				if ri, _ := ev.Data["resultInformation"].(map[string]any); ri["message"] != "The app left the call." {
					t.Fatalf("CallDisconnected %v", ev.Data)
				}
				before := e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "relayed"})
				eventually(t, "the people talk on", func() bool {
					return e.counter("telgw_callautomation_media_packets_total", map[string]string{"result": "relayed"}) > before+50
				})
			}
			caller.wait(t, 30*time.Second)
			far.wait(t, 20*time.Second)
			eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
		})
	}
}
