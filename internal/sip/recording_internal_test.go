package sip

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
)

// recordedCall is a bot call with n people and no SIP: what a recording sees of it.
func recordedCall(n int) *botCall {
	b := &botCall{over: make(chan struct{})}
	for i := range n {
		b.parties = append(b.parties, &party{p: calls.Phone(fmt.Sprintf("+1212555%04d", i))})
	}
	return b
}

// TestRecordingTaps: a recording puts a tap on each person, takes it off one who leaves and
// off everyone on Stop; the call ending closes Ended.
func TestRecordingTaps(t *testing.T) {
	b := recordedCall(2)
	h, err := b.Record(calls.RecordingSpec{Path: filepath.Join(t.TempDir(), "r.wav"), Unmixed: true, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
		}
	}
	p0, p1 := b.parties[0], b.parties[1]
	waitFor("taps on both people", func() bool { return p0.tap.Load() != nil && p1.tap.Load() != nil })
	b.mu.Lock()
	b.parties = b.parties[:1]
	b.mu.Unlock()
	waitFor("the tap off the person who left", func() bool { return p1.tap.Load() == nil })
	close(b.over)
	select {
	case <-h.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ended not closed when the call ended")
	}
	res := h.Stop()
	if p0.tap.Load() != nil || res.Err != nil || len(res.Participants) != 2 || res.Channels[1] != p1.p {
		t.Fatalf("after Stop: tap %v, %+v", p0.tap.Load(), res)
	}
	if again := h.Stop(); again.Bytes != res.Bytes {
		t.Fatalf("second Stop %+v", again)
	}
}

// TestRecordingCPU is the recording benchmark of issue 12: N calls of two people each
// recorded (mixed) to files on disk, every person sending a 20 ms G.711 packet every 20 ms
// into their tap (the copy relayParty makes), for a few seconds. It reports the process's CPU
// time per recorded call per 20 ms frame (taps, jitter buffers, mix, queue and disk writes).
//
//	TELGW_BENCH_RECORDINGS=200 TELGW_BENCH_SECONDS=10 [TELGW_BENCH_UNMIXED=1] go test ./internal/sip -run TestRecordingCPU -v
func TestRecordingCPU(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TELGW_BENCH_RECORDINGS"))
	if n == 0 {
		t.Skip("set TELGW_BENCH_RECORDINGS to run")
	}
	secs, _ := strconv.Atoi(os.Getenv("TELGW_BENCH_SECONDS"))
	if secs == 0 {
		secs = 10
	}
	unmixed := os.Getenv("TELGW_BENCH_UNMIXED") != ""
	dir := t.TempDir()
	pcm := make([]int16, audio.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	payload := audio.PCMU.Encode(nil, pcm)
	var bcs []*botCall
	var hs []calls.RecordingHandle
	for i := range n {
		b := recordedCall(2)
		h, err := b.Record(calls.RecordingSpec{Path: filepath.Join(dir, strconv.Itoa(i)+".wav"), Unmixed: unmixed, Channels: 2})
		if err != nil {
			t.Fatal(err)
		}
		bcs, hs = append(bcs, b), append(hs, h)
	}
	// The people: one goroutine sends every person's packet each 20 ms, as the relay loops do.
	stop := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		var seq uint16
		buf := make([]byte, 0, 200)
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			seq++
			for i, b := range bcs {
				for j, pt := range b.parties {
					p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: uint32(i<<1 | j)}, Payload: payload}
					out, _ := p.Header.MarshalTo(buf[:cap(buf)])
					pkt := append(buf[:out], payload...)
					if tp := pt.tap.Load(); tp != nil {
						tp.rx.Push(pkt)
					}
				}
			}
		}
	}()
	var r0, r1 syscall.Rusage
	time.Sleep(500 * time.Millisecond) // taps attached, buffers primed
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	t0 := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	wall := time.Since(t0)
	close(stop)
	<-fed
	var dropped int
	for i, h := range hs {
		res := h.Stop()
		if res.Err != nil {
			t.Errorf("recording %d: %v", i, res.Err)
		}
		if res.Duration < time.Duration(secs)*time.Second {
			dropped++
		}
	}
	cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
	frames := float64(n) * wall.Seconds() * 50
	t.Logf("%d recorded calls (2 people, unmixed %v) for %v: CPU %v (%.1f%% of one core), %.2f µs per call per 20 ms frame; %d files short",
		n, unmixed, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), float64(cpu.Microseconds())/frames, dropped)
}
