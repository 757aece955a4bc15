// Package audio holds the sample-level building blocks of telgw's media operations: G.711
// μ-law and A-law (ITU-T G.711, RTP payload types 0 and 8, RFC 3551 §4.5.14), resampling to
// the 8 kHz telephone rate, WAV (RIFF) files and MP3 decoding. Everything works on signed
// 16-bit linear PCM, mono, at Rate unless a function says otherwise.
package audio

import (
	"sync"

	"github.com/zaf/g711"
)

// Rate is the sample rate of telephone audio (G.711, RFC 3551 §4.5.14).
const Rate = 8000

// FrameSamples is the number of samples in one 20 ms packet (RFC 3551 §4.2 default ptime).
const FrameSamples = Rate / 50

// Codec is a G.711 variant, valued as its static RTP payload type (RFC 3551 §6, table 4).
type Codec uint8

const (
	// PCMU is G.711 μ-law (payload type 0).
	PCMU Codec = 0
	// PCMA is G.711 A-law (payload type 8).
	PCMA Codec = 8
)

// String names the codec as SDP does (RFC 3551 §6).
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "unknown"
}

// Valid reports whether c is one of the G.711 payload types.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// Encoding tables: one byte per 16-bit sample value (64 KiB each), built from the g711
// library's encoders on first use so the per-packet work is one lookup per sample.
var (
	tablesOnce sync.Once
	ulawEnc    [65536]uint8
	alawEnc    [65536]uint8
	ulawDec    [256]int16
	alawDec    [256]int16
)

func tables() {
	tablesOnce.Do(func() {
		for i := range 65536 {
			s := int16(uint16(i))
			ulawEnc[i] = g711.EncodeUlawFrame(s)
			alawEnc[i] = g711.EncodeAlawFrame(s)
		}
		for i := range 256 {
			ulawDec[i] = g711.DecodeUlawFrame(uint8(i))
			alawDec[i] = g711.DecodeAlawFrame(uint8(i))
		}
	})
}

// Encode appends the G.711 encoding of pcm to dst and returns it. An invalid codec encodes as
// μ-law.
func (c Codec) Encode(dst []byte, pcm []int16) []byte {
	tables()
	t := &ulawEnc
	if c == PCMA {
		t = &alawEnc
	}
	for _, s := range pcm {
		dst = append(dst, t[uint16(s)])
	}
	return dst
}

// Decode appends the linear samples of the G.711 bytes b to dst and returns it.
func (c Codec) Decode(dst []int16, b []byte) []int16 {
	tables()
	t := &ulawDec
	if c == PCMA {
		t = &alawDec
	}
	for _, v := range b {
		dst = append(dst, t[v])
	}
	return dst
}

// EncodeSample encodes one sample.
func (c Codec) EncodeSample(s int16) byte {
	tables()
	if c == PCMA {
		return alawEnc[uint16(s)]
	}
	return ulawEnc[uint16(s)]
}

// DecodeSample decodes one G.711 byte.
func (c Codec) DecodeSample(b byte) int16 {
	tables()
	if c == PCMA {
		return alawDec[b]
	}
	return ulawDec[b]
}

// Silence is the encoding of a zero sample (0xFF in μ-law, 0xD5 in A-law).
func (c Codec) Silence() byte { return c.EncodeSample(0) }

// Clamp saturates a 32-bit sum to the 16-bit range.
func Clamp(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
