package rtpmedia

import (
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
)

// udpWriter is a plain RTP leg: its own UDP socket sending to the peer, as bridge.UDPLeg does.
type udpWriter struct {
	c  *net.UDPConn
	to *net.UDPAddr
}

func (u udpWriter) WriteRTP(p []byte) error {
	_, err := u.c.WriteToUDP(p, u.to)
	return err
}

// TestConcurrentPlayers is the play benchmark of issue 12: N calls each playing a looped prompt
// on its own UDP socket to a loopback peer, for a few seconds. It reports the packets sent
// late by the scheduler (more than 10 ms after their due time) and, at the receiving end, the
// packets arriving more than 10 ms behind their stream's best-case schedule (seq × 20 ms).
//
//	TELGW_BENCH_PLAYERS=500 TELGW_BENCH_SECONDS=10 [TELGW_BENCH_RT=10] go test ./internal/media/rtpmedia -run TestConcurrentPlayers -v
//
// Figures on the 2-core development machine (shared with other jobs), medians of 3 runs: see
// docs/MEDIA.md.
func TestConcurrentPlayers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TELGW_BENCH_PLAYERS"))
	if n == 0 {
		t.Skip("set TELGW_BENCH_PLAYERS to run")
	}
	secs, _ := strconv.Atoi(os.Getenv("TELGW_BENCH_SECONDS"))
	if secs == 0 {
		secs = 10
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = sink.SetReadBuffer(8 << 20)
	type stream struct{ offs []int64 }
	var mu sync.Mutex
	streams := map[uint32]*stream{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			k, err := sink.Read(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if _, err := h.Unmarshal(buf[:k]); err != nil {
				continue
			}
			mu.Lock()
			s := streams[h.SSRC]
			if s == nil {
				s = &stream{}
				streams[h.SSRC] = s
			}
			// Timestamps start at 0 and do not wrap within a run: the offset from the
			// sampling clock (8 kHz, 125 µs a unit) is what a receiver's jitter buffer sees.
			s.offs = append(s.offs, now-int64(h.Timestamp)*125_000)
			mu.Unlock()
		}
	}()

	cfg := DefaultConfig()
	cfg.RealtimePriority, _ = strconv.Atoi(os.Getenv("TELGW_BENCH_RT"))
	s, err := NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prompt := make([]int16, 8000*3)
	for i := range prompt {
		prompt[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	to := sink.LocalAddr().(*net.UDPAddr)
	var players []*Player
	var conns []*net.UDPConn
	for i := range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		p := s.NewPlayer(udpWriter{c, to}, PlayerConfig{Codec: audio.PCMU, SSRC: uint32(i + 1)})
		p.Enqueue(&Play{PCM: prompt, Loop: true}, false)
		players = append(players, p)
	}
	// Measure after one second of warm-up (setting up 500 sockets is not what is measured).
	time.Sleep(time.Second)
	st0 := s.Stats()
	time.Sleep(time.Duration(secs) * time.Second)
	for _, p := range players {
		p.Close()
	}
	st := s.Stats()
	st.Packets -= st0.Packets
	st.Late -= st0.Late
	st.Skipped -= st0.Skipped
	s.Close()
	time.Sleep(100 * time.Millisecond)
	_ = sink.Close()
	wg.Wait()
	for _, c := range conns {
		_ = c.Close()
	}

	var recv, late10, late20 int
	var worst int64
	var all []int64
	for _, s := range streams {
		base := slices.Min(s.offs)
		for i, o := range s.offs {
			if i < 50 || i >= 50*(secs+1) {
				continue // warm-up and wind-down
			}
			d := o - base
			all = append(all, d)
			recv++
			if d > int64(10*time.Millisecond) {
				late10++
			}
			if d > int64(20*time.Millisecond) {
				late20++
			}
			worst = max(worst, d)
		}
	}
	slices.Sort(all)
	p99 := time.Duration(0)
	if len(all) > 0 {
		p99 = time.Duration(all[len(all)*99/100])
	}
	pct := func(a, b uint64) float64 { return 100 * float64(a) / math.Max(1, float64(b)) }
	t.Logf("realtime priority %d (error: %v)", cfg.RealtimePriority, st.RealtimeErr)
	t.Logf("%d players × %d s: sent %d (expected %d), scheduler late >10ms %d (%.3f %%), max %v, skipped slots %d",
		n, secs, st.Packets, n*secs*50, st.Late, pct(st.Late, st.Packets), st.MaxLate.Round(time.Microsecond), st.Skipped)
	t.Logf("received %d (%.2f %% lost); arrival behind schedule >10ms %d (%.3f %%), >20ms %d (%.3f %%), p99 %v, max %v",
		recv, 100-pct(uint64(recv), st.Packets), late10, pct(uint64(late10), uint64(recv)), late20, pct(uint64(late20), uint64(recv)),
		p99.Round(time.Microsecond), time.Duration(worst).Round(time.Microsecond))
}
