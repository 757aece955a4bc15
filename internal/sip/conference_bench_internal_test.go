package sip

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestConferenceCost measures what a conference costs in telgw's media path, per participant
// and 20 ms frame: each participant is a loopback RTP peer (a UDP socket sending a 20 ms PCMU
// tone frame every 20 ms and reading what telgw sends) on a real bridge.UDPLeg of a bot call
// whose parties joined as addParticipant's do (botCall.join: relayParty read loops, receivers,
// the mix on the players' shared pacing, the players' writes). The process's CPU time
// (getrusage) is taken over the window, once with the conferences and once with the same peers
// sending to each other in pairs without telgw (the peers' own cost), and the difference is
// divided by participants × frames. SIP signalling is not in it (it costs nothing per frame).
//
//	TELGW_BENCH_CONF=20x3,1x10 [TELGW_BENCH_SECONDS=10] go test ./internal/sip -run TestConferenceCost -v
//
// (20 conferences of 3 and one of 10, each measured on its own.)
func TestConferenceCost(t *testing.T) {
	spec := os.Getenv("TELGW_BENCH_CONF")
	if spec == "" {
		t.Skip("TELGW_BENCH_CONF (e.g. 20x3,1x10) runs the conference cost harness")
	}
	secs := 10
	if s := os.Getenv("TELGW_BENCH_SECONDS"); s != "" {
		secs, _ = strconv.Atoi(s)
	}
	for _, one := range strings.Split(spec, ",") {
		var confs, size int
		if _, err := fmt.Sscanf(one, "%dx%d", &confs, &size); err != nil || confs < 1 || size < 3 {
			t.Fatalf("TELGW_BENCH_CONF %q: want NxM, M ≥ 3", one)
		}
		window := time.Duration(secs) * time.Second
		base := peersOnly(t, confs*size, window)
		mixed, st := conferences(t, confs, size, window)
		frames := float64(confs*size) * window.Seconds() * 50
		t.Logf("%d conferences of %d: %.2f µs CPU per participant per 20 ms frame in telgw's media path "+
			"(process %.2f s, peers alone %.2f s, over %v); pacing: %d packets, %d late (>10 ms), %d skipped",
			confs, size, (mixed-base).Seconds()*1e6/frames, mixed.Seconds(), base.Seconds(), window, st.Packets, st.Late, st.Skipped)
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPeer is one participant's phone: it sends a tone frame every 20 ms to to (once known)
// and reads (and counts) what arrives.
type benchPeer struct {
	conn *net.UDPConn
	to   atomic.Pointer[net.UDPAddr]
	got  atomic.Uint64
}

func newBenchPeer(t *testing.T) *benchPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &benchPeer{conn: c}
}

func (p *benchPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// run sends and reads until stop; the tone's frequency is freq.
func (p *benchPeer) run(stop <-chan struct{}, freq float64, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, err := p.conn.Read(buf); err != nil {
				return
			}
			p.got.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		pcm := make([]int16, audio.FrameSamples)
		pkt := make([]byte, 12+audio.FrameSamples)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		ssrc := uint32(freq * 1000)
		for n := uint32(0); ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			to := p.to.Load()
			if to == nil {
				continue
			}
			for i := range pcm {
				pcm[i] = int16(3000 * math.Sin(2*math.Pi*freq*float64(int(n)*audio.FrameSamples+i)/8000))
			}
			h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(n), Timestamp: n * audio.FrameSamples, SSRC: ssrc}
			hn, _ := h.MarshalTo(pkt)
			pl := audio.PCMU.Encode(pkt[hn:hn], pcm)
			_, _ = p.conn.WriteToUDP(pkt[:hn+len(pl)], to)
		}
	}()
}

// peersOnly runs n peers in pairs, each sending to the other, for window: the CPU the peers
// themselves cost.
func peersOnly(t *testing.T, n int, window time.Duration) time.Duration {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	peers := make([]*benchPeer, n)
	for i := range peers {
		peers[i] = newBenchPeer(t)
	}
	for i, p := range peers {
		o := peers[i^1]
		if i^1 >= n {
			o = peers[0]
		}
		p.to.Store(net.UDPAddrFromAddrPort(o.addr()))
		p.run(stop, 300+float64(i%20)*97, &wg)
	}
	time.Sleep(time.Second) // settle, then measure a window
	start := cpuTime(t)
	time.Sleep(window)
	used := cpuTime(t) - start
	close(stop)
	for _, p := range peers {
		_ = p.conn.Close()
	}
	wg.Wait()
	return used
}

// conferences runs confs bot calls of size people each (joined one by one, as addParticipant
// joins them) for window and returns the process's CPU time over it and the pacing counters.
func conferences(t *testing.T, confs, size int, window time.Duration) (time.Duration, rtpmedia.Stats) {
	t.Helper()
	relay, err := bridge.New(bridge.Config{MediaTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := rtpmedia.NewScheduler(rtpmedia.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	env := &callEnv{m: m, log: slog.New(slog.DiscardHandler), mediaDeps: &MediaDeps{Scheduler: sched}}
	pcmu := sdp.Codec{PT: 0, Name: "PCMU", Rate: 8000}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bots []*botCall
	var legs []*bridge.UDPLeg
	var peers []*benchPeer
	for c := range confs {
		b := &botCall{env: env, codec: pcmu, wake: make(chan struct{}, 1), over: make(chan struct{})}
		bots = append(bots, b)
		for i := range size {
			leg, err := relay.NewUDPLeg()
			if err != nil {
				t.Fatal(err)
			}
			p := newBenchPeer(t)
			leg.SetRemote(p.addr())
			p.to.Store(net.UDPAddrFromAddrPort(leg.Local()))
			p.run(stop, 300+float64(i)*97, &wg)
			pt := &party{p: calls.Phone(fmt.Sprintf("+1202555%04d", c*100+i)), leg: leg, ended: make(chan struct{}),
				info: mediaInfo{codec: pcmu}, bye: func(context.Context) {}, mark: func(string) {}}
			if !b.join(pt, false) {
				t.Fatal("join refused")
			}
			legs = append(legs, leg)
			peers = append(peers, p)
		}
	}
	time.Sleep(time.Second) // settle (receivers fill, players start), then measure a window
	start := cpuTime(t)
	time.Sleep(window)
	used := cpuTime(t) - start
	st := sched.Stats()
	for _, b := range bots {
		b.close()
	}
	for _, l := range legs {
		_ = l.Close()
	}
	close(stop)
	for _, p := range peers {
		if p.got.Load() == 0 {
			t.Errorf("a peer heard nothing")
		}
		_ = p.conn.Close()
	}
	wg.Wait()
	return used, st
}
