// Package record writes call recordings: a WAV file of 16-bit PCM at 8 kHz, one channel for a
// mixed recording or one per participant for an unmixed one. The media path hands frames to a
// bounded queue and never waits for the disk: when the disk falls behind, frames are dropped
// (and replaced by silence in the file, so its timeline stays the call's) and reported; when a
// write fails (disk full), the recording fails and reports once while the call goes on.
//
// A finished WAV can be encoded to MP3 with Lame (the lame program: there is no well-kept
// pure-Go MP3 encoder; lame.go).
package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

// Config configures one recording.
type Config struct {
	// Channels is 1 for a mixed recording, or the number of participants (up to 8) for an
	// unmixed one (channel i is participant i).
	Channels int
	// QueueFrames bounds the 20 ms frames waiting for the disk (default 250: 5 s).
	QueueFrames int
	// OnDrop is called (on the writer goroutine) the first time frames are dropped because the
	// disk is slow, and again after each recovery; may be nil.
	OnDrop func(dropped uint64)
	// OnFail is called once (on the writer goroutine) when a write fails; the recording stops
	// taking frames. May be nil.
	OnFail func(error)
}

// DefaultConfig returns a mixed recording with a 5 s queue.
func DefaultConfig() Config { return Config{Channels: 1, QueueFrames: 250} }

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Channels < 1 || c.Channels > 8 {
		errs = append(errs, fmt.Errorf("channels: %d must be 1–8", c.Channels))
	}
	if c.QueueFrames < 1 {
		errs = append(errs, fmt.Errorf("queueFrames: %d must be at least 1", c.QueueFrames))
	}
	return errors.Join(errs...)
}

// State is a recording's state (ACS recordingState: active, inactive).
type State int32

// Recording states.
const (
	Active State = iota
	Paused
	Failed
	Stopped
)

func (s State) String() string { return [...]string{"active", "paused", "failed", "stopped"}[s] }

// Result describes a finished recording.
type Result struct {
	Duration time.Duration // of the audio in the file
	Bytes    int64         // file size
	Dropped  uint64        // frames the disk could not keep up with (silence in the file)
	Err      error         // why it failed, if it did
}

type frame struct {
	gap     uint64  // frames dropped just before this one (written as silence)
	samples []int16 // interleaved, Channels × audio.FrameSamples
}

// File is where a recording goes (an *os.File).
type File interface {
	io.WriteSeeker
	io.Closer
	Sync() error
}

// Recorder is one recording in progress.
type Recorder struct {
	cfg   Config
	f     File
	q     chan frame
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	free  chan []int16 // frame buffers for reuse
	state atomic.Int32

	// Media-path side.
	pending atomic.Uint64 // dropped since the last frame that got through
	dropped atomic.Uint64

	res Result
}

func (c Config) withDefaults() Config {
	if c.QueueFrames == 0 {
		c.QueueFrames = DefaultConfig().QueueFrames
	}
	return c
}

// Create makes the file at path (it must not exist; mode 0600) and starts recording into it.
func Create(path string, cfg Config) (*Recorder, error) {
	if err := cfg.withDefaults().Validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	r, err := New(f, cfg)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
	}
	return r, err
}

// New starts recording into f, which the Recorder closes when it stops.
func New(f File, cfg Config) (*Recorder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bs := &bufSeeker{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	ww, err := audio.NewWAVWriter(bs, cfg.Channels, audio.Rate)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	r := &Recorder{cfg: cfg, f: f, q: make(chan frame, cfg.QueueFrames), stop: make(chan struct{}), done: make(chan struct{})}
	r.free = make(chan []int16, cfg.QueueFrames+1)
	go r.writer(ww, bs)
	return r, nil
}

// State returns the current state.
func (r *Recorder) State() State { return State(r.state.Load()) }

// Pause stops taking frames until Resume (ACS pause: the paused time is not in the file).
func (r *Recorder) Pause() { r.state.CompareAndSwap(int32(Active), int32(Paused)) }

// Resume takes frames again after Pause.
func (r *Recorder) Resume() { r.state.CompareAndSwap(int32(Paused), int32(Active)) }

// Write takes one 20 ms tick from the media path: one frame per channel (a nil frame is
// silence). It never blocks: when the queue is full the frame is dropped and counted.
func (r *Recorder) Write(frames ...[]int16) {
	if State(r.state.Load()) != Active {
		return
	}
	ch := r.cfg.Channels
	var buf []int16
	select {
	case buf = <-r.free:
	default:
		buf = make([]int16, ch*audio.FrameSamples)
	}
	for c := range ch {
		var f []int16
		if c < len(frames) {
			f = frames[c]
		}
		for i := range audio.FrameSamples {
			var s int16
			if i < len(f) {
				s = f[i]
			}
			buf[i*ch+c] = s
		}
	}
	gap := r.pending.Load()
	select {
	case r.q <- frame{gap: gap, samples: buf}:
		r.pending.Add(-gap)
	default:
		r.recycle(buf)
		r.pending.Add(1)
		r.dropped.Add(1)
	}
}

func (r *Recorder) recycle(b []int16) {
	select {
	case r.free <- b:
	default:
	}
}

// Stop ends the recording: queued frames are written, the header fixed up, the file synced
// and closed. It returns what was written; calling it again returns the same.
func (r *Recorder) Stop() Result {
	r.once.Do(func() {
		r.state.CompareAndSwap(int32(Active), int32(Stopped))
		r.state.CompareAndSwap(int32(Paused), int32(Stopped))
		close(r.stop)
	})
	<-r.done
	return r.res
}

// writer is the disk side: it owns the file.
func (r *Recorder) writer(ww *audio.WAVWriter, bs *bufSeeker) {
	defer close(r.done)
	var failed error
	var reportedDrops uint64
	silence := make([]int16, r.cfg.Channels*audio.FrameSamples)
	write := func(fr frame) {
		defer r.recycle(fr.samples)
		if failed != nil {
			return
		}
		if fr.gap > 0 && r.cfg.OnDrop != nil && r.dropped.Load() > reportedDrops {
			reportedDrops = r.dropped.Load()
			r.cfg.OnDrop(reportedDrops)
		}
		for range fr.gap {
			if failed = ww.Write(silence); failed != nil {
				break
			}
		}
		if failed == nil {
			failed = ww.Write(fr.samples)
		}
		if failed != nil {
			r.state.Store(int32(Failed))
			if r.cfg.OnFail != nil {
				r.cfg.OnFail(failed)
			}
		}
	}
	for {
		select {
		case fr := <-r.q:
			write(fr)
			continue
		case <-r.stop:
		}
		break
	}
	for {
		select {
		case fr := <-r.q:
			write(fr)
			continue
		default:
		}
		break
	}
	// Frames dropped at the very end still count as time.
	if gap := r.pending.Swap(0); gap > 0 {
		write(frame{gap: gap - 1, samples: make([]int16, len(silence))})
	}
	var err error
	if failed == nil {
		err = errors.Join(bs.w.Flush(), ww.Close(), bs.w.Flush(), r.f.Sync())
	} else {
		// Best effort: make what reached the disk a valid file.
		_ = bs.w.Flush()
		_ = ww.Close()
		_ = bs.w.Flush()
	}
	err = errors.Join(failed, err, r.f.Close())
	if err != nil && failed == nil {
		r.state.Store(int32(Failed))
		if r.cfg.OnFail != nil {
			r.cfg.OnFail(err)
		}
	}
	samples := ww.DataBytes() / 2 / uint64(r.cfg.Channels)
	r.res = Result{Duration: time.Duration(samples) * time.Second / audio.Rate, Bytes: int64(ww.DataBytes()) + 44, Dropped: r.dropped.Load(), Err: err}
}

// bufSeeker buffers writes and flushes before a seek (the WAV header fix-up).
type bufSeeker struct {
	f File
	w *bufio.Writer
}

func (b *bufSeeker) Write(p []byte) (int, error) { return b.w.Write(p) }

func (b *bufSeeker) Seek(off int64, whence int) (int64, error) {
	if err := b.w.Flush(); err != nil {
		return 0, err
	}
	return b.f.Seek(off, whence)
}
