package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// MaxPromptSamples bounds a decoded prompt at 8 kHz (30 minutes), whatever its file size.
const MaxPromptSamples = 30 * 60 * Rate

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
	d, err := mp3.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: MP3: %v", ErrFormat, err)
	}
	rate := d.SampleRate()
	if rate < 8000 || rate > 48000 {
		return nil, fmt.Errorf("%w: MP3 at %d Hz", ErrFormat, rate)
	}
	limit := int64(MaxPromptSamples) * int64(rate) / Rate * 4 // bytes of stereo 16-bit
	raw, err := io.ReadAll(io.LimitReader(d, limit+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: MP3: %v", ErrFormat, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%w: longer than %d minutes", ErrFormat, MaxPromptSamples/Rate/60)
	}
	if len(raw) < 4 {
		return nil, fmt.Errorf("%w: MP3 without audio frames", ErrFormat)
	}
	st := make([]int16, len(raw)/2)
	for i := range st {
		st[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
	return Resample(downmix(st, 2), rate, Rate), nil
}
