package sip_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
	"github.com/telgw/telgw/internal/sip"
)

// TestBotMediaLatency measures, end to end on one bot call, how long after the caller acts the
// app's callback is sent (handed to the webhook sender; the HTTP POST to the app comes after):
//
//   - DTMF: the first RFC 4733 packet of a digit leaves the caller's socket →
//     ContinuousDtmfRecognitionToneReceived, and → RecognizeCompleted of a one-tone DTMF
//     recognition;
//   - speech: the packet with the last audible sample of espeak-ng saying "billing" leaves the
//     caller (end of the utterance; silence follows) → RecognizeCompleted of a choices
//     recognition. This includes
//     the choices' 1 s of end silence (the endpointer's wait) and pocketsphinx's run.
//
// The caller is SIPp for signalling (uac_listen.xml) and the test's own UDP socket for media,
// so the send times are exact. Skipped unless TELGW_BENCH_LATENCY is set (rounds per figure):
//
//	TELGW_BENCH_LATENCY=20 go test ./internal/sip -run TestBotMediaLatency -v
//
// Figures (docs/MEDIA.md, 2-core machine shared with other jobs, medians of 3 runs × 20):
// ToneReceived 0.13 ms, RecognizeCompleted (dtmf) 0.8 ms, RecognizeCompleted (choices) 1.144 s
// of which 1 s is the end silence.
func TestBotMediaLatency(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("TELGW_BENCH_LATENCY"))
	if rounds <= 0 {
		t.Skip("set TELGW_BENCH_LATENCY to the rounds per figure")
	}
	md := asrDeps(t)
	e, auto, pub, cbs := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Media = md }}, true)
	media, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(carrierIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = media.Close() }()
	said := spokenULaw(t, 0, "billing")
	// The utterance ends at its last audible sample (spokenULaw's trailing second of silence
	// and espeak-ng's own quiet tail cut off: the test streams its own silence after it).
	pcm := audio.PCMU.Decode(nil, said)
	end := len(pcm)
	for end > 0 && pcm[end-1] < 300 && pcm[end-1] > -300 {
		end--
	}
	said = said[:end]
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		id := conn.CallConnectionID
		// A short prompt tells the test where telgw's media for the caller is.
		if err := untilConnected(func() error {
			return auto.Play(id, calls.PlayParams{Sources: []calls.PlaySource{{Kind: calls.TextSource, Text: "Hi."}}, Op: calls.OperationParams{OperationContext: "hi"}})
		}); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		_ = media.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, telgw, err := media.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		_ = media.SetReadDeadline(time.Time{})
		go func() { // drain what telgw sends
			for {
				if _, _, err := media.ReadFromUDP(buf); err != nil {
					return
				}
			}
		}()
		if _, err := cbs.event("Microsoft.Communication.PlayCompleted", "hi"); err != nil {
			return err
		}
		tx := &rtpTx{conn: media, to: telgw, ssrc: 0x1234, seq: 1, ts: 160, digitCh: make(chan dtmf.Tone), sentCh: make(chan time.Time), spoken: make(chan time.Time, 1)}
		// Silence keeps flowing, as from a phone, between the measured events.
		stop := make(chan struct{})
		defer close(stop)
		speak := make(chan []byte)
		go tx.stream(stop, speak)

		var cont, rec, asr []time.Duration
		if err := auto.StartContinuousDTMF(id, caller, calls.OperationParams{OperationContext: "cont"}); err != nil {
			return err
		}
		for i := range rounds {
			n := cbs.count("Microsoft.Communication.ContinuousDtmfRecognitionToneReceived")
			sent := tx.digit(dtmf.Tone(i % 10))
			d, err := cbs.waitCount("Microsoft.Communication.ContinuousDtmfRecognitionToneReceived", n+1, sent, true)
			if err != nil {
				return err
			}
			cont = append(cont, d)
			time.Sleep(200 * time.Millisecond)
		}
		if err := auto.StopContinuousDTMF(id, caller, calls.OperationParams{}); err != nil {
			return err
		}
		for i := range rounds {
			n := cbs.count("Microsoft.Communication.RecognizeCompleted")
			if err := auto.Recognize(id, calls.RecognizeParams{Target: caller, MaxTones: 1, InterToneTimeout: 2 * time.Second,
				InitialSilenceTimeout: 10 * time.Second, Op: calls.OperationParams{OperationContext: "dtmf" + strconv.Itoa(i)}}); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			sent := tx.digit(dtmf.Tone(i % 10))
			d, err := cbs.waitCount("Microsoft.Communication.RecognizeCompleted", n+1, sent, true)
			if err != nil {
				return err
			}
			rec = append(rec, d)
			time.Sleep(200 * time.Millisecond)
		}
		for i := range rounds {
			n := cbs.count("Microsoft.Communication.RecognizeCompleted")
			ctx := "speech" + strconv.Itoa(i)
			if err := auto.Recognize(id, calls.RecognizeParams{Kind: calls.RecognizeChoices, Target: caller, InitialSilenceTimeout: 10 * time.Second,
				Choices: []calls.Choice{{Label: "billing", Phrases: []string{"billing"}}, {Label: "sales", Phrases: []string{"sales"}}},
				Op:      calls.OperationParams{OperationContext: ctx}}); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			speak <- said
			ended := <-tx.spoken
			d, err := cbs.waitCount("Microsoft.Communication.RecognizeCompleted", n+1, ended, false)
			if err != nil {
				return err
			}
			done, _ := cbs.event("Microsoft.Communication.RecognizeCompleted", ctx)
			if b, _ := json.Marshal(done["choiceResult"]); string(b) != `{"label":"billing","recognizedPhrase":"billing"}` {
				return fmt.Errorf("round %d: %v", i, done)
			}
			asr = append(asr, d)
		}
		t.Logf("DTMF → ContinuousDtmfRecognitionToneReceived: %s", stats(cont))
		t.Logf("DTMF → RecognizeCompleted (dtmf, 1 tone):     %s", stats(rec))
		t.Logf("end of \"billing\" → RecognizeCompleted (choices, 1 s end silence included): %s", stats(asr))
		return auto.HangUp(context.Background(), id)
	})
	// SIPp only signals; the app hangs up at the end (SIPp's own BYE never comes: it is killed).
	e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac_listen.xml", "RTP_IP", carrierIP,
		"RTP_PORT", strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port), "HOLD_MS", "600000"),
		e.addr, "-s", "4155550100", "-key", "caller", otherNumber, "-m", "1", "-timeout", "900s", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	wait()
}

func stats(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("median %v, min %v, max %v (n=%d)", s[len(s)/2].Round(10*time.Microsecond), s[0].Round(10*time.Microsecond),
		s[len(s)-1].Round(10*time.Microsecond), len(s))
}

// count is how many callbacks of type typ were sent.
func (f *fakeCallbacks) count(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// waitCount waits until n callbacks of type typ were sent and returns the time since since;
// spin polls without sleeping (a short sleep rounds up to about 1 ms, hiding the DTMF figures;
// the speech figure is polled every millisecond so the spinning does not take a core from
// pocketsphinx).
func (f *fakeCallbacks) waitCount(typ string, n int, since time.Time, spin bool) (time.Duration, error) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if f.count(typ) >= n {
			return time.Since(since), nil
		}
		if spin {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	return 0, fmt.Errorf("no %s #%d; callbacks %v", typ, n, f.types())
}

// rtpTx is the caller's media: 20 ms μ-law frames (silence unless speaking) and RFC 4733
// digits (payload type 101, as uac_listen.xml offers).
type rtpTx struct {
	conn    *net.UDPConn
	to      netip.AddrPort
	ssrc    uint32
	seq     uint16
	ts      uint32
	digitCh chan dtmf.Tone
	sentCh  chan time.Time
	spoken  chan time.Time
}

func (x *rtpTx) send(pt uint8, marker bool, ts uint32, payload []byte) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: x.seq, Timestamp: ts, SSRC: x.ssrc}, Payload: payload}
	x.seq++
	b, _ := p.Marshal()
	_, _ = x.conn.WriteToUDPAddrPort(b, x.to)
}

// digit sends tone's events (100 ms, RFC 4733 §2.5) on the pacing goroutine and returns when
// its first packet left.
func (x *rtpTx) digit(t dtmf.Tone) time.Time {
	x.digitCh <- t
	return <-x.sentCh
}

// stream paces the caller's media until stop: silence, a digit's events when asked, or the
// speech handed on speak (its end time reported on spoken).
func (x *rtpTx) stream(stop <-chan struct{}, speak <-chan []byte) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	silence := make([]byte, audio.FrameSamples)
	for i := range silence {
		silence[i] = 0xFF
	}
	var events []dtmf.Packet
	var eventTS uint32
	var talk []byte
	for {
		select {
		case <-stop:
			return
		case t := <-x.digitCh:
			events, eventTS = dtmf.Packets(t, 800, 160, 10), x.ts
			x.sentCh <- time.Now()
			x.send(101, events[0].Marker, eventTS, events[0].Event.Append(nil))
			events = events[1:]
			continue
		case s := <-speak:
			talk = s
		case <-tick.C:
		}
		switch {
		case len(events) > 0:
			x.send(101, events[0].Marker, eventTS, events[0].Event.Append(nil))
			events = events[1:]
		case len(talk) > 0:
			n := min(len(talk), audio.FrameSamples)
			x.send(0, false, x.ts, talk[:n])
			talk = talk[n:]
			if len(talk) == 0 {
				x.spoken <- time.Now()
			}
		default:
			x.send(0, false, x.ts, silence)
		}
		x.ts += audio.FrameSamples
	}
}
