package rtpmedia

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

type capture struct {
	mu   sync.Mutex
	pkts []rtp.Packet
	fail bool
}

func (c *capture) WriteRTP(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("closed")
	}
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), b...)); err != nil {
		return err
	}
	c.pkts = append(c.pkts, p)
	return nil
}

func (c *capture) take() []rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pkts
	c.pkts = nil
	return p
}

// manual is a scheduler whose slots the test advances by hand (no pacing goroutine).
func manual(t *testing.T) *Scheduler {
	s := &Scheduler{cfg: DefaultConfig(), shards: []*shard{{}}, stop: make(chan struct{}), notify: newNotifier()}
	t.Cleanup(s.Close)
	return s
}

// events records play callbacks in order.
type events struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{}, 100)} }

func (e *events) play(id string, pcm []int16, loop bool) *Play {
	return &Play{ID: id, PCM: pcm, Loop: loop,
		OnStart: func() { e.add(id + ":started") },
		OnDone:  func(o Outcome) { e.add(id + ":" + o.String()) }}
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.got = append(e.got, s)
	e.mu.Unlock()
	e.ch <- struct{}{}
}

// wait returns the events once n have arrived.
func (e *events) wait(t *testing.T, n int) []string {
	t.Helper()
	for {
		e.mu.Lock()
		if len(e.got) >= n {
			g := slices.Clone(e.got)
			e.mu.Unlock()
			return g
		}
		e.mu.Unlock()
		select {
		case <-e.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %d events; have %v", n, e.got)
		}
	}
}

func ramp(n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(i * 50)
	}
	return out
}

func TestPlayerContinuity(t *testing.T) {
	t.Parallel()
	s := manual(t)
	w := &capture{}
	p := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMA, SSRC: 0xABCD, FirstSeq: 65534, FirstTS: 0xFFFFFF00})
	ev := newEvents()
	p.Enqueue(ev.play("a", ramp(400), false), false) // 50 ms: three frames, the last padded
	for range 5 {
		p.tick(time.Time{})
	}
	p.Enqueue(ev.play("b", ramp(160), false), false)
	p.tick(time.Time{})
	pk := w.take()
	if len(pk) != 4 {
		t.Fatalf("%d packets", len(pk))
	}
	wantSeq := []uint16{65534, 65535, 0, 1}
	wantTS := []uint32{0xFFFFFF00, 0xFFFFFFA0, 0x40, 0x220} // two idle slots
	for i, q := range pk {
		if q.SSRC != 0xABCD || q.PayloadType != 8 || q.SequenceNumber != wantSeq[i] || q.Timestamp != wantTS[i] || len(q.Payload) != 160 {
			t.Errorf("packet %d: %v", i, q.Header)
		}
		if q.Marker != (i == 0 || i == 3) { // a talkspurt starts after silence (RFC 3551 §4.1)
			t.Errorf("packet %d marker %v", i, q.Marker)
		}
	}
	dec := audio.PCMA.Decode(nil, pk[1].Payload)
	if d := int(dec[10]) - 170*50; d > 200 || d < -200 {
		t.Errorf("payload sample %d, want about %d", dec[10], 170*50)
	}
	if last := audio.PCMA.Decode(nil, pk[2].Payload); last[80] != audio.PCMA.DecodeSample(audio.PCMA.Silence()) {
		t.Error("the last frame is not padded with silence")
	}
	if got := ev.wait(t, 4); !slices.Equal(got, []string{"a:started", "a:completed", "b:started", "b:completed"}) {
		t.Errorf("events %v", got)
	}
}

func TestPlayerLoopInterruptCancel(t *testing.T) {
	t.Parallel()
	s := manual(t)
	w := &capture{}
	p := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU})
	ev := newEvents()
	p.Enqueue(ev.play("loop", ramp(100), true), false)
	p.Enqueue(ev.play("queued", ramp(100), false), false)
	for range 10 {
		p.tick(time.Time{})
	}
	if !p.Playing() {
		t.Fatal("loop ended")
	}
	// A 100-sample prompt loops seamlessly: the second frame starts at sample 60.
	pk := w.take()
	if got := audio.PCMU.Decode(nil, pk[1].Payload)[0]; got < 2800 || got > 3200 {
		t.Errorf("loop frame 2 starts at %d, want about %d", got, 60*50)
	}
	p.Enqueue(ev.play("barge", ramp(160), false), true)
	p.tick(time.Time{})
	if got := ev.wait(t, 5); !slices.Equal(got, []string{"loop:started", "loop:canceled", "queued:canceled", "barge:started", "barge:completed"}) {
		t.Errorf("events %v", got)
	}
	p.Enqueue(ev.play("x", ramp(1600), false), false)
	p.Enqueue(ev.play("y", ramp(1600), false), false)
	p.tick(time.Time{})
	if !p.Cancel("y") || p.Cancel("nope") {
		t.Error("Cancel")
	}
	p.CancelAll()
	if got := ev.wait(t, 8)[5:]; !slices.Equal(got, []string{"x:started", "y:canceled", "x:canceled"}) {
		t.Errorf("events %v", got)
	}
	p.Enqueue(ev.play("z", ramp(1600), false), false)
	p.Close()
	p.Enqueue(ev.play("after", ramp(1600), false), false)
	if got := ev.wait(t, 10)[8:]; !slices.Equal(got, []string{"z:canceled", "after:canceled"}) {
		t.Errorf("events %v", got)
	}
	if p.tick(time.Time{}) {
		t.Error("a closed player sent")
	}
}

func TestPlayerWriteFailure(t *testing.T) {
	t.Parallel()
	s := manual(t)
	w := &capture{fail: true}
	p := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU, SendSilence: true})
	ev := newEvents()
	p.Enqueue(ev.play("a", ramp(1600), false), false)
	p.tick(time.Time{})
	if got := ev.wait(t, 2); got[1] != "a:failed" {
		t.Errorf("events %v", got)
	}
}

func TestPlayerSilenceAndDTMF(t *testing.T) {
	t.Parallel()
	s := manual(t)
	w := &capture{}
	p := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU, EventPT: 101, SendSilence: true, FirstTS: 1000})
	p.tick(time.Time{}) // silence
	done := make(chan Outcome, 1)
	if err := p.SendDTMF([]dtmf.Tone{1, dtmf.Pound}, func(o Outcome) { done <- o }); err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	p.Enqueue(ev.play("after", ramp(160), false), false)
	for range 2*(toneFrames+2+gapFrames) + 2 {
		p.tick(time.Time{})
	}
	pk := w.take()
	if pk[0].PayloadType != 0 || !pk[0].Marker {
		t.Errorf("silence packet %v", pk[0].Header)
	}
	var events []rtp.Packet
	for _, q := range pk[1:] {
		if q.PayloadType == 101 {
			events = append(events, q)
		}
	}
	if len(events) != 2*(toneFrames+2) {
		t.Fatalf("%d event packets", len(events))
	}
	var r dtmf.Receiver
	var got []dtmf.Tone
	for i, q := range events {
		e, _ := dtmf.ParseEvent(q.Payload)
		first := i%(toneFrames+2) == 0
		if q.Marker != first {
			t.Errorf("event packet %d marker %v", i, q.Marker)
		}
		if want := uint32(1000 + 160); i < toneFrames+2 && q.Timestamp != want {
			t.Errorf("event packet %d ts %d, want %d (the event's start)", i, q.Timestamp, want)
		}
		if tone, ok := r.Push(q.Timestamp, q.Payload); ok {
			got = append(got, tone)
		}
		_ = e
	}
	if !slices.Equal(got, []dtmf.Tone{1, dtmf.Pound}) {
		t.Errorf("tones %v", got)
	}
	for i := 1; i < len(pk); i++ {
		if pk[i].SequenceNumber != pk[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap at %d", i)
		}
	}
	if o := <-done; o != Completed {
		t.Errorf("dtmf %v", o)
	}
	if got := ev.wait(t, 2); got[1] != "after:completed" {
		t.Errorf("play after dtmf: %v", got)
	}
	q := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU})
	if err := q.SendDTMF([]dtmf.Tone{1}, nil); !errors.Is(err, ErrNoEvents) {
		t.Errorf("no telephone-event: %v", err)
	}
}

// TestSchedulerPaces runs the real pacing goroutines, on Go timers and on real-time threads
// (where the system refuses SCHED_FIFO, pacing falls back to timers): 10 frames take about
// 200 ms.
func TestSchedulerPaces(t *testing.T) {
	t.Parallel()
	for _, prio := range []int{0, 5} {
		t.Run(strconv.Itoa(prio), func(t *testing.T) { testSchedulerPaces(t, prio) })
	}
}

func testSchedulerPaces(t *testing.T, prio int) {
	s, err := NewScheduler(Config{Shards: 2, LateAfter: 10 * time.Millisecond, MaxCatchUp: 5, RealtimePriority: prio})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := &capture{}
	p := s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU})
	done := make(chan Outcome, 1)
	start := time.Now()
	p.Enqueue(&Play{PCM: ramp(1600), OnDone: func(o Outcome) { done <- o }}, false)
	select {
	case o := <-done:
		if el := time.Since(start); o != Completed || el < 150*time.Millisecond || el > 3*time.Second {
			t.Errorf("%v after %v", o, el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("play did not end")
	}
	p.Close()
	if n := len(w.take()); n != 10 {
		t.Errorf("%d packets", n)
	}
	if st := s.Stats(); st.Packets != 10 {
		t.Errorf("stats %+v", st)
	}
	if st := s.Stats(); prio > 0 && st.RealtimeErr != nil {
		t.Logf("real-time pacing refused here: %v", st.RealtimeErr)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("zero config valid")
	}
	if err := (Config{Shards: 1, LateAfter: time.Millisecond, MaxCatchUp: 1, RealtimePriority: 100}).Validate(); err == nil {
		t.Error("priority 100 valid")
	}
}
