// Package mixer is the conference bridge of a call with three or more participants: every
// 20 ms it sums the decoded frames of the unmuted participants and gives each one the sum
// less its own voice, saturated to 16 bits and encoded in its leg's G.711 variant. It is pure
// computation (no goroutine, no clock); the media tick calls Mix.
package mixer

import "github.com/telgw/telgw/internal/media/audio"

// Input is one participant's frame for this tick.
type Input struct {
	// PCM is the participant's decoded 20 ms frame (audio.FrameSamples samples); nil when
	// nothing arrived (silence).
	PCM []int16
	// Muted participants are heard by no one but still hear the others.
	Muted bool
	// Codec is what the participant's leg receives.
	Codec audio.Codec
}

// Mixer holds the scratch space of one conference; not safe for concurrent use.
type Mixer struct {
	total [audio.FrameSamples]int32
	mixed [audio.FrameSamples]int16
}

// sum adds the unmuted inputs into m.total and m.mixed.
func (m *Mixer) sum(in []Input) {
	clear(m.total[:])
	for _, p := range in {
		if p.Muted || len(p.PCM) < audio.FrameSamples {
			continue
		}
		for i, s := range p.PCM[:audio.FrameSamples] {
			m.total[i] += int32(s)
		}
	}
	for i, t := range m.total {
		m.mixed[i] = audio.Clamp(t)
	}
}

// hear writes what participant p hears (everyone else) into dst.
func (m *Mixer) hear(p Input, dst []int16) {
	if p.Muted || len(p.PCM) < audio.FrameSamples {
		copy(dst, m.mixed[:])
		return
	}
	own := p.PCM[:audio.FrameSamples]
	for i, t := range m.total {
		dst[i] = audio.Clamp(t - int32(own[i]))
	}
}

// MixPCM is Mix without the encoding: out[i] (audio.FrameSamples samples each) receives what
// participant i hears, for a Player that encodes itself.
func (m *Mixer) MixPCM(in []Input, out [][]int16) {
	m.sum(in)
	for k, p := range in {
		m.hear(p, out[k][:audio.FrameSamples])
	}
}

// Mix computes one tick. out[i] receives participant i's encoded frame (appended to out[i][:0],
// so callers reuse the buffers); len(out) must equal len(in).
func (m *Mixer) Mix(in []Input, out [][]byte) {
	m.sum(in)
	var frame [audio.FrameSamples]int16
	for k, p := range in {
		m.hear(p, frame[:])
		out[k] = p.Codec.Encode(out[k][:0], frame[:])
	}
}

// Mixed is the last tick's sum of every unmuted participant, saturated: the mono signal a
// mixed recording keeps.
func (m *Mixer) Mixed() []int16 { return m.mixed[:] }
