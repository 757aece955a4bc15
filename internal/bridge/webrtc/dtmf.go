package webrtc

import (
	"encoding/binary"
	"errors"
	"strings"
)

// DTMF is one RFC 4733 §2.3 telephone-event payload: a named event (§3.2: 0–9, *, #, A–D),
// whether it ends the event, its volume in −dBm0 and its duration in timestamp units.
//
// The bridge relays telephone-event packets unchanged (only the payload type is renumbered);
// this type lets callers and tests read and write them.
type DTMF struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16
}

// ErrShortDTMF is a telephone-event payload shorter than the 4 bytes RFC 4733 §2.3 defines.
var ErrShortDTMF = errors.New("webrtc: telephone-event payload shorter than 4 bytes")

const dtmfDigits = "0123456789*#ABCD"

// ParseDTMF decodes an RFC 4733 §2.3 payload (extra bytes, e.g. RFC 4733 §2.5.1.5 redundancy
// is not used by browsers, are ignored).
func ParseDTMF(p []byte) (DTMF, error) {
	if len(p) < 4 {
		return DTMF{}, ErrShortDTMF
	}
	return DTMF{
		Event:    p[0],
		End:      p[1]&0x80 != 0,
		Volume:   p[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(p[2:4]),
	}, nil
}

// Marshal encodes d as an RFC 4733 §2.3 payload (the R bit is zero).
func (d DTMF) Marshal() []byte {
	b := make([]byte, 4)
	b[0] = d.Event
	b[1] = d.Volume & 0x3f
	if d.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], d.Duration)
	return b
}

// Digit is the event's character (RFC 4733 §3.2 table 1), or "" for events past 15.
func (d DTMF) Digit() string {
	if int(d.Event) < len(dtmfDigits) {
		return dtmfDigits[d.Event : d.Event+1]
	}
	return ""
}

// DTMFEvent returns the RFC 4733 §3.2 event code of a digit (0–9, *, #, A–D).
func DTMFEvent(digit rune) (uint8, bool) {
	i := strings.IndexRune(dtmfDigits, digit)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}
