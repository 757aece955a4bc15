package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// MaxPromptSamples bounds a decoded WAV prompt at 8 kHz (30 minutes), whatever its file size.
const MaxPromptSamples = 30 * 60 * Rate

// MaxMP3Seconds bounds a decoded MP3 prompt (10 minutes): MP3 expands up to ~50 times, so a
// file within the fetch limit could otherwise decode to gigabytes.
const MaxMP3Seconds = 10 * 60

// LoadPrompt decodes a play source file into mono PCM at Rate. Accepted, as ACS FileSource
// accepts: WAV with 16-bit PCM at 8 or 16 kHz, or 8 kHz μ-law/A-law, mono; and MP3 (any rate
// and channel layout, downmixed and resampled). Anything else fails with ErrFormat naming why.
func LoadPrompt(b []byte) ([]int16, error) {
	switch {
	case len(b) >= 12 && string(b[0:4]) == "RIFF":
		w, err := ParseWAV(b)
		if err != nil {
			return nil, err
		}
		if w.Channels != 1 {
			return nil, fmt.Errorf("%w: WAV has %d channels (want mono)", ErrFormat, w.Channels)
		}
		switch {
		case w.Format == FormatPCM && (w.Rate == 8000 || w.Rate == 16000):
		case w.Format != FormatPCM && w.Rate == 8000:
		default:
			return nil, fmt.Errorf("%w: WAV at %d Hz (want 8000 or 16000 Hz PCM, or 8000 Hz μ-law/A-law)", ErrFormat, w.Rate)
		}
		if len(w.Data)/(w.Bits/8)*Rate/w.Rate > MaxPromptSamples {
			return nil, fmt.Errorf("%w: longer than %d minutes", ErrFormat, MaxPromptSamples/Rate/60)
		}
		return Resample(w.Samples(), w.Rate, Rate), nil
	case isMP3(b):
		return decodeMP3(b)
	}
	return nil, fmt.Errorf("%w: neither WAV (RIFF) nor MP3", ErrFormat)
}

// isMP3 recognises an ID3v2 tag or an MPEG audio frame sync (11 set bits, ISO/IEC 11172-3
// §2.4.2.3).
func isMP3(b []byte) bool {
	if len(b) >= 3 && string(b[:3]) == "ID3" {
		return true
	}
	return len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0
}

// decodeMP3 decodes with go-mp3 (16-bit stereo at the stream's rate), downmixes and resamples.
// A decoder panic on hostile input becomes ErrFormat.
func decodeMP3(b []byte) (out []int16, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: corrupt MP3", ErrFormat)
		}
	}()
	b, err = stripTags(b)
	if err != nil {
		return nil, err
	}
	d, err := mp3.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: MP3: %v", ErrFormat, err)
	}
	rate := d.SampleRate()
	if rate < 8000 || rate > 48000 {
		return nil, fmt.Errorf("%w: MP3 at %d Hz", ErrFormat, rate)
	}
	// Decode in chunks, downmixing as we go (go-mp3 yields 16-bit stereo), so memory follows
	// the mono signal; a decoder that stops making progress is cut off.
	limit := MaxMP3Seconds * rate
	var mono []int16
	buf := make([]byte, 16<<10)
	carry := 0 // bytes of an incomplete stereo frame at the start of buf
	stalls := 0
	for {
		n, err := d.Read(buf[carry:])
		n += carry
		whole := n / 4 * 4
		for i := 0; i < whole; i += 4 {
			l := int32(int16(uint16(buf[i]) | uint16(buf[i+1])<<8))
			r := int32(int16(uint16(buf[i+2]) | uint16(buf[i+3])<<8))
			mono = append(mono, int16((l+r)/2))
		}
		carry = copy(buf, buf[whole:n])
		if len(mono) > limit {
			return nil, fmt.Errorf("%w: MP3 longer than %d minutes", ErrFormat, MaxMP3Seconds/60)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: MP3: %v", ErrFormat, err)
		}
		if whole == 0 {
			if stalls++; stalls > 64 {
				return nil, fmt.Errorf("%w: MP3 decoder made no progress", ErrFormat)
			}
		} else {
			stalls = 0
		}
	}
	if len(mono) == 0 {
		return nil, fmt.Errorf("%w: MP3 without audio frames", ErrFormat)
	}
	return Resample(mono, rate, Rate), nil
}

// stripTags removes leading ID3v2 tags (ID3v2.4 §3.1: a 10-byte header whose size is a
// syncsafe integer, plus a 10-byte footer when flagged) and an ID3v1 "TAG" block before go-mp3
// sees the stream: go-mp3 allocates whatever size a tag header claims (up to half a gigabyte
// from ten bytes), so the size is checked against the file first.
func stripTags(b []byte) ([]byte, error) {
	for range 4 {
		switch {
		case len(b) >= 10 && string(b[:3]) == "ID3":
			if b[6]|b[7]|b[8]|b[9] >= 0x80 {
				return nil, fmt.Errorf("%w: ID3 tag size is not a syncsafe integer", ErrFormat)
			}
			end := 10 + (int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]))
			if b[5]&0x10 != 0 {
				end += 10
			}
			if end > len(b) {
				return nil, fmt.Errorf("%w: ID3 tag of %d bytes in a %d-byte file", ErrFormat, end, len(b))
			}
			b = b[end:]
		case len(b) >= 128 && string(b[:3]) == "TAG":
			b = b[128:]
		default:
			if !isMP3(b) {
				return nil, fmt.Errorf("%w: no MPEG audio frame after the tags", ErrFormat)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: too many tags", ErrFormat)
}
