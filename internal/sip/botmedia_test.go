package sip_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// mediaDeps are bot media as the app builds them: FileSource fetches go through the SSRF
// guard's client, here allowing loopback (webhooks.allowPrivate) for the test's file server.
func mediaDeps(t *testing.T) *sip.MediaDeps {
	t.Helper()
	sched, err := rtpmedia.NewScheduler(rtpmedia.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sched.Close)
	g := &events.Guard{AllowPrivate: true}
	f, err := playsrc.New(g.Client(5*time.Second), playsrc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	md := &sip.MediaDeps{Scheduler: sched, Fetcher: f}
	es, err := speech.NewEspeak(speech.DefaultEspeakConfig())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("espeak-ng: %v", err)
	}
	md.Synth = es
	return md
}

// sineWAV is a PCM16 8 kHz mono WAV of a 440 Hz tone lasting d.
func sineWAV(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/8000))))
	}
	return b
}

// rtpSink is the caller's media socket: it counts the RTP telgw sends.
type rtpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts int
	loud int // audio packets with a non-silent payload
	pt   map[uint8]int
	done chan struct{}
}

func newRTPSink(t *testing.T) *rtpSink {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(carrierIP)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(16 << 20) // the load harness sends every call's prompt here
	s := &rtpSink{conn: c, pt: map[uint8]int{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			hn, err := h.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.pkts++
			s.pt[h.PayloadType]++
			if h.PayloadType == 0 {
				for _, v := range buf[hn:n] {
					if v != 0xFF && v != 0x7F { // μ-law ±0
						s.loud++
						break
					}
				}
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-s.done })
	return s
}

func (s *rtpSink) counts() (pkts, loud int, pt map[uint8]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[uint8]int{}
	for k, v := range s.pt {
		m[k] = v
	}
	return s.pkts, s.loud, m
}

// event waits for the callback of type typ whose operationContext is opCtx and returns its data.
func (f *fakeCallbacks) event(typ, opCtx string) (map[string]any, error) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for _, e := range f.evs {
			if e.Type != typ {
				continue
			}
			b, _ := json.Marshal(e.Data)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["operationContext"] == opCtx || opCtx == "" && m["operationContext"] == nil {
				f.mu.Unlock()
				return m, nil
			}
		}
		f.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no %s (%s); callbacks %v", typ, opCtx, f.types())
}

// untilConnected retries op while the call is still connecting (409).
func untilConnected(op func() error) error {
	for i := 0; ; i++ {
		err := op()
		if problem.KindOf(err) != problem.KindConflict || i > 200 {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func resultCode(m map[string]any) string {
	ri, _ := m["resultInformation"].(map[string]any)
	return fmt.Sprintf("%v/%v", ri["code"], ri["subCode"])
}

// TestBotPlay: the app answers a SIPp caller and plays a WAV served over HTTP, then text
// through espeak-ng; the caller's media socket receives the prompts' RTP (about one packet per
// 20 ms, not silence). A looped play is canceled by cancelAllMediaOperations.
func TestBotPlay(t *testing.T) {
	md := mediaDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	wav := sineWAV(time.Second)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/notaudio.wav" {
			_, _ = w.Write([]byte("<html>not audio</html>"))
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
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
		start := time.Now()
		defer func() { t.Logf("the app's part took %v", time.Since(start)) }()
		if err := untilConnected(func() error {
			return auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: files.URL + "/hello.wav"}},
				Targets: []calls.Participant{caller}, Op: calls.OperationParams{OperationContext: "file"}})
		}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.PlayStarted", "file"); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.PlayCompleted", "file"); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		pkts, loud, _ := sink.counts()
		if pkts < 45 || pkts > 56 || loud < 45 {
			return fmt.Errorf("a 1 s prompt arrived as %d packets (%d not silent), want ≈50", pkts, loud)
		}
		// playToAll: the one person on the call.
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.TextSource, Text: "Welcome to telgw.", VoiceName: "en-US-JennyNeural"}},
			Op: calls.OperationParams{OperationContext: "text"}}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.PlayCompleted", "text"); err != nil {
			return err
		}
		if p2, _, _ := sink.counts(); p2-pkts < 25 {
			return fmt.Errorf("the spoken prompt arrived as %d packets", p2-pkts)
		}
		// A file that is not audio fails; a looped play runs until canceled.
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: files.URL + "/notaudio.wav"}},
			Op: calls.OperationParams{OperationContext: "bad"}}); err != nil {
			return err
		}
		if failed, err := cbs.event("Microsoft.Communication.PlayFailed", "bad"); err != nil || resultCode(failed) != "400/8535" {
			return fmt.Errorf("PlayFailed of a file that is not audio: %v %v", failed, err)
		}
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: "http://127.0.0.1:1/none.wav"}},
			Op: calls.OperationParams{OperationContext: "unreachable"}}); err != nil {
			return err
		}
		failed, err := cbs.event("Microsoft.Communication.PlayFailed", "unreachable")
		if err != nil {
			return err
		}
		if got := resultCode(failed); got != "400/8536" {
			return fmt.Errorf("PlayFailed %s", got)
		}
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: files.URL + "/hello.wav"}}, Loop: true,
			Op: calls.OperationParams{OperationContext: "loop"}}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.PlayStarted", "loop"); err != nil {
			return err
		}
		if err := auto.CancelMedia(id); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.PlayCanceled", "loop"); err != nil {
			return err
		}
		// sendDtmfTones: RFC 4733 events (payload type 101, as the caller offered) reach the caller.
		if err := auto.SendDTMF(id, caller, []string{"one", "two"}, calls.OperationParams{OperationContext: "dtmf"}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.SendDtmfTonesCompleted", "dtmf"); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		if _, _, pt := sink.counts(); pt[101] < 10 {
			return fmt.Errorf("%d telephone-event packets for two tones", pt[101])
		}
		// An app flooding plays is refused past the queue's bound.
		refused := 0
		for i := 0; i < 40; i++ {
			err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.FileSource, URI: files.URL + "/hello.wav"}}, Op: calls.OperationParams{OperationContext: "flood"}})
			if problem.KindOf(err) == problem.KindConflict {
				refused++
			} else if err != nil {
				return err
			}
		}
		if refused < 8 {
			return fmt.Errorf("%d of 40 queued plays refused", refused)
		}
		if err := auto.CancelMedia(id); err != nil {
			return err
		}
		// Bad requests name their field.
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: "ssml"}}}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("ssml: %v", err)
		}
		if err := auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.TextSource, Text: "x"}}, Targets: []calls.Participant{calls.Phone("+14155550199")}}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("play to a stranger: %v", err)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_listen.xml", "RTP_IP", carrierIP, "RTP_PORT", strconv.Itoa(sink.conn.LocalAddr().(*net.UDPAddr).Port), "HOLD_MS", "8000"),
		"4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotRecognizeDTMF: SIPp presses 1, 2, # (RFC 4733 packets from its pcaps) while the app
// collects tones with # as the stop tone behind a spoken prompt → RecognizeCompleted with
// [one two]; sendDtmfTones reaches the caller; silence fails with 8510; cancel cancels.
func TestBotRecognizeDTMF(t *testing.T) {
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
		rec := calls.RecognizeParams{Target: caller, MaxTones: 5, StopTones: []string{"pound"}, InterToneTimeout: 5 * time.Second,
			InitialSilenceTimeout: 10 * time.Second, InterruptPrompt: true,
			Prompt: []calls.PlaySource{{Kind: calls.TextSource, Text: "Please enter your code, then press pound."}},
			Op:     calls.OperationParams{OperationContext: "code"}}
		if err := untilConnected(func() error { return auto.Recognize(id, rec) }); err != nil {
			return err
		}
		if err := auto.Recognize(id, rec); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("a second recognition: %v", err)
		}
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "code")
		if err != nil {
			return err
		}
		b, _ := json.Marshal(done["dtmfResult"])
		if string(b) != `{"tones":["one","two"]}` || done["recognitionType"] != "dtmf" || resultCode(done) != "200/8514" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		if err := auto.SendDTMF(id, caller, []string{"one", "pound"}, calls.OperationParams{OperationContext: "send"}); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.SendDtmfTonesCompleted", "send"); err != nil {
			return err
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
		rec.InitialSilenceTimeout, rec.Op.OperationContext = 10*time.Second, "cancel"
		if err := auto.Recognize(id, rec); err != nil {
			return err
		}
		if err := auto.CancelMedia(id); err != nil {
			return err
		}
		if _, err := cbs.event("Microsoft.Communication.RecognizeCanceled", "cancel"); err != nil {
			return err
		}
		if err := auto.SendDTMF(id, caller, []string{"ten"}, calls.OperationParams{}); problem.KindOf(err) != problem.KindInvalid {
			return errors.New("a bad tone was accepted")
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_dtmf.xml", "PCAP_DIR", pcaps, "WAIT_MS", "2500", "HOLD_MS", "5000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotCreateCallPlay: on a call the app placed, a spoken prompt reaches the callee (SIPp
// echoing RTP: the echo comes back to the app's side, where it is counted) with the payload
// types the callee answered.
func TestBotCreateCallPlay(t *testing.T) {
	md := mediaDeps(t)
	const far = "+12025550142"
	c2Port := freePort(t, carrier2IP)
	e, auto, _, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
		deps:   func(d *sip.Deps) { d.Media = md },
	}, true)
	ctx := context.Background()
	callee := e.start("carrier2", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	conn, err := auto.CreateCall(ctx, calls.CreateCallParams{Target: calls.Phone(far), SourceCallerID: ourNumber, CallbackURI: appURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cbs.event("Microsoft.Communication.CallConnected", ""); err != nil {
		t.Fatal(err)
	}
	app := map[string]string{"kind": "rtp", "result": "app"}
	before := e.counter("telgw_callautomation_media_packets_total", app)
	if err := untilConnected(func() error {
		return auto.Play(conn.CallConnectionID, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.TextSource, Text: "Hello from telgw."}},
			Op: calls.OperationParams{OperationContext: "hello"}})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cbs.event("Microsoft.Communication.PlayCompleted", "hello"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the prompt echoed back", func() bool {
		return e.counter("telgw_callautomation_media_packets_total", app)-before >= 25
	})
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	callee.wait(t, 20*time.Second)
}

// dtmfULaw is raw μ-law audio: lead of silence, then each key as a 120 ms dual tone (ITU-T
// Q.23 frequencies, about -10 dBm0 per tone) with 120 ms of silence after it.
func dtmfULaw(lead time.Duration, keys string) []byte {
	freqs := map[byte][2]float64{'1': {697, 1209}, '2': {697, 1336}, '#': {941, 1477}}
	var pcm []int16
	pcm = append(pcm, make([]int16, int(lead.Seconds()*8000))...)
	for i := range keys {
		f := freqs[keys[i]]
		for j := 0; j < 960; j++ {
			x := float64(j) / 8000
			pcm = append(pcm, int16(5000*(math.Sin(2*math.Pi*f[0]*x)+math.Sin(2*math.Pi*f[1]*x))))
		}
		pcm = append(pcm, make([]int16, 960)...)
	}
	pcm = append(pcm, make([]int16, 8000)...)
	return audio.PCMU.Encode(nil, pcm)
}

// TestBotRecognizeInband: a caller without telephone-event presses 1, 2, # as in-band tones
// in its G.711 audio (SIPp streaming them) → RecognizeCompleted [one two].
func TestBotRecognizeInband(t *testing.T) {
	md := mediaDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	if err := os.WriteFile(filepath.Join(e.dir, "keys.ul"), dtmfULaw(2500*time.Millisecond, "12#"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		rec := calls.RecognizeParams{Target: calls.Phone(otherNumber), MaxTones: 5, StopTones: []string{"pound"}, InterToneTimeout: 5 * time.Second,
			InitialSilenceTimeout: 10 * time.Second, InterruptPrompt: true, Op: calls.OperationParams{OperationContext: "inband"}}
		if err := untilConnected(func() error { return auto.Recognize(conn.CallConnectionID, rec) }); err != nil {
			return err
		}
		done, err := cbs.event("Microsoft.Communication.RecognizeCompleted", "inband")
		if err != nil {
			return err
		}
		if b, _ := json.Marshal(done["dtmfResult"]); string(b) != `{"tones":["one","two"]}` || resultCode(done) != "200/8514" {
			return fmt.Errorf("RecognizeCompleted %v", done)
		}
		// No telephone-event negotiated: sendDtmfTones cannot be served.
		if err := auto.SendDTMF(conn.CallConnectionID, calls.Phone(otherNumber), []string{"one"}, calls.OperationParams{}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("sendDtmfTones without telephone-event: %v", err)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "keys.ul", "HOLD_MS", "6000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}
