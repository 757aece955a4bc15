package webrtc

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
)

// fakeBrowser is a pion PeerConnection configured like Chromium's audio (opus first, then G.711,
// telephone-event at 48000 and 8000 with Chromium's payload type numbers), standing in for a
// browser in Go tests.
type fakeBrowser struct {
	t     testing.TB
	pc    *pion.PeerConnection
	track *localTrack
	seq   uint16

	mu      sync.Mutex
	rxAudio atomic.Int64
	rxDTMF  atomic.Int64
	digits  []string
	dtmfPT  uint8
	audioPT uint8

	connected chan struct{}
	readDone  chan struct{}
}

// chromeCodecs mirrors Chromium's audio offer (BROWSER-TESTS.md).
func chromeCodecs(withG711 bool) []pion.RTPCodecParameters {
	c := []pion.RTPCodecParameters{
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
	}
	if withG711 {
		c = append(c,
			pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
			pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
		)
	}
	return append(c,
		pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000}, PayloadType: 110},
		pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000}, PayloadType: 126},
	)
}

func newFakeBrowser(t testing.TB, withG711 bool) *fakeBrowser {
	t.Helper()
	m := &pion.MediaEngine{}
	for _, c := range chromeCodecs(withG711) {
		if err := m.RegisterCodec(c, pion.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	s := pion.SettingEngine{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	s.LoggerFactory = lf
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	api := pion.NewAPI(pion.WithMediaEngine(m), pion.WithSettingEngine(s))
	pc, err := api.NewPeerConnection(pion.Configuration{BundlePolicy: pion.BundlePolicyMaxBundle})
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBrowser{t: t, pc: pc, track: &localTrack{audioPT: 0, dtmfPT: 126}, connected: make(chan struct{}), readDone: make(chan struct{})}
	if _, err := pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		if s == pion.PeerConnectionStateConnected {
			once.Do(func() { close(b.connected) })
		}
	})
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		defer close(b.readDone)
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				if p == nil && strings.Contains(err.Error(), "EOF") {
					return
				}
				if p == nil {
					continue
				}
			}
			b.mu.Lock()
			dtmfPT := b.dtmfPT
			b.mu.Unlock()
			if p.PayloadType == dtmfPT {
				b.rxDTMF.Add(1)
				if d, err := ParseDTMF(p.Payload); err == nil && d.End {
					b.mu.Lock()
					b.digits = append(b.digits, d.Digit())
					b.mu.Unlock()
				}
			} else {
				b.rxAudio.Add(1)
			}
		}
	})
	t.Cleanup(func() { _ = pc.Close() })
	return b
}

// createOffer returns the browser's complete (non-trickle) offer.
func (b *fakeBrowser) createOffer() string {
	b.t.Helper()
	off, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	g := pion.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(off); err != nil {
		b.t.Fatal(err)
	}
	<-g
	return b.pc.LocalDescription().SDP
}

// answer answers telgw's offer.
func (b *fakeBrowser) answer(offer string) string {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		b.t.Fatal(err)
	}
	ans, err := b.pc.CreateAnswer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	g := pion.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(ans); err != nil {
		b.t.Fatal(err)
	}
	<-g
	sdp := b.pc.LocalDescription().SDP
	// Answer with the RFC 3264 §6.1 direction, as Chromium does (pion's own answer keeps the
	// transceiver's direction).
	od, err := inspect(offer)
	if err != nil {
		b.t.Fatal(err)
	}
	sdp = rewriteDirection(sdp, od.direction.answerTo())
	b.learn(sdp)
	return sdp
}

func (b *fakeBrowser) setAnswer(answer string) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer}); err != nil {
		b.t.Fatal(err)
	}
	b.learn(answer)
}

// learn takes the negotiated payload types from a description of the session.
func (b *fakeBrowser) learn(sdp string) {
	ad, err := inspect(sdp)
	if err != nil {
		b.t.Fatal(err)
	}
	m, _ := ad.pick(nil)
	b.mu.Lock()
	b.audioPT, b.dtmfPT = m.PayloadType, m.DTMFPayloadType
	b.mu.Unlock()
	b.track.setPayloadTypes(m.PayloadType, m.DTMFPayloadType)
}

// send writes n 20 ms G.711 packets.
func (b *fakeBrowser) send(n int) {
	b.mu.Lock()
	pt := b.audioPT
	b.mu.Unlock()
	for i := 0; i < n; i++ {
		b.seq++
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: b.seq, Timestamp: uint32(b.seq) * 160, PayloadType: pt},
			Payload: make([]byte, 160)}
		if _, err := b.track.write(p, pt); err != nil {
			b.t.Error(err)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sendDigit writes an RFC 4733 event: three updates, then three end packets (§2.5.1.4).
func (b *fakeBrowser) sendDigit(digit rune) {
	b.mu.Lock()
	pt := b.dtmfPT
	b.mu.Unlock()
	for _, p := range dtmfPackets(digit, pt, &b.seq, 1000) {
		if _, err := b.track.write(p, pt); err != nil {
			b.t.Error(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dtmfPackets builds an RFC 4733 §2.5 event: updates with a growing duration, then the final
// packet sent three times with the E bit.
func dtmfPackets(digit rune, pt uint8, seq *uint16, ts uint32) []*rtp.Packet {
	ev, _ := DTMFEvent(digit)
	var out []*rtp.Packet
	for i := 1; i <= 6; i++ {
		*seq++
		d := DTMF{Event: ev, Volume: 10, Duration: uint16(min(i, 4) * 160), End: i > 3}
		out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: *seq, Timestamp: ts, PayloadType: pt, Marker: i == 1},
			Payload: d.Marshal()})
	}
	return out
}

func (b *fakeBrowser) waitConnected(ctx context.Context) {
	b.t.Helper()
	select {
	case <-b.connected:
	case <-ctx.Done():
		b.t.Fatal("fake browser: not connected")
	}
}

func (b *fakeBrowser) close() {
	_ = b.pc.Close()
}

// socketCount counts this process's open socket file descriptors.
func socketCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// waitSockets waits until the socket count drops back to base.
func waitSockets(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := socketCount(t)
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("open sockets: %d, baseline %d", n, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
