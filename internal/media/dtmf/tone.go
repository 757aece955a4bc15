// Package dtmf holds telgw's touch-tone handling: the tones as Call Automation names them,
// RFC 4733 telephone-event payloads (what carriers and WebRTC legs send), an in-band Goertzel
// detector for G.711 callers whose tones arrive as audio, and the collector that implements
// the ACS recognize semantics (maxTonesToCollect, stopTones, timeouts, interruptPrompt) as a
// pure state machine.
package dtmf

import (
	"fmt"
	"strings"
)

// Tone is one DTMF key, valued as its RFC 4733 §3.2 event code (0–9, * = 10, # = 11, A–D =
// 12–15).
type Tone uint8

// The tones with event codes outside 0–9.
const (
	Star  Tone = 10
	Pound Tone = 11
	A     Tone = 12
	B     Tone = 13
	C     Tone = 14
	D     Tone = 15
)

// acsNames are the Call Automation Tone enum values, indexed by event code.
var acsNames = [16]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
	"asterisk", "pound", "a", "b", "c", "d"}

const keys = "0123456789*#ABCD"

// Valid reports whether t is one of the 16 DTMF events.
func (t Tone) Valid() bool { return t < 16 }

// String is the ACS name ("zero" … "pound").
func (t Tone) String() string {
	if !t.Valid() {
		return fmt.Sprintf("event(%d)", uint8(t))
	}
	return acsNames[t]
}

// Key is the character on the keypad ('0'–'9', '*', '#', 'A'–'D').
func (t Tone) Key() byte {
	if !t.Valid() {
		return '?'
	}
	return keys[t]
}

// ParseTone accepts an ACS tone name (case-insensitive, as the REST API sends "Pound" or
// "pound") or a keypad character.
func ParseTone(s string) (Tone, error) {
	for i, n := range acsNames {
		if strings.EqualFold(s, n) {
			return Tone(i), nil
		}
	}
	if len(s) == 1 {
		if i := strings.IndexByte(keys, s[0]&^0x20); s[0] >= 'a' && i >= 0 {
			return Tone(i), nil
		}
		if i := strings.IndexByte(keys, s[0]); i >= 0 {
			return Tone(i), nil
		}
	}
	return 0, fmt.Errorf("unknown DTMF tone %q", s)
}
