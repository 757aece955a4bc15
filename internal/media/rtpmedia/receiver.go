package rtpmedia

import (
	"sync"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// ReceiverConfig describes what a leg sends.
type ReceiverConfig struct {
	// Codecs maps the negotiated payload types to G.711 variants (PCMU 0, PCMA 8).
	Codecs map[uint8]audio.Codec
	// EventPT is the negotiated telephone-event payload type; 0: none.
	EventPT uint8
	// Depth is the playout delay in frames before the first Pull returns audio (default 2,
	// 40 ms): how much reordering is absorbed.
	Depth int
}

// ringSize bounds the packets held (640 ms of 20 ms packets): a packet further ahead than this
// resynchronises the stream.
const ringSize = 32

type slot struct {
	valid   bool
	seq     uint16
	codec   audio.Codec
	n       int
	payload [480]byte // up to 60 ms of G.711
}

// ReceiverStats counts what a Receiver saw.
type ReceiverStats struct {
	Packets    uint64 // audio packets accepted
	Late       uint64 // arrived after their slot was played out
	Duplicates uint64
	Lost       uint64 // slots played out as silence
	Dropped    uint64 // frames skipped to bound the delay
	Resyncs    uint64 // SSRC changes and sequence jumps
	Ignored    uint64 // malformed, unknown payload type
}

// Receiver turns one leg's RTP into 20 ms PCM frames (Pull) and RFC 4733 events into tones
// (Push's result). Packets are ordered by sequence number in a small ring; a missing packet
// plays out as silence, a late one is dropped. It has no goroutine; the leg's read loop pushes
// and the media tick pulls concurrently (a mutex, uncontended but for a moment each 20 ms).
type Receiver struct {
	mu        sync.Mutex
	cfg       ReceiverConfig
	hdr       rtp.Header
	ring      [ringSize]slot
	count     int // valid slots
	next      uint16
	started   bool
	buffering bool
	played    bool // a slot was played out since the last reset
	ssrc      uint32
	lastLen   int
	fifo      []int16
	events    dtmf.Receiver
	eventSSRC uint32
	stats     ReceiverStats
}

// NewReceiver returns a receiver for one leg.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Depth <= 0 {
		cfg.Depth = 2
	}
	if cfg.Depth > ringSize/2 {
		cfg.Depth = ringSize / 2
	}
	return &Receiver{cfg: cfg, lastLen: audio.FrameSamples, buffering: true}
}

// Stats returns the counters.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Push takes one RTP packet (the leg already dropped non-RTP and foreign sources). It returns a
// tone when the packet starts a DTMF event (RFC 4733 §2.5.2).
func (r *Receiver) Push(pkt []byte) (dtmf.Tone, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.hdr.Unmarshal(pkt)
	if err != nil || r.hdr.Version != 2 {
		r.stats.Ignored++
		return 0, false
	}
	payload := pkt[n:]
	if r.hdr.Padding && len(payload) > 0 { // RFC 3550 §5.1: the last octet counts the padding
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			r.stats.Ignored++
			return 0, false
		}
		payload = payload[:len(payload)-pad]
	}
	if r.cfg.EventPT != 0 && r.hdr.PayloadType == r.cfg.EventPT {
		if r.hdr.SSRC != r.eventSSRC {
			r.eventSSRC, r.events = r.hdr.SSRC, dtmf.Receiver{}
		}
		return r.events.Push(r.hdr.Timestamp, payload)
	}
	codec, ok := r.cfg.Codecs[r.hdr.PayloadType]
	if !ok || len(payload) == 0 || len(payload) > len(slot{}.payload) {
		r.stats.Ignored++
		return 0, false
	}
	seq := r.hdr.SequenceNumber
	if !r.started || r.hdr.SSRC != r.ssrc {
		r.reset(seq)
		r.ssrc = r.hdr.SSRC
	}
	d := int16(seq - r.next)
	if d < 0 && !r.played && d > -ringSize/4 && r.count+int(-d) < ringSize {
		// Nothing played out yet: an earlier packet that arrives second moves the start back.
		r.next, d = seq, 0
	}
	switch {
	case d < 0:
		r.stats.Late++
		return 0, false
	case d >= ringSize:
		r.reset(seq)
	}
	s := &r.ring[seq%ringSize]
	if s.valid && s.seq == seq {
		r.stats.Duplicates++
		return 0, false
	}
	if !s.valid {
		r.count++
	}
	s.valid, s.seq, s.codec, s.n = true, seq, codec, copy(s.payload[:], payload)
	r.stats.Packets++
	return 0, false
}

func (r *Receiver) reset(seq uint16) {
	if r.started {
		r.stats.Resyncs++
	}
	for i := range r.ring {
		r.ring[i].valid = false
	}
	r.count, r.next, r.started, r.buffering, r.played = 0, seq, true, true, false
}

// Pull appends the next 20 ms frame (audio.FrameSamples samples) to dst: received audio in
// sequence order, silence for a lost packet, silence while buffering or when nothing arrives
// (the peer is silent or on hold).
func (r *Receiver) Pull(dst []int16) []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buffering {
		if r.count < r.cfg.Depth {
			return append(dst, make([]int16, audio.FrameSamples)...)
		}
		r.buffering = false
	}
	// Bound the delay: a burst that piled up more than Depth+3 packets drops the oldest.
	for r.count > r.cfg.Depth+3 {
		r.take()
		r.stats.Dropped++
	}
	for len(r.fifo) < audio.FrameSamples {
		if r.count == 0 {
			// Underrun: wait for the stream to come back rather than declaring loss.
			r.buffering = true
			break
		}
		r.fifo = r.take()
	}
	k := min(len(r.fifo), audio.FrameSamples)
	dst = append(dst, r.fifo[:k]...)
	r.fifo = r.fifo[:copy(r.fifo, r.fifo[k:])]
	for range audio.FrameSamples - k {
		dst = append(dst, 0)
	}
	return dst
}

// take decodes the slot of r.next (or silence when it is missing) onto the fifo and advances.
func (r *Receiver) take() []int16 {
	s := &r.ring[r.next%ringSize]
	out := r.fifo
	if s.valid && s.seq == r.next {
		out = s.codec.Decode(out, s.payload[:s.n])
		r.lastLen = s.n
		s.valid = false
		r.count--
	} else {
		r.stats.Lost++
		out = append(out, make([]int16, r.lastLen)...)
	}
	r.next++
	r.played = true
	return out
}
