package sip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/sip"
)

// tonePeer is a person's phone in a conference test: the RTP socket a SIPp leg's SDP names
// (uac_listen.xml, uas_listen.xml). Once telgw sends to it, it answers from the same socket
// (symmetric RTP, RFC 4961) with a steady sine at its own frequency, 20 ms PCMU frames, and it
// keeps what it hears, decoded, so the test can tell whose voices reach it (Goertzel).
type tonePeer struct {
	name string
	freq float64
	conn *net.UDPConn

	mu     sync.Mutex
	remote *net.UDPAddr
	heard  []int16
	ssrcs  map[uint32]int
	quiet  bool // stop sending (the person falls silent)
}

func newTonePeer(t *testing.T, name, ip string, freq float64) *tonePeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &tonePeer{name: name, freq: freq, conn: c, ssrcs: map[uint32]int{}}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = c.Close()
		<-done
	})
	go p.read()
	go p.send(stop, done)
	return p
}

func (p *tonePeer) port() string { return strconv.Itoa(p.conn.LocalAddr().(*net.UDPAddr).Port) }

func (p *tonePeer) read() {
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		hn, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		p.mu.Lock()
		if p.remote == nil {
			p.remote = from
		}
		if h.PayloadType == 0 {
			p.ssrcs[h.SSRC]++
			p.heard = audio.PCMU.Decode(p.heard, buf[hn:n])
		}
		p.mu.Unlock()
	}
}

func (p *tonePeer) send(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	frame := make([]int16, audio.FrameSamples)
	pkt := make([]byte, 12+audio.FrameSamples)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		to, quiet := p.remote, p.quiet
		p.mu.Unlock()
		ts += audio.FrameSamples
		if to == nil || quiet {
			continue
		}
		for i := range frame {
			frame[i] = int16(4000 * math.Sin(2*math.Pi*p.freq*float64(int(ts)+i)/8000))
		}
		h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: 0x5eed0000 + uint32(p.freq), Marker: seq == 0}
		seq++
		hn, _ := h.MarshalTo(pkt)
		payload := audio.PCMU.Encode(pkt[hn:hn], frame)
		if _, err := p.conn.WriteToUDP(pkt[:hn+len(payload)], to); err != nil {
			return
		}
	}
}

// levels listens for d (after letting 100 ms pass, so what was under way settles) and returns
// the amplitude heard at each frequency (Goertzel; a 4000-peak sine reads ≈4000).
func (p *tonePeer) levels(t *testing.T, d time.Duration, freqs ...float64) map[float64]float64 {
	t.Helper()
	p.mu.Lock()
	p.heard = p.heard[:0]
	p.mu.Unlock()
	skip := 800 // 100 ms
	want := skip + int(d.Seconds()*8000)
	deadline := time.Now().Add(10 * time.Second)
	var pcm []int16
	for time.Now().Before(deadline) {
		p.mu.Lock()
		if len(p.heard) >= want {
			pcm = append(pcm, p.heard[skip:want]...)
		}
		p.mu.Unlock()
		if pcm != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pcm == nil {
		t.Fatalf("%s heard less than %v of audio", p.name, d)
	}
	out := map[float64]float64{}
	for _, f := range freqs {
		var re, im float64
		for i, s := range pcm {
			w := 2 * math.Pi * f * float64(i) / 8000
			re += float64(s) * math.Cos(w)
			im -= float64(s) * math.Sin(w)
		}
		out[f] = 2 * math.Hypot(re, im) / float64(len(pcm))
	}
	return out
}

// Conference test frequencies: each person's voice and the app's prompt.
const (
	fA, fB, fC, fPrompt = 700.0, 1100.0, 1500.0, 440.0
	heardLevel          = 1500 // a 4000-peak voice reads ≈4000, absent ≈0 (G.711 noise < 100)
	silentLevel         = 400
)

// expectHears checks that p hears exactly the frequencies in yes and none of those in no.
func expectHears(t *testing.T, what string, p *tonePeer, yes, no []float64) {
	t.Helper()
	all := append(append([]float64(nil), yes...), no...)
	lv := p.levels(t, 400*time.Millisecond, all...)
	var bad []string
	for _, f := range yes {
		if lv[f] < heardLevel {
			bad = append(bad, fmt.Sprintf("%v Hz missing (%.0f)", f, lv[f]))
		}
	}
	for _, f := range no {
		if lv[f] > silentLevel {
			bad = append(bad, fmt.Sprintf("%v Hz heard (%.0f)", f, lv[f]))
		}
	}
	if bad != nil {
		t.Fatalf("%s: %s: %s (levels %v)", what, p.name, strings.Join(bad, ", "), lv)
	}
}

const (
	numberB = "+12025550142"
	numberC = "+12025550143"
)

// confEnv is a bot env with media and two far carriers (trunks carrier2 and carrier3, both on
// carrier2IP) reaching numberB and numberC, each answered by SIPp (uas_listen.xml) whose SDP
// names a tonePeer.
func confEnv(t *testing.T) (*env, *calls.Automation, *fakePublisher, *fakeCallbacks, *tonePeer, *tonePeer) {
	t.Helper()
	o, start := farParties(t)
	e, auto, pub, cbs := botEnv(t, o, true)
	pb, pc, _, _ := start(e, "")
	return e, auto, pub, cbs, pb, pc
}

// farParties are the options of an env with media whose numberB and numberC are reached
// through trunks carrier2 and carrier3 (both on carrier2IP), and start, which starts their
// SIPp callees (uas_listen.xml, or bScenario for B) naming a tonePeer each.
func farParties(t *testing.T) (envOpts, func(e *env, bScenario string) (pb, pc *tonePeer, sb, sc *sipp)) {
	t.Helper()
	md := mediaDeps(t)
	sippPath(t)
	p2, p3 := freePort(t, carrier2IP), freePort(t, carrier2IP)
	c3 := carrierTrunk("carrier3", carrier2IP, p3)
	c3.Allow = nil // outbound only: carrier2 owns the address for inbound
	o := envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, p2), c3},
		routes: []sip.OutboundRoute{{Name: "b", NumberPattern: `\` + numberB, Trunks: []string{"carrier2"}},
			{Name: "c", NumberPattern: `\` + numberC, Trunks: []string{"carrier3"}}},
		deps: func(d *sip.Deps) { d.Media = md },
	}
	return o, func(e *env, bScenario string) (*tonePeer, *tonePeer, *sipp, *sipp) {
		pb, pc := newTonePeer(t, "B", carrier2IP, fB), newTonePeer(t, "C", carrier2IP, fC)
		if bScenario == "" {
			bScenario = "uas_listen.xml"
		}
		sb := e.start("B", carrier2IP, p2, e.scenario(bScenario, "RTP_IP", carrier2IP, "RTP_PORT", pb.port()), "-m", "1")
		sc := e.start("C", carrier2IP, p3, e.scenario("uas_listen.xml", "RTP_IP", carrier2IP, "RTP_PORT", pc.port()), "-m", "1")
		return pb, pc, sb, sc
	}
}

// toneServer serves a 2 s 440 Hz WAV prompt.
func toneServer(t *testing.T) string {
	wav := sineWAV(2 * time.Second)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wav)
	}))
	t.Cleanup(files.Close)
	return files.URL + "/tone.wav"
}

// TestBotConference: a carrier's caller (A) to a bot; the app adds two PSTN participants (B
// and C, through two trunks): from the third person on, telgw mixes. Each hears the other two
// and not themselves; a prompt to C replaces the mix for C only; a prompt to everyone is heard
// by all over the conversation; a prompt to A and C is one operation; muting B takes B out of what A and C hear; removing C keeps A
// and B mixed; the app hanging up leaves A and B talking until A hangs up.
func TestBotConference(t *testing.T) {
	e, auto, pub, cbs, pb, pc := confEnv(t)
	ctx := context.Background()
	prompt := toneServer(t)
	pa := newTonePeer(t, "A", carrierIP, fA)
	connc := answerNext(t, auto, pub)
	caller := e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac_listen.xml", "RTP_IP", carrierIP, "RTP_PORT", pa.port(), "HOLD_MS", "22000"),
		e.addr, "-s", "14155550100", "-key", "caller", otherNumber, "-m", "1")
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	for i, n := range []string{numberB, numberC} {
		if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: calls.Phone(n)}); err != nil {
			t.Fatal(err)
		}
		cbs.waitEvent(t, "AddParticipantSucceeded", i)
		cbs.waitEvent(t, "ParticipantsUpdated", i)
	}
	if ps, err := auto.Participants(ctx, id); err != nil || len(ps) != 3 {
		t.Fatalf("participants %+v %v", ps, err)
	}
	expectHears(t, "three-way", pa, []float64{fB, fC}, []float64{fA})
	expectHears(t, "three-way", pb, []float64{fA, fC}, []float64{fB})
	expectHears(t, "three-way", pc, []float64{fA, fB}, []float64{fC})

	// A prompt to C: C hears it instead of the conference; A and B go on without it.
	if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: prompt}},
		Targets: []calls.Participant{calls.Phone(numberC)}, Op: calls.OperationParams{OperationContext: "toC"}}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "PlayStarted", 0)
	expectHears(t, "prompt to C", pc, []float64{fPrompt}, []float64{fA, fB})
	expectHears(t, "prompt to C", pa, []float64{fB, fC}, []float64{fPrompt})
	cbs.waitEvent(t, "PlayCompleted", 0)

	// A prompt to everyone: heard by all, over the conversation.
	if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: prompt}},
		Op: calls.OperationParams{OperationContext: "all"}}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "PlayStarted", 1)
	expectHears(t, "prompt to all", pa, []float64{fPrompt, fB, fC}, []float64{fA})
	expectHears(t, "prompt to all", pb, []float64{fPrompt, fA, fC}, []float64{fB})
	expectHears(t, "prompt to all", pc, []float64{fPrompt, fA, fB}, []float64{fC})
	cbs.waitEvent(t, "PlayCompleted", 1)

	// A prompt to A and C: both hear it instead of the conference, B does not; one operation,
	// one PlayStarted and one PlayCompleted.
	if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: prompt}},
		Targets: []calls.Participant{calls.Phone(otherNumber), calls.Phone(numberC)}, Op: calls.OperationParams{OperationContext: "AC"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cbs.event("Microsoft.Communication.PlayStarted", "AC"); err != nil {
		t.Fatal(err)
	}
	expectHears(t, "prompt to A and C", pa, []float64{fPrompt}, []float64{fB, fC})
	expectHears(t, "prompt to A and C", pb, []float64{fA, fC}, []float64{fPrompt})
	if _, err := cbs.event("Microsoft.Communication.PlayCompleted", "AC"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range cbs.events() {
		if ev.Data["operationContext"] == "AC" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d callbacks for the play to two, want PlayStarted and PlayCompleted once", n)
	}

	// Mute B: A and C stop hearing B; B still hears them.
	if err := auto.Mute(ctx, id, []calls.Participant{calls.Phone(numberB)}); err != nil {
		t.Fatal(err)
	}
	up := cbs.waitEvent(t, "ParticipantsUpdated", 2)
	if ps, _ := up.Data["participants"].([]any); len(ps) != 3 {
		t.Fatalf("ParticipantsUpdated after mute %v", up.Data)
	}
	expectHears(t, "B muted", pa, []float64{fC}, []float64{fA, fB})
	expectHears(t, "B muted", pc, []float64{fA}, []float64{fB, fC})
	expectHears(t, "B muted", pb, []float64{fA, fC}, []float64{fB})

	// Remove C: A and B stay mixed (B, muted, still hears A).
	if err := auto.RemoveParticipant(ctx, id, calls.Phone(numberC), calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "RemoveParticipantSucceeded", 0)
	cbs.waitEvent(t, "ParticipantsUpdated", 3)
	expectHears(t, "C removed", pb, []float64{fA}, []float64{fB, fC})

	// The app hangs up: A and B talk on without it.
	if err := auto.HangUp(ctx, id); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CallDisconnected", 0)
	expectHears(t, "the app left", pb, []float64{fA}, []float64{fB, fC})
	if e.svc.ActiveCalls() == 0 {
		t.Fatal("the call ended with the app")
	}
	// One SSRC per stream telgw sends each person (RFC 3550 §8.2: a change only at the switch
	// to mixing, none after).
	for _, p := range []*tonePeer{pa, pb} {
		p.mu.Lock()
		n := len(p.ssrcs)
		p.mu.Unlock()
		if n != 1 {
			t.Errorf("%s heard %d SSRCs", p.name, n)
		}
	}
	caller.wait(t, 30*time.Second)
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotMediaToWebRTCUser: a carrier's caller (A) and a communication user the app added (a
// WebRTC device that echoes what it hears) are relayed to each other; the app's media toward
// her leg mixes the call: a prompt to her replaces what she hears (A hears the prompt only
// through her echo, and no longer itself); afterwards she hears A again; sendDtmfTones reaches
// her device as RFC 4733 events, which her echo sends back into a recognition on her leg.
func TestBotMediaToWebRTCUser(t *testing.T) {
	md := mediaDeps(t)
	ue, auto, pub, cbs := userBotEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }})
	ctx := context.Background()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	prompt := toneServer(t)
	pa := newTonePeer(t, "A", carrierIP, fA)
	connc := answerNext(t, auto, pub)
	caller := ue.start("caller", carrierIP, freePort(t, carrierIP), ue.scenario("uac_listen.xml", "RTP_IP", carrierIP, "RTP_PORT", pa.port(), "HOLD_MS", "14000"),
		ue.addr, "-s", "14155550100", "-key", "caller", otherNumber, "-m", "1")
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	alice := calls.User(alice)
	if _, err := auto.AddParticipant(ctx, id, calls.AddParticipantParams{Target: alice}); err != nil {
		t.Fatal(err)
	}
	<-d.answer
	cbs.waitEvent(t, "AddParticipantSucceeded", 0)

	if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: prompt}},
		Targets: []calls.Participant{alice}, Op: calls.OperationParams{OperationContext: "toUser"}}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "PlayStarted", 0)
	expectHears(t, "prompt to the WebRTC user, echoed", pa, []float64{fPrompt}, []float64{fA})
	cbs.waitEvent(t, "PlayCompleted", 0)
	expectHears(t, "after the prompt, A through her echo", pa, []float64{fA}, []float64{fPrompt})

	if err := auto.Recognize(id, calls.RecognizeParams{Target: alice, MaxTones: 2, InterToneTimeout: 5 * time.Second,
		InitialSilenceTimeout: 10 * time.Second, Op: calls.OperationParams{OperationContext: "rec"}}); err != nil {
		t.Fatal(err)
	}
	if err := auto.SendDTMF(id, alice, []string{"one", "two"}, calls.OperationParams{OperationContext: "dtmf"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cbs.event("Microsoft.Communication.SendDtmfTonesCompleted", "dtmf"); err != nil {
		t.Fatal(err)
	}
	done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "rec")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(done["dtmfResult"]); string(b) != `{"tones":["one","two"]}` {
		t.Fatalf("RecognizeCompleted %v", done)
	}
	if n := d.dtmf.Load(); n < 10 {
		t.Fatalf("her device got %d telephone-event packets for two tones", n)
	}

	// Hold her: she is not heard; without music she gets nothing, with music her player
	// carries it (a WebRTC leg takes a player's stream as a SIP leg does); unhold puts her back.
	if err := auto.Hold(id, calls.HoldParams{Target: alice, Op: calls.OperationParams{OperationContext: "hold"}}); err != nil {
		t.Fatal(err)
	}
	expectHears(t, "she is held", pa, nil, []float64{fA, fPrompt})
	flat := d.echoed.Load()
	time.Sleep(300 * time.Millisecond) // a held person without music is sent nothing
	if n := d.echoed.Load() - flat; n > 3 {
		t.Fatalf("held without music, her device got %d packets in 300 ms", n)
	}
	if err := auto.Unhold(id, alice, calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	expectHears(t, "unheld, A through her echo", pa, []float64{fA}, []float64{fPrompt})
	if err := auto.Hold(id, calls.HoldParams{Target: alice, Music: &calls.PlaySource{Kind: calls.FileSource, URI: prompt},
		Op: calls.OperationParams{OperationContext: "hold music"}}); err != nil {
		t.Fatal(err)
	}
	expectHears(t, "she is held with music (not heard)", pa, nil, []float64{fA, fPrompt})
	before := d.echoed.Load()
	eventually(t, "hold music at her device", func() bool { return d.echoed.Load()-before >= 25 })
	if err := auto.Unhold(id, alice, calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	expectHears(t, "unheld again, A through her echo", pa, []float64{fA}, []float64{fPrompt})
	caller.wait(t, 30*time.Second)
	eventually(t, "the caller left the call", func() bool { ps, _ := auto.Participants(ctx, id); return len(ps) == 1 })
	if err := auto.HangUp(ctx, id); err != nil { // she is alone with the app: the call ends
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CallDisconnected", 0)
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestBotCreateCallConference: an app's createCall with three targets (two phone numbers and a
// communication user): the first answers (CallConnected), the others are invited then and
// join (ParticipantsUpdated, no AddParticipant callbacks), mixed: B and C hear each other and
// her device hears them (and echoes them); terminate ends every leg.
func TestBotCreateCallConference(t *testing.T) {
	o, start := farParties(t)
	ue, auto, _, cbs := userBotEnv(t, o)
	ctx := context.Background()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	pb, pc, sb, sc := start(ue.env, "")
	conn, err := auto.CreateCall(ctx, calls.CreateCallParams{Targets: []calls.Participant{calls.Phone(numberB), calls.Phone(numberC), calls.User(alice)},
		SourceCallerID: ourNumber, CallbackURI: appURL})
	if err != nil || len(conn.Targets) != 3 {
		t.Fatalf("create: %+v %v", conn, err)
	}
	id := conn.CallConnectionID
	cbs.waitEvent(t, "CallConnected", 0)
	<-d.answer
	eventually(t, "three participants", func() bool { ps, _ := auto.Participants(ctx, id); return len(ps) == 3 })
	cbs.waitEvent(t, "ParticipantsUpdated", 1)
	for _, ev := range cbs.events() {
		if strings.Contains(ev.Type, "AddParticipant") {
			t.Fatalf("createCall's targets joined with %s", ev.Type)
		}
	}
	expectHears(t, "createCall of three", pb, []float64{fC}, nil)
	expectHears(t, "createCall of three", pc, []float64{fB}, nil)
	eventually(t, "her device hears the conference", func() bool { return d.echoed.Load() > 50 })
	if err := auto.Terminate(ctx, id); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CallDisconnected", 0)
	sb.wait(t, 20*time.Second) // each got its BYE
	sc.wait(t, 20*time.Second)
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestBotCreateCallRingsAll: an app's createCall to three targets rings them all at once: her
// WebRTC device and C answer while B, the first target, still rings; the app hanging up before
// B answered cancels B (CreateCallFailed) and hangs up the legs that answered.
func TestBotCreateCallRingsAll(t *testing.T) {
	o, start := farParties(t)
	ue, auto, _, cbs := userBotEnv(t, o)
	ctx := context.Background()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	_, _, sb, sc := start(ue.env, "uas_ring.xml")
	conn, err := auto.CreateCall(ctx, calls.CreateCallParams{Targets: []calls.Participant{calls.Phone(numberB), calls.Phone(numberC), calls.User(alice)},
		SourceCallerID: ourNumber, CallbackURI: appURL})
	if err != nil {
		t.Fatal(err)
	}
	<-d.answer // she answered while the first target rings
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "CreateCallFailed", 0)
	sb.wait(t, 20*time.Second) // B: CANCEL (RFC 3261 §9.1), 487
	sc.wait(t, 20*time.Second) // C had answered: BYE
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
	for _, ev := range cbs.events() {
		if ev.Type == "Microsoft.Communication.CallConnected" {
			t.Fatal("connected although the first target never answered")
		}
	}
}
