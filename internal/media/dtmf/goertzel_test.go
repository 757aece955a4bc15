package dtmf

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/telgw/telgw/internal/media/audio"
)

var freqOf = func() map[Tone][2]float64 {
	m := map[Tone][2]float64{}
	for r := range 4 {
		for c := range 4 {
			m[keypad[r][c]] = [2]float64{rowFreqs[r], colFreqs[c]}
		}
	}
	return m
}()

// dBm0 is a sine's peak amplitude on the 16-bit G.711 scale at the given level (0 dBm0 ≈
// 3.17 dB below the μ-law overload point, 32124).
func dBm0(level float64) float64 { return 32124 / math.Pow(10, 3.17/20) * math.Pow(10, level/20) }

// tone synthesises a DTMF key: each frequency at its own level, both scaled by (1+drift).
func tone(k Tone, ms int, lowDB, highDB, drift float64, phase float64) []int16 {
	f := freqOf[k]
	n := ms * 8
	out := make([]int16, n)
	for i := range out {
		x := float64(i) / 8000
		v := dBm0(lowDB)*math.Sin(2*math.Pi*f[0]*(1+drift)*x+phase) + dBm0(highDB)*math.Sin(2*math.Pi*f[1]*(1+drift)*x)
		out[i] = audio.Clamp(int32(v))
	}
	return out
}

func silence(ms int) []int16 { return make([]int16, ms*8) }

// g711 passes pcm through μ-law, as a carrier leg does.
func g711(pcm []int16) []int16 { return audio.PCMU.Decode(nil, audio.PCMU.Encode(nil, pcm)) }

func detect(pcm []int16) []Tone {
	var d Detector
	var got []Tone
	for i := 0; i < len(pcm); i += audio.FrameSamples {
		got = d.Process(got, pcm[i:min(i+audio.FrameSamples, len(pcm))])
	}
	return got
}

func TestGoertzelAllKeys(t *testing.T) {
	t.Parallel()
	for k := range Tone(16) {
		for _, lvl := range []float64{-4, -10, -20, -28} {
			got := detect(g711(append(append(silence(30), tone(k, 60, lvl, lvl-2, 0, 0.3)...), silence(50)...)))
			if len(got) != 1 || got[0] != k {
				t.Errorf("key %v at %v dBm0: detected %v", k, lvl, got)
			}
		}
	}
}

func TestGoertzelQ24Limits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		ms              int
		low, high, drft float64
		want            bool
	}{
		{"40 ms (Q.24 minimum)", 40, -10, -10, 0, true},
		{"20 ms: too short", 20, -10, -10, 0, false},
		{"normal twist 7 dB", 80, -8, -15, 0, true},
		{"normal twist 10 dB", 80, -8, -18, 0, false},
		{"reverse twist 3 dB", 80, -13, -10, 0, true},
		{"reverse twist 6 dB", 80, -16, -10, 0, false},
		{"+1.5 % frequency", 80, -10, -10, 0.015, true},
		{"-1.5 % frequency", 80, -10, -10, -0.015, true},
		{"-45 dBm0: too quiet", 80, -45, -45, 0, false},
	} {
		for _, off := range []int{0, 3, 7, 13} { // start at different offsets within a frame
			pcm := append(append(silence(off), tone(5, tc.ms, tc.low, tc.high, tc.drft, 0)...), silence(60)...)
			got := detect(g711(pcm))
			if (len(got) == 1 && got[0] == 5) != tc.want || len(got) > 1 {
				t.Errorf("%s (offset %d ms): detected %v, want %v", tc.name, off, got, tc.want)
			}
		}
	}
}

func TestGoertzelSequence(t *testing.T) {
	t.Parallel()
	var pcm []int16
	want := []Tone{1, 1, 2, Pound, 0, Star, D}
	for _, k := range want {
		pcm = append(pcm, tone(k, 50, -8, -10, 0, 0)...)
		pcm = append(pcm, silence(45)...) // Q.24 minimum pause is 40 ms
	}
	got := detect(g711(pcm))
	if len(got) != len(want) {
		t.Fatalf("detected %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("detected %v, want %v", got, want)
		}
	}
	// A long press with a 10 ms dropout in the middle is one press.
	long := append(append(tone(3, 200, -10, -10, 0, 0), silence(10)...), tone(3, 200, -10, -10, 0, 0)...)
	if got := detect(g711(long)); len(got) != 1 {
		t.Errorf("long press with dropout: %v", got)
	}
}

// Talk-off: speech and noise must not look like keys.
func TestGoertzelNoFalseDetections(t *testing.T) {
	t.Parallel()
	// testdata/speech.wav: 21 s of espeak-ng speech (three voices, digits spoken), 8 kHz.
	b, err := os.ReadFile("testdata/speech.wav")
	if err != nil {
		t.Fatal(err)
	}
	w, err := audio.ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	speech := w.Mono()
	for _, gain := range []float64{0.5, 1, 2.5} {
		s := make([]int16, len(speech))
		for i, v := range speech {
			s[i] = audio.Clamp(int32(float64(v) * gain))
		}
		if got := detect(g711(s)); len(got) != 0 {
			t.Errorf("speech at gain %v detected %v", gain, got)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]int16, 8000*20)
	for i := range noise {
		noise[i] = int16(rng.NormFloat64() * 3000)
	}
	if got := detect(g711(noise)); len(got) != 0 {
		t.Errorf("white noise detected %v", got)
	}
	// Tones survive noise at 15 dB SNR.
	tn := tone(8, 80, -10, -10, 0, 0)
	for i := range tn {
		tn[i] = audio.Clamp(int32(tn[i]) + int32(rng.NormFloat64()*dBm0(-25)/math.Sqrt2))
	}
	if got := detect(g711(tn)); len(got) != 1 || got[0] != 8 {
		t.Errorf("tone in noise: %v", got)
	}
}

// TestGoertzelLatency reports how long after a tone's start it is detected when fed 20 ms
// frames (the in-band part of DTMF recognition latency).
func TestGoertzelLatency(t *testing.T) {
	t.Parallel()
	var worst, sum float64
	n := 0
	for off := 0; off < 160; off += 8 {
		pcm := append(append(silence(100), make([]int16, off)...), tone(6, 100, -10, -10, 0, 0)...)
		start := 800 + off
		var d Detector
		for i := 0; i < len(pcm); i += 160 {
			if got := d.Process(nil, pcm[i:i+160]); len(got) > 0 {
				lat := float64(i+160-start) / 8 // ms from tone start to the end of the frame that reported it
				sum += lat
				worst = max(worst, lat)
				n++
				break
			}
		}
	}
	if n != 20 {
		t.Fatalf("detected %d of 20", n)
	}
	t.Logf("in-band detection latency: mean %.1f ms, worst %.1f ms after tone start (20 ms frames)", sum/float64(n), worst)
}

func BenchmarkGoertzelFrame(b *testing.B) {
	pcm := g711(tone(5, 20, -10, -10, 0, 0))
	var d Detector
	var dst []Tone
	b.ReportAllocs()
	for b.Loop() {
		dst = d.Process(dst[:0], pcm)
	}
}
