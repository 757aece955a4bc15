package dtmf

import (
	"errors"
	"fmt"
	"time"
)

// CollectConfig is one startRecognizing request's DTMF options (ACS RecognizeOptions and
// DtmfOptions).
type CollectConfig struct {
	// MaxTones is maxTonesToCollect (1 and up; ACS SDKs default to 1).
	MaxTones int
	// StopTones end the collection when pressed; the stop tone is not part of the result.
	StopTones []Tone
	// InterToneTimeout is interToneTimeoutInSeconds (1–60 s; default 2 s).
	InterToneTimeout time.Duration
	// InitialSilenceTimeout is initialSilenceTimeoutInSeconds (0–300 s; default 5 s), counted
	// from the end of the prompt, or from Start without one. 0 waits indefinitely.
	InitialSilenceTimeout time.Duration
	// InterruptPrompt: the first tone stops the prompt. Without it, tones pressed during the
	// prompt are kept and the prompt plays to its end.
	InterruptPrompt bool
}

// DefaultCollectConfig returns ACS's documented defaults: one tone, 2 s between tones, 5 s of
// initial silence, prompt interruptible.
func DefaultCollectConfig() CollectConfig {
	return CollectConfig{MaxTones: 1, InterToneTimeout: 2 * time.Second, InitialSilenceTimeout: 5 * time.Second, InterruptPrompt: true}
}

// Validate reports every problem, named as the REST fields are.
func (c CollectConfig) Validate() error {
	var errs []error
	if c.MaxTones < 1 {
		errs = append(errs, fmt.Errorf("maxTonesToCollect: %d must be at least 1", c.MaxTones))
	}
	if c.InterToneTimeout < time.Second || c.InterToneTimeout > 60*time.Second {
		errs = append(errs, fmt.Errorf("interToneTimeoutInSeconds: %v must be 1–60 s", c.InterToneTimeout))
	}
	if c.InitialSilenceTimeout < 0 || c.InitialSilenceTimeout > 300*time.Second {
		errs = append(errs, fmt.Errorf("initialSilenceTimeoutInSeconds: %v must be 0–300 s", c.InitialSilenceTimeout))
	}
	for _, t := range c.StopTones {
		if !t.Valid() {
			errs = append(errs, fmt.Errorf("stopTones: %v is not a DTMF tone", t))
		}
	}
	return errors.Join(errs...)
}

// Reason is why a collection ended.
type Reason int

// The ends of a collection. The engine maps them to RecognizeCompleted / RecognizeFailed /
// RecognizeCanceled and their resultInformation (docs/MEDIA.md).
const (
	Running Reason = iota
	MaxTonesReached
	StopToneDetected
	InterToneTimeout      // tones were collected, then silence
	InitialSilenceTimeout // nothing was pressed
	Canceled
)

func (r Reason) String() string {
	return [...]string{"running", "maxTonesReached", "stopToneDetected", "interToneTimeout", "initialSilenceTimeout", "canceled"}[r]
}

// Outcome is what a Collector call tells the engine.
type Outcome struct {
	// Done is set once, when the collection ends with Reason.
	Done   bool
	Reason Reason
	// Tones collected (stop tone excluded), set when Done.
	Tones []Tone
	// InterruptPrompt: stop the prompt now (the first tone of an interruptible prompt).
	InterruptPrompt bool
}

// Collector is the ACS DTMF recognize state machine. It has no goroutine and no clock: every
// call takes the current time, and Deadline tells the engine when to call Tick next, so tests
// drive it with a fake clock and the engine with its media tick. Not safe for concurrent use.
type Collector struct {
	cfg       CollectConfig
	prompting bool
	tones     []Tone
	deadline  time.Time // zero: none
	stopped   bool      // a stop tone came during a non-interruptible prompt
	done      bool
}

// NewCollector starts a collection at now; prompting says a prompt is playing (PromptDone is
// then due).
func NewCollector(cfg CollectConfig, now time.Time, prompting bool) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, prompting: prompting}
	if !prompting {
		c.arm(now)
	}
	return c, nil
}

// arm sets the next deadline: initial silence before the first tone, inter-tone after.
func (c *Collector) arm(now time.Time) {
	switch {
	case len(c.tones) > 0:
		c.deadline = now.Add(c.cfg.InterToneTimeout)
	case c.cfg.InitialSilenceTimeout > 0:
		c.deadline = now.Add(c.cfg.InitialSilenceTimeout)
	default:
		c.deadline = time.Time{}
	}
}

// Deadline is when Tick must next be called (zero: no timer runs).
func (c *Collector) Deadline() time.Time {
	if c.done {
		return time.Time{}
	}
	return c.deadline
}

// Tones returns the tones collected so far.
func (c *Collector) Tones() []Tone { return append([]Tone(nil), c.tones...) }

func (c *Collector) finish(r Reason) Outcome {
	c.done, c.deadline = true, time.Time{}
	return Outcome{Done: true, Reason: r, Tones: c.Tones()}
}

// PromptDone reports that the prompt ended (played out or interrupted) at now: the timers
// start, and tones kept during a non-interruptible prompt may already complete the collection.
func (c *Collector) PromptDone(now time.Time) Outcome {
	if c.done || !c.prompting {
		return Outcome{}
	}
	c.prompting = false
	if c.stopped {
		return c.finish(StopToneDetected)
	}
	if len(c.tones) >= c.cfg.MaxTones {
		return c.finish(MaxTonesReached)
	}
	c.arm(now)
	return Outcome{}
}

// Tone takes a key press at now.
func (c *Collector) Tone(t Tone, now time.Time) Outcome {
	if c.done || !t.Valid() {
		return Outcome{}
	}
	var out Outcome
	if c.prompting && c.cfg.InterruptPrompt {
		c.prompting, out.InterruptPrompt = false, true
	}
	if c.prompting && (c.stopped || len(c.tones) >= c.cfg.MaxTones) {
		return out // the result is already decided; PromptDone reports it
	}
	for _, s := range c.cfg.StopTones {
		if s != t {
			continue
		}
		if c.prompting {
			c.stopped = true // reported when the prompt has played
			return out
		}
		o := c.finish(StopToneDetected)
		o.InterruptPrompt = out.InterruptPrompt
		return o
	}
	c.tones = append(c.tones, t)
	if c.prompting {
		return out // kept; PromptDone decides
	}
	if len(c.tones) >= c.cfg.MaxTones {
		o := c.finish(MaxTonesReached)
		o.InterruptPrompt = out.InterruptPrompt
		return o
	}
	c.arm(now)
	return out
}

// Tick fires the timers whose deadline is at or before now.
func (c *Collector) Tick(now time.Time) Outcome {
	if c.done || c.deadline.IsZero() || now.Before(c.deadline) {
		return Outcome{}
	}
	if len(c.tones) == 0 {
		return c.finish(InitialSilenceTimeout)
	}
	return c.finish(InterToneTimeout)
}

// Cancel ends the collection (cancelAllMediaOperations, hang-up).
func (c *Collector) Cancel() Outcome {
	if c.done {
		return Outcome{}
	}
	return c.finish(Canceled)
}
