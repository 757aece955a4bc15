package kamailio

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MediaOptions shape a media run. Zero fields take the documented defaults.
type MediaOptions struct {
	// Calls is the number of calls, all up at once once ramped. Default 100.
	Calls int
	// Rate is the call rate of the ramp-up (calls/s). Default 100.
	Rate int
	// Hold is how long each call streams RTP (both directions). Default 30 s.
	Hold time.Duration
}

// MediaResult is what a media run measured. Packets are G.711 (PCMU, 20 ms, 160 bytes).
type MediaResult struct {
	// Calls were placed; Failed did not complete; WithMedia had RTP arrive in both directions.
	Calls, Failed, WithMedia int
	// Concurrent is the peak number of calls streaming at once.
	Concurrent int
	// Sent left the caller side; AtCallee arrived at the callee side (which echoes each
	// back); BackAtCaller arrived back at the caller side.
	Sent, AtCallee, BackAtCaller int64
	// P99 is the 99th percentile setup latency of the run.
	P99 time.Duration
}

// LossToCallee is the fraction of packets lost caller → callee.
func (r MediaResult) LossToCallee() float64 { return lossOf(r.Sent, r.AtCallee) }

// LossToCaller is the fraction of packets lost callee → caller (of those echoed).
func (r MediaResult) LossToCaller() float64 { return lossOf(r.AtCallee, r.BackAtCaller) }

// Loss is the fraction lost over both directions: 1 − back/(2·sent − (sent − at callee)),
// i.e. lost packets over packets put on the wire by either side.
func (r MediaResult) Loss() float64 {
	wire := r.Sent + r.AtCallee
	return lossOf(wire, r.AtCallee+r.BackAtCaller)
}

func lossOf(sent, got int64) float64 {
	if sent <= 0 {
		return 0
	}
	return float64(sent-got) / float64(sent)
}

const (
	rtpPacket   = 20 * time.Millisecond
	rtpPayload  = 160
	rtpHeader   = 12
	socketBytes = 8 << 20
)

// Media places o.Calls calls through target and, from the moment each call's 200 OK names the
// target's media address, streams PCMU from the caller side for o.Hold. The callee side
// echoes every packet back to where it came from (the target's callee-leg address), so RTP
// crosses the target both ways; both sides count what arrives, by SSRC (one per call).
func Media(ctx context.Context, target string, p Parties, o MediaOptions) (MediaResult, error) {
	if o.Calls == 0 {
		o.Calls = 100
	}
	if o.Rate == 0 {
		o.Rate = 100
	}
	if o.Hold == 0 {
		o.Hold = 30 * time.Second
	}
	a, err := listenMedia(p.CallerIP)
	if err != nil {
		return MediaResult{}, err
	}
	defer a.Close()
	b, err := listenMedia(p.CalleeIP)
	if err != nil {
		return MediaResult{}, err
	}
	defer b.Close()
	m := &mediaRun{a: a, b: b, hold: o.Hold, streams: map[uint32]*stream{},
		seenA: make([]atomic.Bool, o.Calls+1), seenB: make([]atomic.Bool, o.Calls+1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.echo() }()
	go func() { defer wg.Done(); m.receive() }()
	res, err := runCalls(ctx, target, p, callOptions{
		calls: o.Calls, rate: o.Rate, hold: o.Hold + time.Second, logs: true,
		mediaA: a.LocalAddr().(*net.UDPAddr), mediaB: b.LocalAddr().(*net.UDPAddr),
		tag: fmt.Sprintf("media%d", o.Calls),
	}, func(dir string) {
		wg.Add(1)
		go func() { defer wg.Done(); m.follow(ctx, dir) }()
		wg.Add(1)
		go func() { defer wg.Done(); m.send(ctx) }()
	})
	time.Sleep(500 * time.Millisecond) // the last echoes in flight
	cancel()
	_ = a.SetReadDeadline(time.Now())
	_ = b.SetReadDeadline(time.Now())
	wg.Wait()
	if err != nil {
		return MediaResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	with := 0
	for i := range m.seenA {
		if m.seenA[i].Load() && m.seenB[i].Load() {
			with++
		}
	}
	return MediaResult{
		Calls: o.Calls, Failed: res.failed, WithMedia: with, Concurrent: m.peak,
		Sent: m.sent.Load(), AtCallee: m.atB.Load(), BackAtCaller: m.atA.Load(),
		P99: percentile(res.rtts, 0.99),
	}, nil
}

func listenMedia(ip string) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	// Best effort: the kernel caps these at net.core.[rw]mem_max.
	_ = c.SetReadBuffer(socketBytes)
	_ = c.SetWriteBuffer(socketBytes)
	return c, nil
}

type stream struct {
	dst   *net.UDPAddr
	start time.Time
	sent  int
}

type mediaRun struct {
	a, b            *net.UDPConn
	hold            time.Duration
	sent, atA, atB  atomic.Int64
	mu              sync.Mutex
	streams         map[uint32]*stream
	seenA, seenB    []atomic.Bool // by SSRC, which is SIPp's call number
	peak            int
	followed, ended int
}

// follow tails the caller's SIPp log for "MEDIA <call> <ip> <port>" lines (one per answered
// call) and starts a stream for each.
func (m *mediaRun) follow(ctx context.Context, dir string) {
	var f *os.File
	for f == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		names, _ := globOne(dir, "uac_*_logs.log")
		if names != "" {
			f, _ = os.Open(names)
		}
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial string
	for {
		line, err := r.ReadString('\n')
		partial += line
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		m.start(strings.TrimSpace(partial))
		partial = ""
	}
}

func (m *mediaRun) start(line string) {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "MEDIA" {
		return
	}
	call, err1 := strconv.ParseUint(f[1], 10, 32)
	port, err2 := strconv.Atoi(f[3])
	ip := net.ParseIP(f[2])
	if err1 != nil || err2 != nil || ip == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.streams[uint32(call)]; ok {
		return // a retransmitted 200 logged twice
	}
	m.streams[uint32(call)] = &stream{dst: &net.UDPAddr{IP: ip, Port: port}, start: time.Now()}
	m.followed++
	m.peak = max(m.peak, m.followed-m.ended)
}

// send paces every stream at one packet per 20 ms from its start, for the hold time.
func (m *mediaRun) send(ctx context.Context) {
	total := int(m.hold / rtpPacket)
	buf := make([]byte, rtpHeader+rtpPayload)
	for i := rtpHeader; i < len(buf); i++ {
		buf[i] = 0xff // μ-law silence
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	type due struct {
		ssrc uint32
		s    *stream
		n    int
	}
	var batch []due
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		batch = batch[:0]
		m.mu.Lock()
		for ssrc, s := range m.streams {
			if s.sent >= total {
				continue
			}
			n := min(int(now.Sub(s.start)/rtpPacket)+1, total) - s.sent
			if n > 0 {
				batch = append(batch, due{ssrc, s, n})
			}
		}
		m.mu.Unlock()
		for _, d := range batch {
			for range d.n {
				// RFC 3550 §5.1: V=2, PT 0 (PCMU), sequence and timestamp per packet.
				buf[0], buf[1] = 0x80, 0
				binary.BigEndian.PutUint16(buf[2:], uint16(d.s.sent))
				binary.BigEndian.PutUint32(buf[4:], uint32(d.s.sent*rtpPayload))
				binary.BigEndian.PutUint32(buf[8:], d.ssrc)
				if _, err := m.a.WriteToUDP(buf, d.s.dst); err == nil {
					m.sent.Add(1)
				}
				d.s.sent++
			}
			if d.s.sent >= total {
				m.mu.Lock()
				m.ended++
				m.mu.Unlock()
			}
		}
	}
}

// echo counts what reaches the callee side and returns it to its source.
func (m *mediaRun) echo() {
	buf := make([]byte, 2048)
	for {
		n, from, err := m.b.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < rtpHeader || buf[0]>>6 != 2 {
			continue // RTCP from the target, or noise
		}
		if buf[1]&0x7f >= 72 && buf[1]&0x7f <= 76 {
			continue
		}
		m.atB.Add(1)
		mark(m.seenB, binary.BigEndian.Uint32(buf[8:]))
		_, _ = m.b.WriteToUDP(buf[:n], from)
	}
}

// receive counts what comes back to the caller side.
func (m *mediaRun) receive() {
	buf := make([]byte, 2048)
	for {
		n, _, err := m.a.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < rtpHeader || buf[0]>>6 != 2 || (buf[1]&0x7f >= 72 && buf[1]&0x7f <= 76) {
			continue
		}
		m.atA.Add(1)
		mark(m.seenA, binary.BigEndian.Uint32(buf[8:]))
	}
}

// mark notes that a stream's packets arrived; SSRCs a target rewrote fall outside and are not
// counted as calls with media.
func mark(seen []atomic.Bool, ssrc uint32) {
	if int64(ssrc) < int64(len(seen)) {
		seen[ssrc].Store(true)
	}
}
