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
			Prompt: []calls.PlaySource{{Kind: calls.SSMLSource, SSML: `<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Say billing, sales or support. <break time="300ms"/> You can also press two for sales, at any time while this long message plays.</voice></speak>`}},
			Op:     calls.OperationParams{OperationContext: "menu"}}
		if err := untilConnected(func() error { return auto.Recognize(id, rec) }); err != nil {
			return err
		}
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "menu")
		if err != nil {
			failed, _ := cbs.event("Microsoft.Communication.RecognizeFailed", "menu")
			return fmt.Errorf("%w: %v", err, failed)
		}
		b, _ := json.Marshal(done["choiceResult"])
		if string(b) != `{"label":"billing","recognizedPhrase":"billing"}` || done["recognitionType"] != "choices" || resultCode(done) != "200/8545" {
			return fmt.Errorf("RecognizeCompleted %v", done)
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
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "billing.ul", "HOLD_MS", "5000"), "4155550100", otherNumber)
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
