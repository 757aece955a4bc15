package dtmf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one input to the collector at a time offset: a tone, the prompt's end or a tick.
type step struct {
	at   time.Duration
	kind byte // 't' tone, 'p' prompt done, 'k' tick, 'c' cancel
	tone Tone
	// expectations after the step
	done      bool
	reason    Reason
	tones     []Tone
	interrupt bool
}

func TestCollector(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	base := func(mod func(*CollectConfig)) CollectConfig {
		c := DefaultCollectConfig()
		c.MaxTones = 3
		c.StopTones = []Tone{Pound}
		c.InterruptPrompt = false
		mod(&c)
		return c
	}
	s := time.Second
	for _, tc := range []struct {
		name      string
		cfg       CollectConfig
		prompting bool
		steps     []step
	}{
		{"max tones", base(func(*CollectConfig) {}), false, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 2 * s, kind: 't', tone: 2},
			{at: 3 * s, kind: 't', tone: 3, done: true, reason: MaxTonesReached, tones: []Tone{1, 2, 3}},
			{at: 4 * s, kind: 't', tone: 4}, // after the end: ignored
		}},
		{"stop tone not in result", base(func(*CollectConfig) {}), false, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 2 * s, kind: 't', tone: Pound, done: true, reason: StopToneDetected, tones: []Tone{1}},
		}},
		{"initial silence", base(func(*CollectConfig) {}), false, []step{
			{at: 4999 * time.Millisecond, kind: 'k'},
			{at: 5 * s, kind: 'k', done: true, reason: InitialSilenceTimeout},
		}},
		{"inter-tone timeout keeps tones", base(func(*CollectConfig) {}), false, []step{
			{at: 1 * s, kind: 't', tone: 9},
			{at: 2900 * time.Millisecond, kind: 'k'},
			{at: 3 * s, kind: 'k', done: true, reason: InterToneTimeout, tones: []Tone{9}},
		}},
		{"initial silence counts from the prompt's end", base(func(*CollectConfig) {}), true, []step{
			{at: 10 * s, kind: 'k'}, // prompt still playing: no timer
			{at: 12 * s, kind: 'p'},
			{at: 16 * s, kind: 'k'},
			{at: 17 * s, kind: 'k', done: true, reason: InitialSilenceTimeout},
		}},
		{"interrupt prompt", base(func(c *CollectConfig) { c.InterruptPrompt = true }), true, []step{
			{at: 1 * s, kind: 't', tone: 4, interrupt: true},
			{at: 1 * s, kind: 'p'}, // the engine stopped the prompt: nothing changes
			{at: 2 * s, kind: 't', tone: 5},
			{at: 4 * s, kind: 'k', done: true, reason: InterToneTimeout, tones: []Tone{4, 5}},
		}},
		{"interrupt with the last tone", base(func(c *CollectConfig) { c.InterruptPrompt = true; c.MaxTones = 1 }), true, []step{
			{at: 1 * s, kind: 't', tone: 4, interrupt: true, done: true, reason: MaxTonesReached, tones: []Tone{4}},
		}},
		{"tones kept during a non-interruptible prompt", base(func(*CollectConfig) {}), true, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 2 * s, kind: 't', tone: 2},
			{at: 30 * s, kind: 'k'}, // no timer while the prompt plays
			{at: 31 * s, kind: 'p'},
			{at: 32 * s, kind: 't', tone: 3, done: true, reason: MaxTonesReached, tones: []Tone{1, 2, 3}},
		}},
		{"max reached during a non-interruptible prompt", base(func(c *CollectConfig) { c.MaxTones = 2 }), true, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 2 * s, kind: 't', tone: 2},
			{at: 3 * s, kind: 't', tone: 3}, // beyond max: dropped
			{at: 5 * s, kind: 'p', done: true, reason: MaxTonesReached, tones: []Tone{1, 2}},
		}},
		{"stop tone during a non-interruptible prompt", base(func(*CollectConfig) {}), true, []step{
			{at: 1 * s, kind: 't', tone: 7},
			{at: 2 * s, kind: 't', tone: Pound},
			{at: 3 * s, kind: 't', tone: 8},
			{at: 5 * s, kind: 'p', done: true, reason: StopToneDetected, tones: []Tone{7}},
		}},
		{"tones during the prompt then timeout after it", base(func(*CollectConfig) {}), true, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 5 * s, kind: 'p'},
			{at: 7 * s, kind: 'k', done: true, reason: InterToneTimeout, tones: []Tone{1}},
		}},
		{"no initial timeout", base(func(c *CollectConfig) { c.InitialSilenceTimeout = 0 }), false, []step{
			{at: 1000 * s, kind: 'k'},
			{at: 1001 * s, kind: 't', tone: 2},
			{at: 1003 * s, kind: 'k', done: true, reason: InterToneTimeout, tones: []Tone{2}},
		}},
		{"cancel", base(func(*CollectConfig) {}), false, []step{
			{at: 1 * s, kind: 't', tone: 1},
			{at: 2 * s, kind: 'c', done: true, reason: Canceled, tones: []Tone{1}},
			{at: 3 * s, kind: 'c'}, // once
		}},
	} {
		c, err := NewCollector(tc.cfg, t0, tc.prompting)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, st := range tc.steps {
			now := t0.Add(st.at)
			var o Outcome
			switch st.kind {
			case 't':
				o = c.Tone(st.tone, now)
			case 'p':
				o = c.PromptDone(now)
			case 'k':
				o = c.Tick(now)
			case 'c':
				o = c.Cancel()
			}
			if o.Done != st.done || o.InterruptPrompt != st.interrupt || (st.done && (o.Reason != st.reason || !slices.Equal(o.Tones, st.tones))) {
				t.Errorf("%s: step %d: got %+v, want done=%v %v %v interrupt=%v", tc.name, i, o, st.done, st.reason, st.tones, st.interrupt)
			}
		}
	}
}

func TestCollectorDeadline(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	c, _ := NewCollector(DefaultCollectConfig(), t0, false)
	if got := c.Deadline(); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("deadline %v", got)
	}
	c.Tone(3, t0.Add(time.Second))
	if !c.Deadline().IsZero() {
		t.Error("deadline after completion")
	}
	p, _ := NewCollector(DefaultCollectConfig(), t0, true)
	if !p.Deadline().IsZero() {
		t.Error("deadline while prompting")
	}
}

func TestCollectConfigValidate(t *testing.T) {
	t.Parallel()
	c := CollectConfig{MaxTones: 0, InterToneTimeout: 0, InitialSilenceTimeout: -1, StopTones: []Tone{20}}
	err := c.Validate()
	for _, field := range []string{"maxTonesToCollect", "interToneTimeoutInSeconds", "initialSilenceTimeoutInSeconds", "stopTones"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if err := DefaultCollectConfig().Validate(); err != nil {
		t.Error(err)
	}
	if _, err := NewCollector(c, time.Now(), false); err == nil {
		t.Error("invalid config accepted")
	}
}
