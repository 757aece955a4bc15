package rtpmedia

import (
	"errors"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// Writer sends one RTP packet; bridge.Leg (UDP and WebRTC legs) satisfies it. It is called on
// a pacing goroutine and must not block.
type Writer interface {
	WriteRTP(p []byte) error
}

// PlayerConfig describes the leg a Player sends on.
type PlayerConfig struct {
	// Codec is the negotiated G.711 payload type.
	Codec audio.Codec
	// EventPT is the negotiated telephone-event payload type (RFC 4733 §7.1.1, dynamic,
	// usually 101); 0 disables SendDTMF.
	EventPT uint8
	// SSRC identifies the stream (RFC 3550 §8.1: random; the caller picks it).
	SSRC uint32
	// FirstSeq and FirstTS start the sequence and timestamp (RFC 3550 §5.1: random).
	FirstSeq uint16
	FirstTS  uint32
	// SendSilence sends silence frames while nothing plays (a bot call with no other party,
	// so the carrier's RTP timeout does not fire); otherwise the player sends nothing between
	// prompts and the next one starts a new talkspurt (marker bit, RFC 3551 §4.1).
	SendSilence bool
	// Group pins the player to one pacing shard: players of one call (a conference) share a
	// group so they tick in the same loop, one after the other, in each 20 ms slot. 0: any.
	Group uint32
	// Feed, when set, supplies the audio sent while no prompt or DTMF is playing (a
	// conference's mix for this participant): it fills dst (audio.FrameSamples samples) for the
	// slot due and reports whether to send it. Called on the pacing goroutine: it must not
	// block.
	Feed func(due time.Time, dst []int16) bool
}

// Outcome is how a play (or a DTMF send) ended.
type Outcome int

// Play outcomes, for PlayCompleted / PlayCanceled (and SendDtmfTonesCompleted/Failed).
const (
	Completed Outcome = iota
	Canceled
	Failed // the writer failed (leg closed)
)

func (o Outcome) String() string { return [...]string{"completed", "canceled", "failed"}[o] }

// Play is one prompt queued on a Player.
type Play struct {
	// ID names the operation in events (the engine's operationContext or its own id).
	ID string
	// PCM is the prompt at 8 kHz.
	PCM []int16
	// Loop repeats the prompt until canceled.
	Loop bool
	// OnStart is called when the first frame has been sent (PlayStarted); OnDone when the play
	// ends. Both run in order on the scheduler's notifier goroutine and may be nil.
	OnStart func()
	OnDone  func(Outcome)
}

type dtmfOp struct {
	tones  []dtmf.Tone
	onDone func(Outcome)
	pkts   []dtmf.Packet
	tone   int // index into tones
	pkt    int // next packet of the current tone
	gap    int // silent frames left before the next tone
	ts     uint32
}

// Timing of sendDtmfTones: each tone 100 ms, then 60 ms of silence (ITU-T Q.24's 40 ms
// minimum pause, with margin).
const (
	toneFrames = 5
	gapFrames  = 3
	volume     = 10 // -10 dBm0 (RFC 4733 §2.3.4)
)

// ErrNoEvents is returned by SendDTMF when the leg negotiated no telephone-event.
var ErrNoEvents = errors.New("rtpmedia: the leg negotiated no telephone-event payload type")

// Player plays prompts and DTMF onto one leg. Plays queue in order; DTMF goes before audio.
type Player struct {
	s     *Scheduler
	shard *shard
	w     Writer
	cfg   PlayerConfig

	mu      sync.Mutex
	closed  bool
	seq     uint16
	ts      uint32
	talking bool // the previous slot sent a packet
	cur     *Play
	pos     int
	started bool
	queue   []*Play
	dtmfQ   []*dtmfOp
	hdr     rtp.Header
	buf     [12 + 4 + audio.FrameSamples]byte
	frame   [audio.FrameSamples]int16
}

// NewPlayer attaches a player for w to the scheduler.
func (s *Scheduler) NewPlayer(w Writer, cfg PlayerConfig) *Player {
	p := &Player{s: s, w: w, cfg: cfg, seq: cfg.FirstSeq, ts: cfg.FirstTS}
	s.add(p)
	return p
}

// Enqueue adds a play. With interrupt (ACS interruptCallMediaOperation) the current play and
// everything queued are canceled first and this one starts at the next frame.
func (p *Player) Enqueue(pl *Play, interrupt bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.post(pl.OnDone, Canceled)
		return
	}
	if interrupt {
		p.cancelPlaysLocked()
	}
	p.queue = append(p.queue, pl)
}

// Cancel ends the play with id (current or queued) as Canceled; it reports whether one was
// found.
func (p *Player) Cancel(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.cur.ID == id {
		p.post(p.cur.OnDone, Canceled)
		p.cur = nil
		return true
	}
	for i, q := range p.queue {
		if q.ID == id {
			p.post(q.OnDone, Canceled)
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			return true
		}
	}
	return false
}

// CancelAll cancels every play and DTMF send (cancelAllMediaOperations).
func (p *Player) CancelAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelPlaysLocked()
	for _, d := range p.dtmfQ {
		p.post(d.onDone, Canceled)
	}
	p.dtmfQ = nil
}

// Playing reports whether a play is current or queued.
func (p *Player) Playing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil || len(p.queue) > 0
}

func (p *Player) cancelPlaysLocked() {
	if p.cur != nil {
		p.post(p.cur.OnDone, Canceled)
		p.cur = nil
	}
	for _, q := range p.queue {
		p.post(q.OnDone, Canceled)
	}
	p.queue = nil
}

// SendDTMF queues tones as RFC 4733 events (sendDtmfTones); onDone reports the end.
func (p *Player) SendDTMF(tones []dtmf.Tone, onDone func(Outcome)) error {
	if p.cfg.EventPT == 0 {
		return ErrNoEvents
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.post(onDone, Canceled)
		return nil
	}
	p.dtmfQ = append(p.dtmfQ, &dtmfOp{tones: tones, onDone: onDone})
	return nil
}

// Close detaches the player; pending operations end Canceled.
func (p *Player) Close() {
	p.s.remove(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.cancelPlaysLocked()
	for _, d := range p.dtmfQ {
		p.post(d.onDone, Canceled)
	}
	p.dtmfQ, p.closed = nil, true
}

func (p *Player) post(f func(Outcome), o Outcome) {
	if f != nil {
		p.s.notify.post(func() { f(o) })
	}
}

// skip advances the clock over n slots the scheduler could not serve: the timestamp keeps
// following real time (a receiver sees a gap, not compressed audio) and the next packet starts
// a talkspurt (RFC 3551 §4.1) so the receiver may resynchronise its playout.
func (p *Player) skip(n int) {
	p.mu.Lock()
	p.ts += uint32(n * audio.FrameSamples)
	p.talking = false
	p.mu.Unlock()
}

// tick fills this 20 ms slot: a DTMF packet, a prompt frame, silence or nothing. The RTP
// timestamp advances every slot, sent or not (RFC 3550 §5.1: it follows the sampling clock).
// It reports whether a packet was written.
func (p *Player) tick(due time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	ts := p.ts
	p.ts += audio.FrameSamples
	if len(p.dtmfQ) > 0 {
		if busy, sent := p.dtmfSlot(ts); busy {
			return sent
		}
	}
	if p.cur == nil && len(p.queue) > 0 {
		p.cur, p.pos, p.started = p.queue[0], 0, false
		p.queue[0] = nil
		p.queue = p.queue[1:]
	}
	if p.cur == nil && p.cfg.Feed != nil && p.cfg.Feed(due, p.frame[:]) {
		return p.send(p.cfg.Codec, ts, p.encode(p.frame[:]))
	}
	if p.cur == nil {
		if !p.cfg.SendSilence {
			p.talking = false
			return false
		}
		clear(p.frame[:])
		return p.send(p.cfg.Codec, ts, p.encode(p.frame[:]))
	}
	pl := p.cur
	n := copy(p.frame[:], pl.PCM[p.pos:])
	p.pos += n
	for n < audio.FrameSamples && pl.Loop && len(pl.PCM) > 0 {
		k := copy(p.frame[n:], pl.PCM)
		n += k
		p.pos = k
	}
	clear(p.frame[n:])
	if !p.started {
		p.started = true
		if pl.OnStart != nil {
			p.s.notify.post(pl.OnStart)
		}
	}
	ok := p.send(p.cfg.Codec, ts, p.encode(p.frame[:]))
	switch {
	case !ok:
		p.post(pl.OnDone, Failed)
		p.cur = nil
	case p.pos >= len(pl.PCM) && !pl.Loop:
		p.post(pl.OnDone, Completed)
		p.cur = nil
	case pl.Loop && p.pos >= len(pl.PCM):
		p.pos = 0
	}
	return true
}

func (p *Player) encode(pcm []int16) []byte {
	return p.cfg.Codec.Encode(p.buf[12:12], pcm)
}

// send writes one packet; the marker bit starts a talkspurt (RFC 3551 §4.1) or an event
// (RFC 4733 §2.5.1.1, set by the caller through marker).
func (p *Player) send(pt audio.Codec, ts uint32, payload []byte) bool {
	return p.sendPT(uint8(pt), ts, payload, !p.talking)
}

func (p *Player) sendPT(pt uint8, ts uint32, payload []byte, marker bool) bool {
	p.hdr = rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: p.seq, Timestamp: ts, SSRC: p.cfg.SSRC}
	var pkt [12 + 4 + audio.FrameSamples]byte
	n, err := p.hdr.MarshalTo(pkt[:])
	if err != nil {
		return false
	}
	n += copy(pkt[n:], payload)
	p.seq++
	p.talking = true
	return p.w.WriteRTP(pkt[:n]) == nil
}

// dtmfSlot sends this slot's DTMF packet or keeps the inter-tone gap silent (busy, with sent
// telling which); busy is false when the queue turns out empty.
func (p *Player) dtmfSlot(ts uint32) (busy, sent bool) {
	for len(p.dtmfQ) > 0 {
		op := p.dtmfQ[0]
		if op.gap > 0 {
			op.gap--
			p.talking = false
			return true, false // a silent slot: audio paused
		}
		if op.pkts == nil {
			if op.tone >= len(op.tones) {
				p.post(op.onDone, Completed)
				p.dtmfQ = p.dtmfQ[1:]
				continue
			}
			// One packet per 20 ms slot: the tone lasts toneFrames slots, then the two
			// retransmissions of the end packet (RFC 4733 §2.5.1.4) take two more slots.
			op.pkts = dtmf.Packets(op.tones[op.tone], toneFrames*audio.FrameSamples, audio.FrameSamples, volume)
			op.pkt, op.ts = 0, ts
		}
		pk := op.pkts[op.pkt]
		var pl [4]byte
		ok := p.sendPT(p.cfg.EventPT, op.ts, pk.Event.Append(pl[:0]), pk.Marker)
		op.pkt++
		if op.pkt == len(op.pkts) {
			op.pkts, op.tone, op.gap = nil, op.tone+1, gapFrames
		}
		if !ok {
			p.post(op.onDone, Failed)
			p.dtmfQ = p.dtmfQ[1:]
		}
		return true, ok
	}
	return false, false
}
