package record

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

func flat(v int16) []int16 {
	f := make([]int16, audio.FrameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

func read(t *testing.T, path string) *audio.WAV {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audio.ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestMixedPauseResume(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rec.wav")
	r, err := Create(path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path, DefaultConfig()); err == nil {
		t.Error("an existing file was overwritten")
	}
	for range 50 {
		r.Write(flat(100))
	}
	r.Pause()
	if r.State() != Paused {
		t.Errorf("state %v", r.State())
	}
	for range 50 {
		r.Write(flat(999)) // not recorded
	}
	r.Resume()
	for range 25 {
		r.Write(flat(200))
	}
	res := r.Stop()
	if res.Err != nil || res.Duration != 1500*time.Millisecond || res.Dropped != 0 {
		t.Fatalf("result %+v", res)
	}
	if r.State() != Stopped || r.Stop() != res {
		t.Error("stop twice")
	}
	w := read(t, path)
	s := w.Samples()
	if w.Channels != 1 || w.Rate != 8000 || len(s) != 75*160 || s[0] != 100 || s[len(s)-1] != 200 {
		t.Errorf("file: %d ch, %d Hz, %d samples", w.Channels, w.Rate, len(s))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 || fi.Size() != res.Bytes {
		t.Errorf("mode %v size %d (result %d)", fi.Mode(), fi.Size(), res.Bytes)
	}
}

func TestUnmixed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rec.wav")
	r, err := Create(path, Config{Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r.Write(flat(1), nil, flat(3)) // participant 2 silent
	}
	r.Write(flat(1)) // missing channels are silence
	if res := r.Stop(); res.Err != nil || res.Duration != 220*time.Millisecond {
		t.Fatalf("%+v", res)
	}
	w := read(t, path)
	s := w.Samples()
	if w.Channels != 3 || len(s) != 3*11*160 || s[0] != 1 || s[1] != 0 || s[2] != 3 || s[len(s)-1] != 0 {
		t.Errorf("unmixed: %d ch, %d samples, %v", w.Channels, len(s), s[:3])
	}
	if _, err := Create(filepath.Join(t.TempDir(), "x.wav"), Config{Channels: 9}); err == nil {
		t.Error("9 channels accepted")
	}
}

// stuckFile blocks writes until released (a slow disk), or fails after a budget (a full one).
type stuckFile struct {
	*os.File
	mu      sync.Mutex
	gate    chan struct{}
	budget  int
	written int
}

func (s *stuckFile) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budget > 0 && s.written+len(p) > s.budget {
		return 0, syscall.ENOSPC
	}
	s.written += len(p)
	return s.File.Write(p)
}

func TestSlowDiskNeverBlocks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rec.wav")
	f, _ := os.Create(path)
	sf := &stuckFile{File: f, gate: make(chan struct{})}
	drops := make(chan uint64, 10)
	// The header write blocks too: start New in the background.
	var r *Recorder
	started := make(chan error)
	go func() {
		var err error
		r, err = New(sf, Config{Channels: 1, QueueFrames: 10, OnDrop: func(n uint64) {
			select { // the writer calls this; a report the test does not read must not stall it
			case drops <- n:
			default:
			}
		}})
		started <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(sf.gate) // let the header through; bufio then holds 64 KiB before touching the file
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	sf.gate = make(chan struct{}) // the disk stalls again
	t0 := time.Now()
	for range 1000 {
		r.Write(flat(7))
	}
	if el := time.Since(t0); el > time.Second {
		t.Errorf("1000 writes took %v with the disk stuck", el)
	}
	close(sf.gate)
	for deadline := time.Now().Add(5 * time.Second); len(r.q) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the disk catches up
	}
	for range 5 {
		r.Write(flat(8)) // after recovery: the gap is written as silence
	}
	res := r.Stop()
	if res.Err != nil || res.Dropped == 0 {
		t.Fatalf("%+v", res)
	}
	select {
	case n := <-drops:
		if n == 0 {
			t.Error("drop report of 0")
		}
	case <-time.After(5 * time.Second):
		t.Error("drops not reported")
	}
	// The timeline is kept: every tick is in the file, dropped ones as silence.
	if res.Duration != 1005*20*time.Millisecond {
		t.Errorf("duration %v, want %v", res.Duration, 1005*20*time.Millisecond)
	}
	w := read(t, path)
	if s := w.Samples(); s[len(s)-1] != 8 {
		t.Error("last frame")
	}
}

func TestDiskFullFailsOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rec.wav")
	f, _ := os.Create(path)
	var fails []error
	var mu sync.Mutex
	r, err := New(&stuckFile{File: f, budget: 100_000}, Config{Channels: 1, OnFail: func(err error) {
		mu.Lock()
		fails = append(fails, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.State() != Failed && time.Now().Before(deadline) {
		r.Write(flat(1)) // 320 bytes a frame: the budget runs out after ~300 frames
		time.Sleep(100 * time.Microsecond)
	}
	for range 100 {
		r.Write(flat(1)) // the call goes on; frames are ignored
	}
	res := r.Stop()
	mu.Lock()
	defer mu.Unlock()
	if r.State() != Failed || !errors.Is(res.Err, syscall.ENOSPC) || len(fails) != 1 || !errors.Is(fails[0], syscall.ENOSPC) {
		t.Errorf("state %v, result %+v, fails %v", r.State(), res, fails)
	}
}
