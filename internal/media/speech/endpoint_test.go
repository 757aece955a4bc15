package speech

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

// signal builds 20 ms frames: noise at floorDB dBFS, with "syllables" (a 200 Hz-rich buzz at
// -20 dBFS) during [on, off) seconds, broken by 100 ms gaps every 300 ms.
func signal(seconds float64, floorDB float64, on, off float64) [][]int16 {
	rng := rand.New(rand.NewPCG(5, 6))
	n := int(seconds * 50)
	var frames [][]int16
	for k := range n {
		f := make([]int16, audio.FrameSamples)
		for i := range f {
			t := float64(k*audio.FrameSamples+i) / audio.Rate
			v := rng.NormFloat64() * 32768 * math.Pow(10, floorDB/20)
			inSyl := t >= on && t < off && math.Mod(t-on, 0.3) < 0.2
			if inSyl {
				v += 3300 * (math.Sin(2*math.Pi*200*t) + 0.5*math.Sin(2*math.Pi*600*t) + 0.3*math.Sin(2*math.Pi*1400*t))
			}
			f[i] = audio.Clamp(int32(v))
		}
		frames = append(frames, f)
	}
	return frames
}

func TestEndpointer(t *testing.T) {
	t.Parallel()
	run := func(cfg EndpointConfig, prompting bool, frames [][]int16, promptEnd int) (*Endpointer, int, int) {
		e, err := NewEndpointer(cfg, prompting)
		if err != nil {
			t.Fatal(err)
		}
		start, end := -1, -1
		for i, f := range frames {
			if i == promptEnd {
				e.PromptDone()
			}
			st := e.Frame(f)
			if st == Speaking && start < 0 {
				start = i
			}
			if st != Waiting && st != Speaking {
				end = i
				break
			}
		}
		return e, start, end
	}
	cfg := DefaultEndpointConfig()

	// Speech from 1.0 to 2.1 s (the last syllable ends at 2.1), then silence: the utterance
	// starts within 100 ms and ends EndSilence after the last syllable.
	e, start, end := run(cfg, false, signal(5, -65, 1.0, 2.2), -1)
	if e.State() != Utterance {
		t.Fatalf("state %v", e.State())
	}
	if s := float64(start) / 50; s < 1.0 || s > 1.1 {
		t.Errorf("speech detected at %.2f s, want 1.0–1.1 s (barge-in point)", s)
	}
	if s := float64(end) / 50; s < 3.0 || s > 3.2 {
		t.Errorf("utterance ended at %.2f s, want about 3.1 s", s)
	}
	if d := float64(len(e.Audio())) / audio.Rate; d < 1.2 || d > 1.4 {
		t.Errorf("utterance of %.2f s, want about 1.3 s (speech plus 200 ms)", d)
	}

	// Nothing said: NoSpeech InitialSilence after the prompt's end, not before.
	_, _, end = run(cfg, true, signal(12, -60, 99, 99), 100)
	if got := time.Duration(end+1-100) * 20 * time.Millisecond; got != cfg.InitialSilence {
		t.Errorf("no speech reported %v after the prompt, want %v", got, cfg.InitialSilence)
	}

	// Talking on and on: cut at MaxUtterance.
	long := cfg
	long.MaxUtterance = 2 * time.Second
	e, _, _ = run(long, false, signal(6, -65, 0.5, 6), -1)
	if e.State() != TooLongDone || len(e.Audio()) != 2*audio.Rate {
		t.Errorf("long speech: %v, %d samples", e.State(), len(e.Audio()))
	}

	// Steady noise is not speech, whatever its level.
	e, _, _ = run(EndpointConfig{EndSilence: time.Second, MaxUtterance: 5 * time.Second}, false, signal(4, -30, 99, 99), -1)
	if e.State() != Waiting {
		t.Errorf("steady noise: %v", e.State())
	}
	if err := (EndpointConfig{}).Validate(); err == nil {
		t.Error("zero config valid")
	}
}
