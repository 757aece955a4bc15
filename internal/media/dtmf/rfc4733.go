package dtmf

import (
	"encoding/binary"
	"errors"
)

// EventRate is the RTP clock of telephone-event when it rides with G.711 (RFC 4733 §2.1: the
// audio codec's clock).
const EventRate = 8000

// Event is the RFC 4733 §2.3 telephone-event payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	|     event     |E|R| volume    |          duration             |
type Event struct {
	Tone Tone
	End  bool // E: the last packets of the event (§2.3.3)
	// Volume is the power level in -dBm0, 0–63 (§2.3.4); DTMF uses up to 36.
	Volume uint8
	// Duration in timestamp units since the event's start (§2.3.5).
	Duration uint16
}

// ErrShortEvent is returned for payloads shorter than the 4 bytes of §2.3.
var ErrShortEvent = errors.New("rfc4733: payload shorter than 4 bytes")

// ParseEvent decodes one payload. RFC 4733 §2.3: the R bit is ignored on receipt; extra bytes
// (redundant events of RFC 2198 are carried elsewhere) are ignored.
func ParseEvent(b []byte) (Event, error) {
	if len(b) < 4 {
		return Event{}, ErrShortEvent
	}
	return Event{Tone: Tone(b[0]), End: b[1]&0x80 != 0, Volume: b[1] & 0x3F, Duration: binary.BigEndian.Uint16(b[2:4])}, nil
}

// Append encodes e after dst.
func (e Event) Append(dst []byte) []byte {
	f := e.Volume & 0x3F
	if e.End {
		f |= 0x80
	}
	return append(dst, byte(e.Tone), f, byte(e.Duration>>8), byte(e.Duration))
}

// Packet is one telephone-event packet to send: its payload and RTP marker, at the event's
// start timestamp offset (every packet of an event carries the same RTP timestamp, §2.5.1.1).
type Packet struct {
	Event  Event
	Marker bool
}

// Packets returns the packets that signal tone for dur timestamp units, one every interval
// units (RFC 4733 §2.5.1.2: 50 ms is the recommended maximum; telgw sends every 20 ms): the
// first with the marker bit (§2.5.1.1), durations growing, and the final packet with the E bit
// sent three times (§2.5.1.4). dur is clamped to 0xFFFF (a longer event would need segments,
// §2.5.1.3, which DTMF never does).
func Packets(tone Tone, dur, interval uint16, volume uint8) []Packet {
	if interval == 0 {
		interval = 160
	}
	var out []Packet
	for d := interval; d < dur; d += interval {
		out = append(out, Packet{Event: Event{Tone: tone, Volume: volume, Duration: d}, Marker: len(out) == 0})
		if d > 0xFFFF-interval {
			break
		}
	}
	end := Event{Tone: tone, End: true, Volume: volume, Duration: dur}
	for i := range 3 {
		out = append(out, Packet{Event: end, Marker: len(out) == 0 && i == 0})
	}
	return out
}

// Receiver turns a stream of telephone-event packets into tones, each reported once: RFC 4733
// §2.5.2.2 identifies an event by its RTP timestamp, so retransmissions, the redundant end
// packets and reordered updates of an event already reported are dropped. The zero Receiver is
// ready.
type Receiver struct {
	seen   bool
	ts     uint32 // timestamp of the last event reported
	tone   Tone
	ended  bool
	endsAt uint32 // ts + duration of the last event, for §2.5.1.3 segment continuations
}

// Push takes the RTP timestamp and payload of a telephone-event packet and returns the tone
// when the packet starts a new event (reported at its first packet, start or end, so the
// latency is one packet), ok false otherwise. Malformed payloads and non-DTMF events are
// ignored.
func (r *Receiver) Push(ts uint32, payload []byte) (Tone, bool) {
	e, err := ParseEvent(payload)
	if err != nil || !e.Tone.Valid() {
		return 0, false
	}
	if r.seen && ts == r.ts {
		if e.End {
			r.ended = true
		}
		r.endsAt = ts + uint32(e.Duration)
		return 0, false
	}
	if r.seen && int32(ts-r.ts) < 0 {
		return 0, false // an old event's late packet
	}
	// §2.5.1.3: a long event continues in a new segment whose timestamp is where the previous
	// one ended; it is the same key press.
	cont := r.seen && !r.ended && e.Tone == r.tone && ts == r.endsAt
	r.seen, r.ts, r.tone, r.ended, r.endsAt = true, ts, e.Tone, e.End, ts+uint32(e.Duration)
	if cont {
		return 0, false
	}
	return e.Tone, true
}
