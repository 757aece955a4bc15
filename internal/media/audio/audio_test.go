package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/zaf/g711"
)

// Known values from ITU-T G.711 tables 1a/2a: zero encodes to 0xFF (μ-law) and 0xD5 (A-law);
// the largest magnitudes decode to ±32124 (μ-law) and ±32256 (A-law).
func TestG711KnownValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Codec
		in   int16
		code byte
	}{
		{PCMU, 0, 0xFF}, {PCMA, 0, 0xD5},
		{PCMU, 32767, 0x80}, {PCMU, -32768, 0x00},
		{PCMA, 32767, 0xAA}, {PCMA, -32768, 0x2A},
	} {
		if got := tc.c.EncodeSample(tc.in); got != tc.code {
			t.Errorf("%v encode %d = %#x, want %#x", tc.c, tc.in, got, tc.code)
		}
	}
	for _, tc := range []struct {
		c    Codec
		code byte
		want int16
	}{
		{PCMU, 0x80, 32124}, {PCMU, 0x00, -32124}, {PCMU, 0xFF, 0}, {PCMU, 0x7F, 0},
		{PCMA, 0xAA, 32256}, {PCMA, 0x2A, -32256}, {PCMA, 0xD5, 8}, {PCMA, 0x55, -8},
	} {
		if got := tc.c.DecodeSample(tc.code); got != tc.want {
			t.Errorf("%v decode %#x = %d, want %d", tc.c, tc.code, got, tc.want)
		}
	}
	if PCMU.Silence() != 0xFF || PCMA.Silence() != 0xD5 {
		t.Error("silence bytes")
	}
}

// The lookup tables agree with the g711 library for every input, and a decode/encode round
// trip is the identity on codes (except μ-law's negative zero 0x7F, which encodes back as 0xFF).
func TestG711TablesMatchLibrary(t *testing.T) {
	t.Parallel()
	for i := range 65536 {
		s := int16(uint16(i))
		if PCMU.EncodeSample(s) != g711.EncodeUlawFrame(s) || PCMA.EncodeSample(s) != g711.EncodeAlawFrame(s) {
			t.Fatalf("table differs at %d", s)
		}
	}
	for i := range 256 {
		b := byte(i)
		if got := PCMA.EncodeSample(PCMA.DecodeSample(b)); got != b {
			t.Errorf("A-law %#x round trip = %#x", b, got)
		}
		if got := PCMU.EncodeSample(PCMU.DecodeSample(b)); got != b && b != 0x7F {
			t.Errorf("μ-law %#x round trip = %#x", b, got)
		}
	}
	enc := PCMU.Encode(nil, []int16{0, 1000, -1000})
	dec := PCMU.Decode(nil, enc)
	if len(dec) != 3 || math.Abs(float64(dec[1]-1000)) > 32 || math.Abs(float64(dec[2]+1000)) > 32 {
		t.Errorf("slice round trip %v", dec)
	}
}

func sine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

func rms(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

func TestResample(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to int
		freq     float64
		gainDB   float64 // expected gain, ±1 dB; below -60 means "at most"
	}{
		{"16k→8k passband", 16000, 8000, 1000, 0},
		{"16k→8k 3.4 kHz", 16000, 8000, 3400, 0},
		{"16k→8k alias", 16000, 8000, 6000, -70},
		{"22.05k→8k passband", 22050, 8000, 440, 0},
		{"22.05k→8k alias", 22050, 8000, 7000, -70},
		{"44.1k→8k alias", 44100, 8000, 12000, -70},
		{"8k→16k", 8000, 16000, 1000, 0},
	} {
		in := sine(tc.freq, tc.from, tc.from/2, 10000)
		out := Resample(in, tc.from, tc.to)
		if want := len(in) * tc.to / tc.from; len(out) != want {
			t.Fatalf("%s: %d samples, want %d", tc.name, len(out), want)
		}
		// Skip the kernel's edges.
		mid := out[len(out)/4 : 3*len(out)/4]
		gain := 20 * math.Log10(rms(mid)/rms(in[len(in)/4:3*len(in)/4]))
		if tc.gainDB <= -60 {
			if gain > tc.gainDB {
				t.Errorf("%s: gain %.1f dB, want below %.0f dB", tc.name, gain, tc.gainDB)
			}
		} else if math.Abs(gain-tc.gainDB) > 1 {
			t.Errorf("%s: gain %.2f dB, want %.0f dB", tc.name, gain, tc.gainDB)
		}
	}
	if got := Resample([]int16{1, 2}, 8000, 8000); len(got) != 2 {
		t.Error("same rate copies")
	}
	if Resample([]int16{1}, 0, 8000) != nil {
		t.Error("zero rate")
	}
}

type memFile struct {
	b   []byte
	off int
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.off + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[m.off:], p)
	m.off += len(p)
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
		m.off = int(off)
	case 2:
		m.off = len(m.b) + int(off)
	}
	return int64(m.off), nil
}

func TestWAVRoundTrip(t *testing.T) {
	t.Parallel()
	f := &memFile{}
	w, err := NewWAVWriter(f, 2, 8000)
	if err != nil {
		t.Fatal(err)
	}
	in := []int16{1, -1, 300, -300, 32767, -32768}
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]int16{1}); err == nil {
		t.Error("odd sample count for 2 channels accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := ParseWAV(f.b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Channels != 2 || p.Rate != 8000 || p.Bits != 16 || p.Format != FormatPCM {
		t.Fatalf("header %+v", p)
	}
	if got := p.Samples(); len(got) != len(in) || got[4] != 32767 || got[5] != -32768 {
		t.Errorf("samples %v", got)
	}
	if got := p.Mono(); len(got) != 3 || got[0] != 0 {
		t.Errorf("mono %v", got)
	}
	if binary.LittleEndian.Uint32(f.b[4:]) != uint32(len(f.b)-8) || binary.LittleEndian.Uint32(f.b[40:]) != 12 {
		t.Error("sizes not fixed up")
	}
}

// wavBytes builds a WAVE file by hand.
func wavBytes(tag uint16, ch, rate, bits int, data []byte, dataSize uint32) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+len(data)))
	b.WriteString("WAVE")
	b.WriteString("LIST") // an unrelated chunk, odd-sized and padded, first
	_ = binary.Write(&b, le, uint32(3))
	b.WriteString("abc\x00")
	b.WriteString("fmt ")
	_ = binary.Write(&b, le, uint32(16))
	_ = binary.Write(&b, le, tag)
	_ = binary.Write(&b, le, uint16(ch))
	_ = binary.Write(&b, le, uint32(rate))
	_ = binary.Write(&b, le, uint32(rate*ch*bits/8))
	_ = binary.Write(&b, le, uint16(ch*bits/8))
	_ = binary.Write(&b, le, uint16(bits))
	b.WriteString("data")
	_ = binary.Write(&b, le, dataSize)
	b.Write(data)
	return b.Bytes()
}

func TestLoadPromptWAV(t *testing.T) {
	t.Parallel()
	pcm16 := make([]byte, 3200) // 100 ms at 16 kHz
	ulaw := bytes.Repeat([]byte{0xFF}, 800)
	for _, tc := range []struct {
		name    string
		b       []byte
		samples int
		err     string
	}{
		{"pcm 8k", wavBytes(1, 1, 8000, 16, pcm16, 3200), 1600, ""},
		{"pcm 16k", wavBytes(1, 1, 16000, 16, pcm16, 3200), 800, ""},
		{"ulaw", wavBytes(7, 1, 8000, 8, ulaw, 800), 800, ""},
		{"alaw", wavBytes(6, 1, 8000, 8, ulaw, 800), 800, ""},
		{"streaming size", wavBytes(1, 1, 8000, 16, pcm16, 0x7ffff000), 1600, ""},
		{"stereo", wavBytes(1, 2, 8000, 16, pcm16, 3200), 0, "2 channels"},
		{"22k", wavBytes(1, 1, 22050, 16, pcm16, 3200), 0, "22050 Hz"},
		{"ulaw 16k", wavBytes(7, 1, 16000, 8, ulaw, 800), 0, "16000 Hz"},
		{"8-bit pcm", wavBytes(1, 1, 8000, 8, ulaw, 800), 0, "format tag 1 with 8 bits"},
		{"float", wavBytes(3, 1, 8000, 32, pcm16, 3200), 0, "format tag 3"},
		{"no data", wavBytes(1, 1, 8000, 16, nil, 0)[:48], 0, "no data chunk"},
		{"garbage", []byte("hello world, not audio"), 0, "neither WAV"},
	} {
		got, err := LoadPrompt(tc.b)
		if tc.err != "" {
			if !errors.Is(err, ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != tc.samples {
			t.Errorf("%s: %d samples, %v; want %d", tc.name, len(got), err, tc.samples)
		}
	}
}

// testdata/speech.mp3 is the first 24 kB of go-mp3's public-domain example (MPEG-2 layer III,
// 22.05 kHz mono speech).
func TestLoadPromptMP3(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/speech.mp3")
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := LoadPrompt(b)
	if err != nil {
		t.Fatal(err)
	}
	secs := float64(len(pcm)) / Rate
	if secs < 3 || secs > 5 || rms(pcm) < 100 {
		t.Errorf("decoded %.2f s at rms %.0f; want about 4 s of speech", secs, rms(pcm))
	}
	if _, err := LoadPrompt(b[:200]); err == nil {
		t.Error("truncated MP3 accepted")
	}
	// A ten-byte ID3 header claiming a huge tag is refused before any allocation.
	huge := append([]byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), b[10:4000]...)
	if _, err := LoadPrompt(huge); !errors.Is(err, ErrFormat) {
		t.Errorf("huge ID3 tag: %v", err)
	}
	notSyncsafe := append([]byte("ID3\x04\x00\x00\xff\x00\x00\x00"), b[10:4000]...)
	if _, err := LoadPrompt(notSyncsafe); !errors.Is(err, ErrFormat) {
		t.Errorf("non-syncsafe ID3 size: %v", err)
	}

}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBytes(1, 1, 8000, 16, make([]byte, 64), 64))
	f.Add(wavBytes(7, 1, 8000, 8, make([]byte, 64), 0xFFFFFFFF))
	f.Add(wavBytes(0xFFFE, 2, 16000, 16, make([]byte, 64), 64))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWAV(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if len(w.Data)%(w.Channels*w.Bits/8) != 0 {
			t.Fatalf("data %d bytes not whole frames", len(w.Data))
		}
		_ = w.Mono()
		_, _ = LoadPrompt(b)
	})
}

// FuzzLoadPrompt feeds arbitrary files, MP3-looking ones included, through the whole decoder:
// it must return samples or ErrFormat, never panic.
func FuzzLoadPrompt(f *testing.F) {
	if b, err := os.ReadFile("testdata/speech.mp3"); err == nil {
		f.Add(b[:1200]) // small: each MP3 execution decodes, and new inputs are minimised
	}
	f.Add([]byte{0xFF, 0xFB, 0x90, 0x64, 0x00})
	f.Add(wavBytes(1, 1, 16000, 16, make([]byte, 64), 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := LoadPrompt(b); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
	})
}
