package sip

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// loopPeer is a person's phone on a bot call's UDP leg: it sends a sine at freq every 20 ms
// (its own SSRC) and keeps what it hears (decoded) and the SSRCs it heard.
type loopPeer struct {
	name  string
	freq  float64
	conn  *net.UDPConn
	mu    sync.Mutex
	heard []int16
	ssrcs []uint32 // in order of first appearance
	pkts  int
}

func newLoopPeer(t *testing.T, name string, freq float64, leg *bridge.UDPLeg) *loopPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &loopPeer{name: name, freq: freq, conn: c}
	leg.SetRemote(c.LocalAddr().(*net.UDPAddr).AddrPort())
	to := net.UDPAddrFromAddrPort(leg.Local())
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	go func() {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			hn, err := h.Unmarshal(buf[:n])
			if err != nil || h.PayloadType != 0 {
				continue
			}
			p.mu.Lock()
			p.pkts++
			if len(p.ssrcs) == 0 || p.ssrcs[len(p.ssrcs)-1] != h.SSRC {
				p.ssrcs = append(p.ssrcs, h.SSRC)
			}
			p.heard = audio.PCMU.Decode(p.heard, buf[hn:n])
			p.mu.Unlock()
		}
	}()
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]int16, audio.FrameSamples)
		pkt := make([]byte, 12+audio.FrameSamples)
		for n := uint32(0); ; n++ {
			<-tick.C
			for i := range frame {
				frame[i] = int16(4000 * math.Sin(2*math.Pi*freq*float64(int(n)*audio.FrameSamples+i)/8000))
			}
			h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(n), Timestamp: n * audio.FrameSamples, SSRC: 0x5eed0000 + uint32(freq)}
			hn, _ := h.MarshalTo(pkt)
			pl := audio.PCMU.Encode(pkt[hn:hn], frame)
			if _, err := c.WriteToUDP(pkt[:hn+len(pl)], to); err != nil {
				return
			}
		}
	}()
	return p
}

// level listens for 400 ms (after 100 ms) and returns the amplitude heard at f (Goertzel), or
// -1 when fewer than 400 ms of audio arrived within a second.
func (p *loopPeer) level(t *testing.T, fs ...float64) []float64 {
	t.Helper()
	p.mu.Lock()
	p.heard = p.heard[:0]
	p.mu.Unlock()
	const skip, want = 800, 800 + 3200
	var pcm []int16
	for deadline := time.Now().Add(2 * time.Second); pcm == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		if len(p.heard) >= want {
			pcm = append([]int16(nil), p.heard[skip:want]...)
		}
		p.mu.Unlock()
	}
	out := make([]float64, len(fs))
	for k, f := range fs {
		if pcm == nil {
			out[k] = -1
			continue
		}
		var re, im float64
		for i, s := range pcm {
			w := 2 * math.Pi * f * float64(i) / 8000
			re += float64(s) * math.Cos(w)
			im -= float64(s) * math.Sin(w)
		}
		out[k] = 2 * math.Hypot(re, im) / float64(len(pcm))
	}
	return out
}

// hears fails the test unless p hears each of yes and none of no.
func (p *loopPeer) hears(t *testing.T, what string, yes []*loopPeer, no []*loopPeer) {
	t.Helper()
	var fs []float64
	for _, o := range append(append([]*loopPeer(nil), yes...), no...) {
		fs = append(fs, o.freq)
	}
	lv := p.level(t, fs...)
	for i, o := range yes {
		if lv[i] < 1500 {
			t.Errorf("%s: %s does not hear %s (%.0f)", what, p.name, o.name, lv[i])
		}
	}
	for i, o := range no {
		if l := lv[len(yes)+i]; l > 400 {
			t.Errorf("%s: %s hears %s (%.0f)", what, p.name, o.name, l)
		}
	}
}

// confCall is a bot call of the media path only (no signalling): people join and leave as
// addParticipant's legs and hang-ups make them.
type confCall struct {
	b     *botCall
	relay *bridge.Relay
}

func newConfCall(t *testing.T) *confCall {
	t.Helper()
	relay, err := bridge.New(bridge.Config{MediaTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := rtpmedia.NewScheduler(rtpmedia.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sched.Close)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	env := &callEnv{m: m, log: slog.New(slog.DiscardHandler), mediaDeps: &MediaDeps{Scheduler: sched}}
	b := &botCall{env: env, codec: sdp.Codec{PT: 0, Name: "PCMU", Rate: 8000}, wake: make(chan struct{}, 1), over: make(chan struct{})}
	t.Cleanup(b.close)
	return &confCall{b: b, relay: relay}
}

// add joins a person speaking at freq; hangUp makes their leg end as a BYE would.
func (cc *confCall) add(t *testing.T, name string, freq float64) (pt *party, p *loopPeer, hangUp func()) {
	t.Helper()
	leg, err := cc.relay.NewUDPLeg()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = leg.Close() })
	ended := make(chan struct{})
	pt = &party{p: calls.Phone(fmt.Sprintf("+1202555%04d", int(freq))), leg: leg, ended: ended,
		info: mediaInfo{codec: sdp.Codec{PT: 0, Name: "PCMU", Rate: 8000}}, bye: func(context.Context) {}, mark: func(string) {}}
	p = newLoopPeer(t, name, freq, leg)
	if !cc.b.join(pt, false) {
		t.Fatal("join refused")
	}
	return pt, p, func() {
		close(ended)
		cc.b.reap()
	}
}

// TestConferenceSwitchHoldLeave: two people are relayed (each hears the other's own stream);
// the app's first media operation toward one switches the call to mixing (each then hears one
// new SSRC, the player's, and the other's voice through the mix); a held person is neither
// heard nor sent the mix; a third joins mixed; one leaving keeps the others mixed; a muted one
// is not heard.
func TestConferenceSwitchHoldLeave(t *testing.T) {
	cc := newConfCall(t)
	a, pa, _ := cc.add(t, "A", 700)
	b, pb, _ := cc.add(t, "B", 1100)
	pa.hears(t, "relayed", []*loopPeer{pb}, []*loopPeer{pa})
	pa.mu.Lock()
	relayed := append([]uint32(nil), pa.ssrcs...)
	pa.mu.Unlock()
	if len(relayed) != 1 || relayed[0] != 0x5eed0000+1100 {
		t.Fatalf("relayed: A heard SSRCs %x, want B's own", relayed)
	}

	cc.b.mu.Lock()
	pm, err := cc.b.mediaForLocked(b.p, "playTo", "play")
	cc.b.mu.Unlock()
	if err != nil || pm == nil || cc.b.conf == nil {
		t.Fatalf("media toward B on a call with two: %v", err)
	}
	pa.hears(t, "mixed", []*loopPeer{pb}, []*loopPeer{pa})
	pb.hears(t, "mixed", []*loopPeer{pa}, []*loopPeer{pb})
	pa.mu.Lock()
	ssrcs := append([]uint32(nil), pa.ssrcs...)
	pa.mu.Unlock()
	if len(ssrcs) != 2 || ssrcs[0] != relayed[0] {
		t.Fatalf("after the switch A heard SSRCs %x, want B's then one of telgw's", ssrcs)
	}

	// On hold: B is not heard and is sent nothing (its hold music would play on its player).
	b.held.Store(true)
	pa.hears(t, "B held", nil, []*loopPeer{pb})
	pb.mu.Lock()
	before := pb.pkts
	pb.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	pb.mu.Lock()
	after := pb.pkts
	pb.mu.Unlock()
	if after-before > 1 {
		t.Errorf("B on hold was sent %d packets of the mix in 200 ms", after-before)
	}
	b.held.Store(false)
	pa.hears(t, "B back", []*loopPeer{pb}, []*loopPeer{pa})

	_, pc, cLeaves := cc.add(t, "C", 1500)
	pa.hears(t, "three", []*loopPeer{pb, pc}, []*loopPeer{pa})
	pc.hears(t, "three", []*loopPeer{pa, pb}, []*loopPeer{pc})
	cLeaves()
	pb.hears(t, "C left", []*loopPeer{pa}, []*loopPeer{pb, pc})
	if cc.b.Mute(a.p) != nil {
		t.Fatal("mute")
	}
	pb.hears(t, "A muted", nil, []*loopPeer{pa, pb, pc})
	pa.hears(t, "A muted", []*loopPeer{pb}, []*loopPeer{pa, pc})
	pa.mu.Lock()
	n := len(pa.ssrcs)
	pa.mu.Unlock()
	if n != 2 {
		t.Errorf("A heard %d SSRCs in all, want 2 (B's relayed, then telgw's mix)", n)
	}
}
