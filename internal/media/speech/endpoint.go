package speech

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

// EndpointConfig is a speech recognize request's timing (ACS RecognizeOptions and
// SpeechOptions).
type EndpointConfig struct {
	// EndSilence is endSilenceTimeoutInMs: the pause that ends an utterance (default 1 s).
	EndSilence time.Duration
	// InitialSilence is initialSilenceTimeoutInSeconds, from the prompt's end (default 5 s;
	// 0 waits indefinitely).
	InitialSilence time.Duration
	// MaxUtterance bounds one utterance (default 20 s); longer speech is cut there.
	MaxUtterance time.Duration
}

// DefaultEndpointConfig returns the defaults.
func DefaultEndpointConfig() EndpointConfig {
	return EndpointConfig{EndSilence: time.Second, InitialSilence: 5 * time.Second, MaxUtterance: 20 * time.Second}
}

// Validate reports every problem, named as the REST fields are.
func (c EndpointConfig) Validate() error {
	var errs []error
	if c.EndSilence < 100*time.Millisecond || c.EndSilence > 10*time.Second {
		errs = append(errs, fmt.Errorf("endSilenceTimeoutInMs: %v must be 100–10000 ms", c.EndSilence))
	}
	if c.InitialSilence < 0 || c.InitialSilence > 300*time.Second {
		errs = append(errs, fmt.Errorf("initialSilenceTimeoutInSeconds: %v must be 0–300 s", c.InitialSilence))
	}
	if c.MaxUtterance < time.Second {
		errs = append(errs, fmt.Errorf("maxUtterance: %v must be at least 1 s", c.MaxUtterance))
	}
	return errors.Join(errs...)
}

// EndpointState is where an Endpointer is.
type EndpointState int

// Endpointer states.
const (
	Waiting     EndpointState = iota // no speech yet
	Speaking                         // an utterance is being collected
	Utterance                        // done: Audio holds the utterance
	NoSpeech                         // done: the initial silence timed out
	TooLongDone                      // done: the utterance hit MaxUtterance (Audio holds it)
)

// Endpointer finds one utterance in a stream of 20 ms frames by energy against an adaptive
// noise floor: speech starts after three loud frames (60 ms) and ends after EndSilence of
// quiet. Like dtmf.Collector it has no clock of its own: the frame count is its time, and the
// prompt's end (PromptDone) starts the initial-silence timer. Not safe for concurrent use.
type Endpointer struct {
	cfg       EndpointConfig
	prompting bool
	state     EndpointState
	floor     float64 // noise floor, dBFS
	frames    int
	loud      int // consecutive loud frames
	quiet     int // consecutive quiet frames while speaking
	waited    int // frames waited for speech since the timer started
	audio     []int16
	pre       [][]int16 // the frames before speech was confirmed
}

// Frame thresholds.
const (
	onsetFrames  = 3    // 60 ms above threshold starts speech
	speechOverDB = 12.0 // above the noise floor
	minSpeechDB  = -50.0
	frameDur     = 20 * time.Millisecond
)

// NewEndpointer starts looking for speech; prompting says a prompt is playing.
func NewEndpointer(cfg EndpointConfig, prompting bool) (*Endpointer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Endpointer{cfg: cfg, prompting: prompting, floor: -70}, nil
}

// PromptDone starts the initial-silence timer.
func (e *Endpointer) PromptDone() { e.prompting = false }

// State returns the current state.
func (e *Endpointer) State() EndpointState { return e.state }

// Audio returns the utterance once State is Utterance or TooLongDone (8 kHz, with the 60 ms
// of onset and the trailing silence trimmed to 200 ms).
func (e *Endpointer) Audio() []int16 { return e.audio }

func dbfs(f []int16) float64 {
	var s float64
	for _, v := range f {
		s += float64(v) * float64(v)
	}
	if s == 0 {
		return -100
	}
	return 10 * math.Log10(s/float64(len(f))/(32768*32768))
}

// Frame takes the next 20 ms of the participant's audio and returns the new state. The first
// time it returns Speaking is the barge-in moment (interruptPrompt).
func (e *Endpointer) Frame(f []int16) EndpointState {
	switch e.state {
	case Utterance, NoSpeech, TooLongDone:
		return e.state
	}
	level := dbfs(f)
	if e.frames == 0 {
		e.floor = level // calibrate on the first frame; quieter frames lower it at once
	}
	e.frames++
	loud := level > e.floor+speechOverDB && level > minSpeechDB
	frame := append([]int16(nil), f...)
	if e.state == Waiting {
		if !loud {
			// Track the floor: fast down, slow up (0.1 dB a frame).
			if level < e.floor {
				e.floor = level
			} else {
				e.floor = min(e.floor+0.1, level)
			}
			e.loud, e.pre = 0, e.pre[:0]
			if !e.prompting {
				e.waited++
				if e.cfg.InitialSilence > 0 && time.Duration(e.waited)*frameDur >= e.cfg.InitialSilence {
					e.state = NoSpeech
				}
			}
			return e.state
		}
		e.loud++
		e.pre = append(e.pre, frame)
		if e.loud >= onsetFrames {
			e.state = Speaking
			for _, p := range e.pre {
				e.audio = append(e.audio, p...)
			}
			e.pre = nil
		}
		return e.state
	}
	// Speaking.
	e.audio = append(e.audio, frame...)
	if loud {
		e.quiet = 0
	} else {
		e.quiet++
	}
	switch {
	case time.Duration(e.quiet)*frameDur >= e.cfg.EndSilence:
		trim := max(0, e.quiet-10) * audio.FrameSamples // keep 200 ms of the pause
		e.audio = e.audio[:len(e.audio)-trim]
		e.state = Utterance
	case time.Duration(len(e.audio))*time.Second/audio.Rate >= e.cfg.MaxUtterance:
		e.state = TooLongDone
	}
	return e.state
}
