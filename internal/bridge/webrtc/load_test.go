package webrtc

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestLoad runs N concurrent echoed calls (fake browser → leg → back) at 50 packets/s for 10 s
// and reports CPU per call, heap per call, set-up p99 and loss. Both ends run in this process,
// so the CPU figure is an upper bound for telgw's side. Run with TELGW_WEBRTC_LOAD=N.
func TestLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TELGW_WEBRTC_LOAD"))
	if n == 0 {
		t.Skip("set TELGW_WEBRTC_LOAD=N to run N concurrent calls")
	}
	const dur = 10 * time.Second
	e := testEngine(t, func(c *Config) { c.ConnectTimeout = 30 * time.Second })
	type call struct {
		l     *Leg
		b     *fakeBrowser
		setup time.Duration
	}
	calls := make([]call, n)
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			b := newFakeBrowser(t, true)
			l, ans, err := e.Answer(context.Background(), b.createOffer(), LegOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			b.setAnswer(ans)
			<-l.Events()
			calls[i] = call{l: l, b: b, setup: time.Since(start)}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	for _, c := range calls {
		wg.Add(2)
		go func() { // echo at telgw
			defer wg.Done()
			for {
				p, err := c.l.ReadPacket()
				if err != nil {
					return
				}
				_ = c.l.WritePacket(p)
			}
		}()
		go func() { // the browser talks at 50 packets/s
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			var seq uint16
			for time.Since(start) < dur {
				<-tick.C
				seq++
				_, _ = c.b.track.write(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)}, 0)
			}
		}()
	}
	time.Sleep(dur + 500*time.Millisecond)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	elapsed := time.Since(start)
	var sent, echoed uint64
	var setups []time.Duration
	for _, c := range calls {
		st := c.l.Stats()
		sent += st.PacketsReceived
		echoed += uint64(c.b.rxAudio.Load())
		setups = append(setups, c.setup)
	}
	for _, c := range calls {
		_ = c.l.Close()
		c.b.close()
	}
	wg.Wait()
	slices.Sort(setups)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	want := uint64(n) * uint64(dur/(20*time.Millisecond))
	t.Logf("%d calls, %v: CPU %.1f%% of one core total (%.2f%% per call, both ends), heap +%.0f KiB per call, setup p50 %v p99 %v, leg rx %d/%d, echoed %d (loss %.3f%%)",
		n, elapsed.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds(), 100*cpu.Seconds()/elapsed.Seconds()/float64(n),
		float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/1024/float64(n),
		setups[len(setups)/2].Round(time.Millisecond), setups[len(setups)*99/100].Round(time.Millisecond),
		sent, want, echoed, 100*(1-float64(echoed)/float64(max(sent, 1))))
}
