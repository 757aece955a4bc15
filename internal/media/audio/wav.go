package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WAV format tags (RIFF WAVE fmt chunk, Microsoft/IBM multimedia spec 1991).
const (
	FormatPCM  uint16 = 1
	FormatALaw uint16 = 6
	FormatULaw uint16 = 7
	// formatExtensible carries the real tag in the first two bytes of its sub-format GUID.
	formatExtensible uint16 = 0xFFFE
)

// ErrFormat marks audio telgw cannot play (wrapped with the reason).
var ErrFormat = errors.New("unsupported audio format")

// WAV is a parsed WAVE file: its format and the raw bytes of its data chunk.
type WAV struct {
	Format   uint16 // FormatPCM, FormatALaw or FormatULaw
	Channels int
	Rate     int
	Bits     int
	Data     []byte
}

// maxChunks bounds the chunks skipped before "data", so a file of tiny chunks costs little.
const maxChunks = 64

// ParseWAV reads a RIFF WAVE file held in memory: 16-bit linear PCM, 8-bit A-law or 8-bit
// μ-law, any channel count up to 8 and a rate of 8–48 kHz. Other encodings fail with ErrFormat.
// A RIFF or data size larger than the file (as streaming writers such as espeak-ng leave it)
// is clamped to what is there.
func ParseWAV(b []byte) (*WAV, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF WAVE file", ErrFormat)
	}
	var w *WAV
	p := b[12:]
	for range maxChunks {
		if len(p) < 8 {
			break
		}
		id, size := string(p[0:4]), binary.LittleEndian.Uint32(p[4:8])
		body := p[8:]
		if uint64(size) < uint64(len(body)) {
			body = body[:size]
		}
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, len(body))
			}
			w = &WAV{
				Format:   binary.LittleEndian.Uint16(body[0:2]),
				Channels: int(binary.LittleEndian.Uint16(body[2:4])),
				Rate:     int(binary.LittleEndian.Uint32(body[4:8])),
				Bits:     int(binary.LittleEndian.Uint16(body[14:16])),
			}
			if w.Format == formatExtensible {
				if len(body) < 26 {
					return nil, fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE fmt chunk", ErrFormat)
				}
				w.Format = binary.LittleEndian.Uint16(body[24:26])
			}
			if err := w.check(); err != nil {
				return nil, err
			}
		case "data":
			if w == nil {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrFormat)
			}
			frame := w.Channels * w.Bits / 8
			body = body[:len(body)/frame*frame]
			w.Data = body
			return w, nil
		}
		// Chunks are padded to an even size.
		adv := uint64(size) + uint64(size&1)
		if adv >= uint64(len(p)-8) {
			break
		}
		p = p[8+adv:]
	}
	return nil, fmt.Errorf("%w: no data chunk", ErrFormat)
}

func (w *WAV) check() error {
	switch {
	case w.Channels < 1 || w.Channels > 8:
		return fmt.Errorf("%w: %d channels", ErrFormat, w.Channels)
	case w.Rate < 8000 || w.Rate > 48000:
		return fmt.Errorf("%w: sample rate %d Hz", ErrFormat, w.Rate)
	case w.Format == FormatPCM && w.Bits == 16:
	case (w.Format == FormatULaw || w.Format == FormatALaw) && w.Bits == 8:
	default:
		return fmt.Errorf("%w: WAVE format tag %d with %d bits per sample (want PCM 16-bit, μ-law or A-law 8-bit)", ErrFormat, w.Format, w.Bits)
	}
	return nil
}

// Samples decodes the data chunk to linear PCM, channels interleaved.
func (w *WAV) Samples() []int16 {
	switch w.Format {
	case FormatULaw:
		return PCMU.Decode(make([]int16, 0, len(w.Data)), w.Data)
	case FormatALaw:
		return PCMA.Decode(make([]int16, 0, len(w.Data)), w.Data)
	}
	out := make([]int16, len(w.Data)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(w.Data[2*i:]))
	}
	return out
}

// Mono decodes the data chunk and averages the channels.
func (w *WAV) Mono() []int16 {
	s := w.Samples()
	if w.Channels == 1 {
		return s
	}
	return downmix(s, w.Channels)
}

func downmix(s []int16, ch int) []int16 {
	out := make([]int16, len(s)/ch)
	for i := range out {
		var sum int32
		for c := range ch {
			sum += int32(s[i*ch+c])
		}
		out[i] = int16(sum / int32(ch))
	}
	return out
}

// headerSize is the size of the canonical 44-byte header WAVWriter writes.
const headerSize = 44

// maxData is the largest data chunk a RIFF file can describe (its sizes are 32-bit).
const maxData = 1<<32 - 1 - (headerSize - 8)

// ErrTooLong marks a write past the 4 GiB a RIFF header can describe.
var ErrTooLong = errors.New("wav: file would exceed 4 GiB")

// WAVWriter writes a 16-bit PCM WAVE file of one or more interleaved channels. The header is
// written first with zero sizes and fixed up by Close, which needs a WriteSeeker.
type WAVWriter struct {
	w        io.WriteSeeker
	channels int
	rate     int
	n        uint64 // data bytes written
	buf      []byte
}

// NewWAVWriter writes the header of a PCM file and returns the writer.
func NewWAVWriter(w io.WriteSeeker, channels, rate int) (*WAVWriter, error) {
	if channels < 1 || channels > 8 || rate <= 0 {
		return nil, fmt.Errorf("wav: %d channels at %d Hz", channels, rate)
	}
	ww := &WAVWriter{w: w, channels: channels, rate: rate}
	if _, err := w.Write(ww.header()); err != nil {
		return nil, err
	}
	return ww, nil
}

func (ww *WAVWriter) header() []byte {
	h := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], uint32(headerSize-8+ww.n))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], FormatPCM)
	le.PutUint16(h[22:], uint16(ww.channels))
	le.PutUint32(h[24:], uint32(ww.rate))
	le.PutUint32(h[28:], uint32(ww.rate*ww.channels*2))
	le.PutUint16(h[32:], uint16(ww.channels*2))
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(ww.n))
	return h
}

// Write appends interleaved samples (a multiple of the channel count).
func (ww *WAVWriter) Write(samples []int16) error {
	if len(samples)%ww.channels != 0 {
		return fmt.Errorf("wav: %d samples for %d channels", len(samples), ww.channels)
	}
	if ww.n+uint64(2*len(samples)) > maxData {
		return ErrTooLong
	}
	ww.buf = ww.buf[:0]
	for _, s := range samples {
		ww.buf = binary.LittleEndian.AppendUint16(ww.buf, uint16(s))
	}
	n, err := ww.w.Write(ww.buf)
	ww.n += uint64(n)
	return err
}

// DataBytes is the size of the data written so far.
func (ww *WAVWriter) DataBytes() uint64 { return ww.n }

// Close rewrites the header with the final sizes and leaves the offset at the end. It does not
// close the underlying writer.
func (ww *WAVWriter) Close() error {
	if _, err := ww.w.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := ww.w.Write(ww.header()); err != nil {
		return err
	}
	_, err := ww.w.Seek(0, io.SeekEnd)
	return err
}
