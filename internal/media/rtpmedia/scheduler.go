// Package rtpmedia puts media operations on RTP legs: a Player paces 20 ms G.711 frames of
// prompts (and RFC 4733 DTMF) onto a leg with one SSRC, continuous sequence numbers and
// timestamps across prompts; a Receiver turns a leg's incoming RTP into 20 ms PCM frames
// (reordering, loss and duplicates absorbed) and its telephone-events into tones.
//
// Pacing is shared: a Scheduler runs one goroutine per shard that wakes every 20 ms and sends
// the frame of every player on it, so thousands of plays cost a few timers, not thousands.
package rtpmedia

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Frame is the packet interval (RFC 3551 §4.2: 20 ms default ptime for G.711).
const Frame = 20 * time.Millisecond

// Config configures a Scheduler.
type Config struct {
	// Shards is the number of pacing goroutines (default GOMAXPROCS).
	Shards int
	// LateAfter is how far behind its due time a packet may go out before it counts as late
	// (default 10 ms, half a frame).
	LateAfter time.Duration
	// RealtimePriority, when 1–99, runs each pacing goroutine on its own OS thread with
	// SCHED_FIFO at that priority (Linux; needs CAP_SYS_NICE), so other processes on a busy
	// host do not delay packets. 0 (default) uses ordinary Go timers. When the system refuses,
	// pacing falls back to timers and Stats.RealtimeErr says why.
	RealtimePriority int
	// MaxCatchUp bounds the frames a shard sends at once after a stall (default 5); older
	// slots are skipped and counted, so a paused process does not burst seconds of audio.
	MaxCatchUp int
}

// DefaultConfig returns the scheduler defaults.
func DefaultConfig() Config {
	return Config{Shards: runtime.GOMAXPROCS(0), LateAfter: 10 * time.Millisecond, MaxCatchUp: 5}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Shards < 1 || c.Shards > 256 {
		errs = append(errs, fmt.Errorf("shards: %d must be 1–256", c.Shards))
	}
	if c.LateAfter <= 0 || c.LateAfter > time.Second {
		errs = append(errs, fmt.Errorf("lateAfter: %v must be in (0, 1s]", c.LateAfter))
	}
	if c.RealtimePriority < 0 || c.RealtimePriority > 99 {
		errs = append(errs, fmt.Errorf("realtimePriority: %d must be 0–99", c.RealtimePriority))
	}
	if c.MaxCatchUp < 1 {
		errs = append(errs, fmt.Errorf("maxCatchUp: %d must be at least 1", c.MaxCatchUp))
	}
	return errors.Join(errs...)
}

// Stats are the scheduler's counters since it started.
type Stats struct {
	Packets uint64 // RTP packets written
	Late    uint64 // written more than LateAfter after their due time
	Skipped uint64 // frame slots skipped after a stall
	MaxLate time.Duration
	// RealtimeErr is why RealtimePriority could not be applied (nil when it was, or unset).
	RealtimeErr error
}

// Scheduler paces every Player created from it.
type Scheduler struct {
	cfg    Config
	shards []*shard
	next   atomic.Uint32
	notify *notifier
	wg     sync.WaitGroup
	stop   chan struct{}
	once   sync.Once

	packets, late, skipped atomic.Uint64
	maxLate                atomic.Int64
	rtErr                  atomic.Pointer[error]
}

type shard struct {
	mu      sync.Mutex
	players []*Player
	snap    []*Player
}

// NewScheduler starts the pacing goroutines; Close stops them.
func NewScheduler(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rtpmedia: %w", err)
	}
	s := &Scheduler{cfg: cfg, stop: make(chan struct{}), notify: newNotifier()}
	for range cfg.Shards {
		sh := &shard{}
		s.shards = append(s.shards, sh)
		s.wg.Add(1)
		go s.run(sh)
	}
	return s, nil
}

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	st := Stats{Packets: s.packets.Load(), Late: s.late.Load(), Skipped: s.skipped.Load(), MaxLate: time.Duration(s.maxLate.Load())}
	if e := s.rtErr.Load(); e != nil {
		st.RealtimeErr = *e
	}
	return st
}

// Close stops pacing. Players still attached stop sending; their pending plays are not
// reported (close players first for PlayCanceled).
func (s *Scheduler) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.notify.close()
	})
}

func (s *Scheduler) add(p *Player) {
	n := s.next.Add(1)
	if p.cfg.Group != 0 {
		n = p.cfg.Group
	}
	sh := s.shards[int(n%uint32(len(s.shards)))]
	p.shard = sh
	sh.mu.Lock()
	sh.players = append(sh.players, p)
	sh.mu.Unlock()
}

func (s *Scheduler) remove(p *Player) {
	sh := p.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, q := range sh.players {
		if q == p {
			last := len(sh.players) - 1
			sh.players[i] = sh.players[last]
			sh.players[last] = nil
			sh.players = sh.players[:last]
			return
		}
	}
}

// run paces one shard on an absolute schedule (due = start + n·Frame), so timer jitter does not
// accumulate into drift; a late wake-up sends the missed slots at once, up to MaxCatchUp.
func (s *Scheduler) run(sh *shard) {
	defer s.wg.Done()
	// wait sleeps until due; false when the scheduler stops.
	var wait func(due time.Time) bool
	if prio := s.cfg.RealtimePriority; prio > 0 {
		// The thread stays locked: when the goroutine ends, the runtime ends the thread with
		// its real-time policy instead of reusing it for ordinary goroutines.
		runtime.LockOSThread()
		if err := setRealtime(prio); err != nil {
			err = fmt.Errorf("rtpmedia: real-time priority %d: %w", prio, err)
			s.rtErr.Store(&err)
		} else {
			wait = func(due time.Time) bool {
				threadSleep(time.Until(due))
				select {
				case <-s.stop:
					return false
				default:
					return true
				}
			}
		}
	}
	if wait == nil {
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		wait = func(due time.Time) bool {
			t.Reset(time.Until(due))
			select {
			case <-s.stop:
				return false
			case <-t.C:
				return true
			}
		}
	}
	due := time.Now().Add(Frame)
	for wait(due) {
		now := time.Now()
		if behind := int(now.Sub(due) / Frame); behind >= s.cfg.MaxCatchUp {
			skip := behind - s.cfg.MaxCatchUp + 1
			due = due.Add(time.Duration(skip) * Frame)
			s.skipped.Add(uint64(skip))
			sh.mu.Lock()
			sh.snap = append(sh.snap[:0], sh.players...)
			sh.mu.Unlock()
			for _, p := range sh.snap {
				p.skip(skip)
			}
		}
		sh.mu.Lock()
		sh.snap = append(sh.snap[:0], sh.players...)
		sh.mu.Unlock()
		for !due.After(now) {
			var sent, late uint64
			for _, p := range sh.snap {
				if p.tick(due) {
					sent++
					if l := time.Since(due); l > s.cfg.LateAfter {
						late++
						if int64(l) > s.maxLate.Load() {
							s.maxLate.Store(int64(l))
						}
					}
				}
			}
			s.packets.Add(sent)
			s.late.Add(late)
			due = due.Add(Frame)
			now = time.Now()
		}
		clear(sh.snap)
	}
}

// notifier runs event callbacks in order, off the pacing goroutines, so a slow callback never
// delays media.
type notifier struct {
	mu     sync.Mutex
	queue  []func()
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newNotifier() *notifier {
	n := &notifier{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go n.loop()
	return n
}

func (n *notifier) post(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.queue = append(n.queue, f)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) loop() {
	defer close(n.done)
	for range n.wake {
		for {
			n.mu.Lock()
			q := n.queue
			n.queue = nil
			n.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, f := range q {
				f()
			}
		}
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	close(n.wake)
	n.mu.Unlock()
	<-n.done
}
