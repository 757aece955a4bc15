package sip

import (
	"testing"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// FuzzFromPerson: whatever a person's leg sends reaches the app's media without a panic, on a
// leg with telephone-events (RFC 4733 parsing) and on one without (G.711 decoded for in-band
// tones), and never hands a recognition an invalid tone.
func FuzzFromPerson(f *testing.F) {
	// RTP header (V=2, PT 101, seq 1, ts 160, SSRC 1) + an RFC 4733 event "1", end bit set.
	f.Add([]byte{0x80, 101, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 1, 0x8a, 0x03, 0x20})
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xff, 0x7f, 0x00, 0x80})
	f.Add([]byte{0xa0, 101, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 1, 0x8a, 0x03, 0x20, 0, 0, 0, 4}) // padded
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 1, 2, 3, 4})      // extension
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, ev := range []uint8{101, 0} {
			r := &recognition{op: &calls.RecognizeOp{}, tones: make(chan dtmf.Tone, 64)}
			pm := &partyMedia{codec: audio.PCMU, eventPT: ev, rec: r}
			pm.fromPerson(pkt)
			pm.fromPerson(append(pkt[:len(pkt):len(pkt)], make([]byte, 160)...))
			close(r.tones)
			for tone := range r.tones {
				if !tone.Valid() {
					t.Fatalf("invalid tone %v", tone)
				}
			}
		}
	})
}
