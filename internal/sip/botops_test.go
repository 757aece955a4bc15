package sip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// TestBotHold: the app holds a SIPp caller with music: SIPp gets a re-INVITE whose offer says
// a=sendonly (the scenario fails otherwise) and answers recvonly; the music (a WAV served
// over HTTP) reaches the caller's media socket, looped; unhold re-INVITEs with a=sendrecv and
// the music stops. A hold of someone not on the call names targetParticipant.
func TestBotHold(t *testing.T) {
	md := mediaDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	wav := sineWAV(400 * time.Millisecond)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(wav)
	}))
	defer files.Close()
	sink := newRTPSink(t)
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		id := conn.CallConnectionID
		music := &calls.PlaySource{Kind: calls.FileSource, URI: files.URL + "/music.wav"}
		if err := untilConnected(func() error {
			return auto.Hold(id, calls.HoldParams{Target: caller, Music: music, Op: calls.OperationParams{OperationContext: "hold"}})
		}); err != nil {
			return err
		}
		// A 400 ms file looped: well over 40 packets arrive in 1.5 s.
		start := time.Now()
		for {
			if _, loud, _ := sink.counts(); loud >= 60 {
				break
			}
			if time.Since(start) > 10*time.Second {
				_, loud, _ := sink.counts()
				return fmt.Errorf("hold music: %d audible packets; callbacks %v", loud, cbs.types())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := auto.Hold(id, calls.HoldParams{Target: calls.Phone("+14155550199")}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("hold of a stranger: %v", err)
		}
		if err := auto.Unhold(id, caller, calls.OperationParams{OperationContext: "unhold"}); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		p1, _, _ := sink.counts()
		time.Sleep(600 * time.Millisecond)
		if p2, _, _ := sink.counts(); p2-p1 > 2 {
			return fmt.Errorf("%d packets after unhold", p2-p1)
		}
		if has(cbs, "Microsoft.Communication.HoldFailed") {
			return fmt.Errorf("HoldFailed after a good hold")
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_held.xml", "RTP_IP", carrierIP, "RTP_PORT", strconv.Itoa(sink.conn.LocalAddr().(*net.UDPAddr).Port), "HOLD_MS", "500"),
		"4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotContinuousDTMF: SIPp presses 1, 2, # (RFC 4733, its shipped pcaps) while a looped
// prompt plays → ContinuousDtmfRecognitionToneReceived one/two/pound with sequence ids 1–3;
// stop → ContinuousDtmfRecognitionStopped with the stop's operationContext.
func TestBotContinuousDTMF(t *testing.T) {
	const pcaps = "/usr/share/sip-tester"
	if _, err := os.Stat(pcaps + "/dtmf_2833_1.pcap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("SIPp's dtmf_2833 pcaps are not installed")
	}
	md := mediaDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		id := conn.CallConnectionID
		if err := untilConnected(func() error {
			return auto.StartContinuousDTMF(id, caller, calls.OperationParams{OperationContext: "cont"})
		}); err != nil {
			return err
		}
		// Alongside a looped play.
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.TextSource, Text: "Please hold the line."}}, Loop: true,
			Op: calls.OperationParams{OperationContext: "music"}}); err != nil {
			return err
		}
		deadline := time.Now().Add(20 * time.Second)
		var got []string
		for len(got) < 3 && time.Now().Before(deadline) {
			got = got[:0]
			cbs.mu.Lock()
			for _, ev := range cbs.evs {
				if ev.Type != "Microsoft.Communication.ContinuousDtmfRecognitionToneReceived" {
					continue
				}
				b, _ := json.Marshal(ev.Data)
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				got = append(got, fmt.Sprintf("%v#%v/%s/%v", m["tone"], m["sequenceId"], resultCode(m), m["operationContext"]))
			}
			cbs.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
		want := []string{"one#1/200/0/cont", "two#2/200/0/cont", "pound#3/200/0/cont"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("ToneReceived %v, want %v", got, want)
		}
		if has(cbs, "Microsoft.Communication.PlayCompleted") {
			return fmt.Errorf("the looped play ended")
		}
		if err := auto.StopContinuousDTMF(id, caller, calls.OperationParams{OperationContext: "stop"}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.ContinuousDtmfRecognitionStopped", "stop"); err != nil {
			return err
		}
		return auto.CancelMedia(id)
	})
	e.call(carrierIP, e.scenario("uac_dtmf.xml", "PCAP_DIR", pcaps, "WAIT_MS", "1500", "HOLD_MS", "3000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// spokenULaw is raw μ-law of espeak-ng saying text after lead of silence, with a second of
// silence after it.
func spokenULaw(t *testing.T, lead time.Duration, text string) []byte {
	t.Helper()
	es, err := speech.NewEspeak(speech.DefaultEspeakConfig())
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := es.Synthesize(context.Background(), speech.SynthRequest{Text: text, VoiceName: "en-US-GuyNeural"})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("espeak-ng: %v", err)
	}
	all := append(make([]int16, int(lead.Seconds()*8000)), pcm...)
	all = append(all, make([]int16, 8000)...)
	return audio.PCMU.Encode(nil, all)
}

// asrDeps adds pocketsphinx to mediaDeps.
func asrDeps(t *testing.T) *sip.MediaDeps {
	md := mediaDeps(t)
	cfg := speech.DefaultSphinxConfig()
	if _, err := os.Stat(cfg.Dict); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("pocketsphinx-en-us is not installed")
	}
	ps, err := speech.NewPocketsphinx(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md.ASR = ps
	return md
}

// TestBotRecognizeChoices: SIPp streams espeak-ng saying "billing" (μ-law RTP) while the app
// asks, behind a spoken prompt it lets the caller interrupt, for one of billing / sales /
// support → RecognizeCompleted 200/8545, choiceResult {billing, billing} (the speech starts
// while the SSML prompt still plays: barge-in). A second recognition with a choice the caller never says
// fails with 8510 (initial silence).
func TestBotRecognizeChoices(t *testing.T) {
	md := asrDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	if err := os.WriteFile(filepath.Join(e.dir, "billing.ul"), spokenULaw(t, 1500*time.Millisecond, "billing"), 0o644); err != nil {
		t.Fatal(err)
	}
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		id := conn.CallConnectionID
		rec := calls.RecognizeParams{Kind: calls.RecognizeChoices, Target: caller, InitialSilenceTimeout: 10 * time.Second, InterruptPrompt: true,
			Choices: []calls.Choice{{Label: "billing", Phrases: []string{"billing", "bills"}}, {Label: "sales", Phrases: []string{"sales"}, Tone: "two"},
				{Label: "support", Phrases: []string{"support", "help"}}},
			Prompt: []calls.PlaySource{{Kind: calls.SSMLSource, SSML: `<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Say billing, sales or support. <break time="300ms"/> You can also press two for sales, at any time while this long message plays, or stay on the line to hear it again.</voice></speak>`}},
			Op:     calls.OperationParams{OperationContext: "menu"}}
		if err := untilConnected(func() error { return auto.Recognize(id, rec) }); err != nil {
			return err
		}
		start := time.Now()
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "menu")
		if err != nil {
			failed, _ := cbs.event("Microsoft.Communication.RecognizeFailed", "menu")
			return fmt.Errorf("%w: %v", err, failed)
		}
		b, _ := json.Marshal(done["choiceResult"])
		if string(b) != `{"label":"billing","recognizedPhrase":"billing"}` || done["recognitionType"] != "choices" || resultCode(done) != "200/8545" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		// The prompt (about 8 s) stopped when the caller spoke: nothing is sent any more.
		sent := md.Scheduler.Stats().Packets
		time.Sleep(400 * time.Millisecond)
		if more := md.Scheduler.Stats().Packets - sent; more > 0 || time.Since(start) > 7*time.Second {
			return fmt.Errorf("%d prompt packets sent %v after the recognition began: no barge-in", more, time.Since(start))
		}
		rec.Prompt, rec.InitialSilenceTimeout, rec.Op.OperationContext = nil, time.Second, "silence"
		if err := auto.Recognize(id, rec); err != nil {
			return err
		}
		failed, err := cbs.event("Microsoft.Communication.RecognizeFailed", "silence")
		if err != nil {
			return err
		}
		if resultCode(failed) != "400/8510" {
			return fmt.Errorf("RecognizeFailed %v", failed)
		}
		// ACS caps a choices recognition's initial silence at 20 s; en-US only.
		rec.InitialSilenceTimeout = 30 * time.Second
		if err := auto.Recognize(id, rec); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("30 s of initial silence: %v", err)
		}
		rec.InitialSilenceTimeout, rec.Language = 5*time.Second, "de-DE"
		if err := auto.Recognize(id, rec); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("de-DE: %v", err)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "billing.ul", "HOLD_MS", "9000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// has reports whether a callback of type typ was sent.
func has(cbs *fakeCallbacks, typ string) bool {
	for _, ty := range cbs.types() {
		if ty == typ {
			return true
		}
	}
	return false
}

// holdEnv is a bot with media and a second carrier trunk for added participants.
func holdEnv(t *testing.T) (*env, *calls.Automation, *fakePublisher, *fakeCallbacks, int) {
	t.Helper()
	md := mediaDeps(t)
	c2Port := freePort(t, carrier2IP)
	e, auto, pub, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
		deps:   func(d *sip.Deps) { d.Media = md },
	}, true)
	return e, auto, pub, cbs, c2Port
}

// window counts what the sink receives in d: all packets and the audible ones.
func (s *rtpSink) window(d time.Duration) (pkts, loud int) {
	p1, l1, _ := s.counts()
	time.Sleep(d)
	p2, l2, _ := s.counts()
	return p2 - p1, l2 - l1
}

// TestBotHoldParticipant: two people on a bot call (a SIPp caller sending silence, and an
// added participant, SIPp through carrier2, whose SDP names the test's media socket). Before
// the hold the caller's (silent) audio reaches the participant; holding the participant
// re-INVITEs it with a=sendonly (its scenario checks), and from then on it hears only the
// music (audible packets, none of the caller's silent ones);
// unhold (a=sendrecv) brings the caller's audio back and stops the music.
func TestBotHoldParticipant(t *testing.T) {
	e, auto, pub, cbs, c2Port := holdEnv(t)
	ctx := context.Background()
	wav := sineWAV(500 * time.Millisecond)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(wav) }))
	defer files.Close()
	sink := newRTPSink(t)
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas_held.xml", "RTP_IP", carrierIP,
		"RTP_PORT", strconv.Itoa(sink.conn.LocalAddr().(*net.UDPAddr).Port)), "-m", "1", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 8*time.Second)
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
	eventually(t, "the caller's audio relayed to the participant", func() bool { p, _, _ := sink.counts(); return p > 25 })
	if _, loud, _ := sink.counts(); loud != 0 {
		t.Fatalf("%d audible packets before the hold", loud)
	}
	if err := auto.Hold(id, calls.HoldParams{Target: calls.Phone(farNumber), Music: &calls.PlaySource{Kind: calls.FileSource, URI: files.URL + "/m.wav"},
		Op: calls.OperationParams{OperationContext: "hold"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the hold music", func() bool { _, loud, _ := sink.counts(); return loud > 25 })
	if pkts, loud := sink.window(time.Second); loud < 40 || pkts-loud > 2 {
		t.Fatalf("held: %d packets in 1 s, %d audible (music); want only the music", pkts, loud)
	}
	// (Music on a call with two people mixes it, as any media operation does: the caller's
	// packets then reach the mix, which feeds no one but the caller's own player, and the
	// held participant's player sends only the music.)
	if err := auto.Unhold(id, calls.Phone(farNumber), calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if pkts, loud := sink.window(time.Second); loud > 2 || pkts-loud < 40 {
		t.Fatalf("unheld: %d packets in 1 s, %d audible; want the caller's silence, no music", pkts, loud)
	}
	if has(cbs, "Microsoft.Communication.HoldFailed") {
		t.Fatal("HoldFailed")
	}
	caller.wait(t, 30*time.Second)
	if err := auto.HangUp(ctx, id); err != nil { // the participant is alone with the app
		t.Fatal(err)
	}
	far.wait(t, 20*time.Second)
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotHoldRefused: a participant refusing the hold re-INVITE (488) → HoldFailed 488 with
// the operationContext, and it is off hold: the caller's audio reaches it again.
func TestBotHoldRefused(t *testing.T) {
	e, auto, pub, cbs, c2Port := holdEnv(t)
	ctx := context.Background()
	sink := newRTPSink(t)
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas_hold_refuse.xml", "RTP_IP", carrierIP,
		"RTP_PORT", strconv.Itoa(sink.conn.LocalAddr().(*net.UDPAddr).Port)), "-m", "1", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.caller(t, 5*time.Second)
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
	if err := auto.Hold(id, calls.HoldParams{Target: calls.Phone(farNumber), Op: calls.OperationParams{OperationContext: "hold"}}); err != nil {
		t.Fatal(err)
	}
	failed, err := cbs.event("Microsoft.Communication.HoldFailed", "hold")
	if err != nil {
		t.Fatal(err)
	}
	if resultCode(failed) != "488/0" {
		t.Fatalf("HoldFailed %v", failed)
	}
	if pkts, _ := sink.window(500 * time.Millisecond); pkts < 15 {
		t.Fatalf("%d packets in 500 ms after the refused hold: the caller's audio should flow again", pkts)
	}
	caller.wait(t, 30*time.Second)
	if err := auto.HangUp(ctx, id); err != nil { // the participant is alone with the app
		t.Fatal(err)
	}
	far.wait(t, 20*time.Second)
}

// TestBotRecognizeTones: choices picked by key and speechOrDtmf answered by key. SIPp presses
// 1, 2, # 600 ms apart (RFC 4733): 1 picks the choice whose tone is one (200/8533, no
// recognizedPhrase); 2 is no choice's tone (RecognizeFailed 400/8534); # ends a speechOrDtmf
// recognition as a DTMF one (recognitionType dtmf, tones [pound], 200/8531).
func TestBotRecognizeTones(t *testing.T) {
	const pcaps = "/usr/share/sip-tester"
	if _, err := os.Stat(pcaps + "/dtmf_2833_1.pcap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("SIPp's dtmf_2833 pcaps are not installed")
	}
	md := asrDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		id := conn.CallConnectionID
		choices := calls.RecognizeParams{Kind: calls.RecognizeChoices, Target: caller, InitialSilenceTimeout: 10 * time.Second, InterruptPrompt: true,
			Choices: []calls.Choice{{Label: "billing", Phrases: []string{"billing"}, Tone: "one"}, {Label: "sales", Phrases: []string{"sales"}, Tone: "three"}},
			Op:      calls.OperationParams{OperationContext: "one"}}
		if err := untilConnected(func() error { return auto.Recognize(id, choices) }); err != nil {
			return err
		}
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "one")
		if err != nil {
			return err
		}
		if b, _ := json.Marshal(done["choiceResult"]); string(b) != `{"label":"billing"}` || resultCode(done) != "200/8533" || done["recognitionType"] != "choices" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		choices.Op.OperationContext = "two"
		if err := auto.Recognize(id, choices); err != nil {
			return err
		}
		failed, err := cbs.event("Microsoft.Communication.RecognizeFailed", "two")
		if err != nil {
			return err
		}
		if resultCode(failed) != "400/8534" {
			return fmt.Errorf("RecognizeFailed %v", failed)
		}
		if err := auto.Recognize(id, calls.RecognizeParams{Kind: calls.RecognizeSpeechOrDTMF, Target: caller, MaxTones: 1, InterToneTimeout: 2 * time.Second,
			InitialSilenceTimeout: 10 * time.Second, EndSilence: time.Second, Op: calls.OperationParams{OperationContext: "pound"}}); err != nil {
			return err
		}
		done, err = cbs.event("Microsoft.Communication.RecognizeCompleted", "pound")
		if err != nil {
			return err
		}
		if b, _ := json.Marshal(done["dtmfResult"]); string(b) != `{"tones":["pound"]}` || resultCode(done) != "200/8531" || done["recognitionType"] != "dtmf" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_dtmf.xml", "PCAP_DIR", pcaps, "WAIT_MS", "2000", "HOLD_MS", "2000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotRecognizeSpeech: open speech recognition (pocketsphinx's language model) of
// espeak-ng saying a sentence → RecognizeCompleted, recognitionType speech, some words (open
// dictation of 8 kHz audio is weak: the words are logged, not checked).
func TestBotRecognizeSpeech(t *testing.T) {
	md := asrDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	if err := os.WriteFile(filepath.Join(e.dir, "said.ul"), spokenULaw(t, time.Second, "I would like to pay my bill"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		rec := calls.RecognizeParams{Kind: calls.RecognizeSpeech, Target: calls.Phone(otherNumber), InitialSilenceTimeout: 10 * time.Second,
			EndSilence: 700 * time.Millisecond, Op: calls.OperationParams{OperationContext: "talk"}}
		if err := untilConnected(func() error { return auto.Recognize(conn.CallConnectionID, rec) }); err != nil {
			return err
		}
		start := time.Now()
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "talk")
		t.Logf("RecognizeCompleted %v after the recognition began", time.Since(start).Round(time.Millisecond))
		if err != nil {
			return err
		}
		sr, _ := done["speechResult"].(map[string]any)
		if text, _ := sr["speech"].(string); text == "" || done["recognitionType"] != "speech" || resultCode(done) != "200/8545" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		t.Logf("heard %q", sr["speech"])
		return nil
	})
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "said.ul", "HOLD_MS", "8000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}
