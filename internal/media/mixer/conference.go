package mixer

import (
	"sync"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

// Source is a participant's incoming audio: one 20 ms frame per call (rtpmedia.Receiver).
type Source interface {
	Pull(dst []int16) []int16
}

// Conference mixes the participants of one call on the players' own pacing: each
// participant's Player gets Feed(id) as its PlayerConfig.Feed and all share one pacing group,
// so in every 20 ms slot the first feed called pulls every participant's frame and mixes once,
// and the others read their share. A participant playing a prompt simply does not call its
// feed (it hears the prompt, the others still hear it speak).
type Conference struct {
	mu      sync.Mutex
	members []*member
	mixer   Mixer
	slot    time.Time // the slot mixed last
	in      []Input
	onMix   func(mixed []int16, each [][]int16)
	each    [][]int16
}

type member struct {
	id    string
	src   Source
	muted bool
	pcm   []int16 // this slot's incoming frame
	hears []int16 // this slot's mix for it
}

// Join adds a participant (or replaces its source).
func (c *Conference) Join(id string, src Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.id == id {
			m.src = src
			return
		}
	}
	c.members = append(c.members, &member{id: id, src: src, pcm: make([]int16, 0, audio.FrameSamples), hears: make([]int16, audio.FrameSamples)})
}

// Leave removes a participant; its feed returns false from then on.
func (c *Conference) Leave(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.id == id {
			c.members = append(c.members[:i], c.members[i+1:]...)
			return
		}
	}
}

// Mute sets whether the others hear id (muteParticipant / unmuteParticipant).
func (c *Conference) Mute(id string, muted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.id == id {
			m.muted = muted
		}
	}
}

// OnMix sets a hook called once per slot with the mix of everyone unmuted and each
// participant's own frame (in Join order): a recording's mixed and unmixed channels. It runs on
// the pacing goroutine and must not block (record.Recorder.Write does not).
func (c *Conference) OnMix(f func(mixed []int16, each [][]int16)) {
	c.mu.Lock()
	c.onMix = f
	c.mu.Unlock()
}

// Feed returns the PlayerConfig.Feed of participant id.
func (c *Conference) Feed(id string) func(due time.Time, dst []int16) bool {
	return func(due time.Time, dst []int16) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !due.Equal(c.slot) {
			c.mixSlot(due)
		}
		for _, m := range c.members {
			if m.id == id {
				copy(dst, m.hears)
				return true
			}
		}
		return false
	}
}

// mixSlot pulls every participant's frame for the slot due and mixes.
func (c *Conference) mixSlot(due time.Time) {
	c.slot = due
	c.in = c.in[:0]
	c.each = c.each[:0]
	for _, m := range c.members {
		m.pcm = m.src.Pull(m.pcm[:0])
		c.in = append(c.in, Input{PCM: m.pcm, Muted: m.muted})
		c.each = append(c.each, m.pcm)
	}
	c.mixer.sum(c.in)
	for i, m := range c.members {
		c.mixer.hear(c.in[i], m.hears)
	}
	if c.onMix != nil {
		c.onMix(c.mixer.Mixed(), c.each)
	}
}
