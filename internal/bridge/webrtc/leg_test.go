package webrtc

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/telgw/telgw/internal/bridge"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The leg plugs into the plain RTP relay of package bridge.
var _ bridge.Leg = (*Leg)(nil)

func testEngine(t testing.TB, mod func(*Config)) *Engine {
	t.Helper()
	cfg := Config{IPs: []string{"127.0.0.1"}, IncludeLoopback: true, ConnectTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewEngine(cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reader drains a leg like the bridge does, counting audio and DTMF and collecting digits.
type reader struct {
	mu     sync.Mutex
	audio  int
	dtmf   int
	digits []string
	done   chan struct{}
}

func readLeg(l *Leg) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			p, err := l.ReadPacket()
			if err != nil {
				return
			}
			m := l.Media()
			r.mu.Lock()
			switch {
			case p.PayloadType == m.PayloadType:
				r.audio++
			case m.HasDTMF() && p.PayloadType == m.DTMFPayloadType:
				r.dtmf++
				if d, err := ParseDTMF(p.Payload); err == nil && d.End {
					r.digits = append(r.digits, d.Digit())
				}
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) counts() (int, int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.audio, r.dtmf, append([]string(nil), r.digits...)
}

func waitEvent(t *testing.T, l *Leg, want EventKind, within time.Duration) Event {
	t.Helper()
	select {
	case ev := <-l.Events():
		if ev.Kind != want {
			t.Fatalf("event %v (%v), want %v", ev.Kind, ev.Err, want)
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no %v event within %v", want, within)
	}
	return Event{}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exchange sends audio and a digit each way and checks both ends counted them.
func exchange(t *testing.T, l *Leg, b *fakeBrowser, r *reader) {
	t.Helper()
	const n = 50
	b.send(n)
	b.sendDigit('5')
	m := l.Media()
	var seq uint16 = 1000
	for i := 0; i < n; i++ {
		seq++
		if err := l.WritePacket(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, PayloadType: m.PayloadType, SSRC: 42}, Payload: make([]byte, 160)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, p := range dtmfPackets('#', m.DTMFPayloadType, &seq, 99999) {
		if err := l.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "RTP both ways", func() bool {
		a, d, _ := r.counts()
		return a >= n && d >= 6 && b.rxAudio.Load() >= n && b.rxDTMF.Load() >= 6
	})
	a, d, digits := r.counts()
	b.mu.Lock()
	bDigits := append([]string(nil), b.digits...)
	b.mu.Unlock()
	if !contains(digits, "5") || !contains(bDigits, "#") {
		t.Fatalf("digits: telgw got %v, browser got %v", digits, bDigits)
	}
	st := l.Stats()
	t.Logf("telgw rx audio=%d dtmf=%d; browser rx audio=%d dtmf=%d; stats %+v", a, d, b.rxAudio.Load(), b.rxDTMF.Load(), st)
	if st.PacketsSent < n+6 || st.PacketsReceived < n+6 {
		t.Fatalf("stats %+v", st)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestAnswerBrowserOffer(t *testing.T) {
	base := socketCount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := testEngine(t, nil)
	b := newFakeBrowser(t, true)
	offer := b.createOffer()
	l, answer, err := e.Answer(ctx, offer, LegOptions{CallID: "answer"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"UDP/TLS/RTP/SAVPF", "a=fingerprint:", "a=rtcp-mux", "a=group:BUNDLE", "a=candidate:", "a=rtpmap:0 PCMU/8000", "a=rtpmap:126 telephone-event/8000"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	for _, unwanted := range []string{"opus", "PCMA", "telephone-event/48000"} {
		if strings.Contains(answer, unwanted) {
			t.Errorf("answer has %q:\n%s", unwanted, answer)
		}
	}
	if m := l.Media(); m.Codec != PCMU || m.PayloadType != 0 || m.DTMFPayloadType != 126 || m.Direction != SendRecv {
		t.Fatalf("media %+v", m)
	}
	b.setAnswer(answer)
	r := readLeg(l)
	waitEvent(t, l, EventConnected, 10*time.Second)
	b.waitConnected(ctx)
	exchange(t, l, b, r)

	// Hold from the browser (re-INVITE with a=sendonly): telgw answers recvonly and stops sending.
	off, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.pc.SetLocalDescription(off); err != nil {
		t.Fatal(err)
	}
	held, err := l.Reanswer(ctx, rewriteDirection(b.pc.LocalDescription().SDP, SendOnly))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(held, "a=recvonly") || l.Media().Direction != SendOnly {
		t.Fatalf("hold answer direction (media %+v):\n%s", l.Media(), held)
	}
	b.setAnswer(held)
	before := l.Stats()
	if err := l.WritePacket(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0}, Payload: make([]byte, 160)}); err != nil {
		t.Fatal(err)
	}
	if after := l.Stats(); after.PacketsSent != before.PacketsSent || after.PacketsDropped != before.PacketsDropped+1 {
		t.Fatalf("write while held: before %+v after %+v", before, after)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-r.done
	if _, err := l.ReadPacket(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadRTP after Close: %v", err)
	}
	if err := l.WritePacket(&rtp.Packet{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRTP after Close: %v", err)
	}
	b.close()
	waitSockets(t, base)
}

func TestOfferToBrowser(t *testing.T) {
	base := socketCount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := testEngine(t, func(c *Config) { c.Codecs = []string{PCMA, PCMU} })
	l, offer, err := e.Offer(ctx, LegOptions{CallID: "offer"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer, "a=rtpmap:101 telephone-event/8000") || !strings.Contains(offer, "a=setup:actpass") {
		t.Fatalf("offer:\n%s", offer)
	}
	b := newFakeBrowser(t, true)
	answer := b.answer(offer)
	if err := l.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	if m := l.Media(); m.Codec != PCMA || m.PayloadType != 8 || m.DTMFPayloadType != 101 {
		t.Fatalf("media %+v\n%s", m, answer)
	}
	r := readLeg(l)
	waitEvent(t, l, EventConnected, 10*time.Second)
	b.waitConnected(ctx)
	exchange(t, l, b, r)

	// telgw puts the browser on hold with a=inactive, then resumes.
	hold, err := l.Reoffer(ctx, Inactive)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hold, "a=inactive") || strings.Contains(hold, "a=sendrecv") {
		t.Fatalf("hold offer:\n%s", hold)
	}
	if err := l.SetAnswer(b.answer(hold)); err != nil {
		t.Fatal(err)
	}
	if d := l.Media().Direction; d != Inactive {
		t.Fatalf("direction after hold: %s", d)
	}
	resume, err := l.Reoffer(ctx, SendRecv)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetAnswer(b.answer(resume)); err != nil {
		t.Fatal(err)
	}
	if d := l.Media().Direction; d != SendRecv {
		t.Fatalf("direction after resume: %s", d)
	}
	_ = l.Close()
	<-r.done
	b.close()
	waitSockets(t, base)
}

func TestPeerMediaRenumbering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := testEngine(t, nil)
	b := newFakeBrowser(t, true)
	l, answer, err := e.Answer(ctx, b.createOffer(), LegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b.setAnswer(answer)
	// The carrier leg numbers telephone-event 101; the browser 126.
	l.SetPeerMedia(Media{Codec: PCMU, PayloadType: 0, DTMFPayloadType: 101})
	waitEvent(t, l, EventConnected, 10*time.Second)
	b.waitConnected(ctx)
	var seq uint16
	for _, p := range dtmfPackets('7', 101, &seq, 1) {
		if err := l.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "renumbered DTMF at the browser", func() bool { return b.rxDTMF.Load() >= 6 })
	b.sendDigit('3')
	for {
		p, err := l.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if p.PayloadType == 101 {
			break
		}
		if p.PayloadType == 126 {
			t.Fatal("ReadRTP kept the browser's payload type")
		}
	}
}

func TestRejectedOffers(t *testing.T) {
	e := testEngine(t, nil)
	good := newFakeBrowser(t, true).createOffer()
	opusOnly := newFakeBrowser(t, false).createOffer()
	var noFP []string
	for _, line := range strings.Split(good, "\r\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			noFP = append(noFP, line)
		}
	}
	for _, tc := range []struct {
		name  string
		offer string
		want  error
	}{
		{"no fingerprint", strings.Join(noFP, "\r\n"), ErrNoFingerprint},
		{"no G.711", opusOnly, ErrNoG711},
		{"plain RTP", strings.ReplaceAll(good, "UDP/TLS/RTP/SAVPF", "RTP/AVP"), ErrNotWebRTC},
		{"garbage", "not sdp", ErrBadSDP},
		{"video only", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", ErrNoAudio},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := socketCount(t)
			l, _, err := e.Answer(context.Background(), tc.offer, LegOptions{})
			if l != nil {
				_ = l.Close()
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrNotAcceptable) {
				t.Fatalf("err = %v, want %v (and ErrNotAcceptable)", err, tc.want)
			}
			waitSockets(t, base)
		})
	}
	// A PCMA-only leg (the carrier chose A-law) refuses a PCMU-only offer.
	pcmuOnly := strings.ReplaceAll(good, "a=rtpmap:8 PCMA/8000\r\n", "")
	pcmuOnly = strings.Replace(pcmuOnly, " 0 8 ", " 0 ", 1)
	if _, _, err := e.Answer(context.Background(), pcmuOnly, LegOptions{Codecs: []string{PCMA}}); !errors.Is(err, ErrNoG711) {
		t.Fatalf("PCMA-only leg: %v", err)
	}
}

func TestICENeverCompletes(t *testing.T) {
	base := socketCount(t)
	e := testEngine(t, func(c *Config) { c.ConnectTimeout = time.Second })
	b := newFakeBrowser(t, true)
	offer := b.createOffer()
	b.close() // the browser vanishes: no connectivity checks will ever succeed
	start := time.Now()
	l, _, err := e.Answer(context.Background(), offer, LegOptions{CallID: "ice-timeout"})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, l, EventFailed, 5*time.Second)
	if !errors.Is(ev.Err, ErrConnectTimeout) {
		t.Fatalf("failed with %v", ev.Err)
	}
	<-l.Done()
	t.Logf("failed after %v", time.Since(start).Round(time.Millisecond))
	if _, err := l.ReadPacket(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadRTP on failed leg: %v", err)
	}
	_ = l.Close()
	waitSockets(t, base)
}

func TestMediaTimeout(t *testing.T) {
	base := socketCount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := testEngine(t, func(c *Config) { c.MediaTimeout = 500 * time.Millisecond })
	b := newFakeBrowser(t, true)
	l, answer, err := e.Answer(ctx, b.createOffer(), LegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.setAnswer(answer)
	r := readLeg(l)
	waitEvent(t, l, EventConnected, 10*time.Second)
	// The browser connected but sends no RTP.
	ev := waitEvent(t, l, EventFailed, 5*time.Second)
	if !errors.Is(ev.Err, ErrMediaTimeout) {
		t.Fatalf("failed with %v", ev.Err)
	}
	<-r.done
	_ = l.Close()
	b.close()
	waitSockets(t, base)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := NewEngine(Config{Codecs: []string{"opus"}, PortMin: 10, IPs: []string{"nope"}, DTMFPayloadType: 13}, nil, nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"opus", "port range", "nope", "dtmfPayloadType"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
