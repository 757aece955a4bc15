package mixer

import (
	"fmt"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

func flat(v int16) []int16 {
	f := make([]int16, audio.FrameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// decoded returns sample 0 of each participant's output.
func decoded(in []Input, out [][]byte) []int16 {
	var got []int16
	for i, o := range out {
		if len(o) != audio.FrameSamples {
			panic("frame size")
		}
		got = append(got, in[i].Codec.DecodeSample(o[0]))
	}
	return got
}

// near compares with G.711's quantisation in mind (a few percent).
func near(a, b int16) bool {
	d := int(a) - int(b)
	if d < 0 {
		d = -d
	}
	return d <= 16+abs(int(b))/16
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestMix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []Input
		want []int16
	}{
		{"each hears the others, not itself",
			[]Input{{PCM: flat(1000)}, {PCM: flat(2000), Codec: audio.PCMA}, {PCM: flat(-500)}},
			[]int16{1500, 500, 3000}},
		{"muted is heard by no one but hears all",
			[]Input{{PCM: flat(1000)}, {PCM: flat(2000), Muted: true}, {PCM: flat(300)}},
			[]int16{300, 1300, 1000}},
		{"silent participant (nothing received)",
			[]Input{{PCM: flat(1000)}, {PCM: nil}, {PCM: flat(300)}},
			[]int16{300, 1300, 1000}},
		{"saturates instead of wrapping",
			[]Input{{PCM: flat(30000)}, {PCM: flat(30000)}, {PCM: flat(30000)}, {PCM: flat(-32768)}},
			[]int16{27232, 27232, 27232, 32767}},
		{"negative saturation",
			[]Input{{PCM: flat(-30000)}, {PCM: flat(-30000)}, {PCM: flat(-30000)}},
			[]int16{-32768, -32768, -32768}},
	} {
		var m Mixer
		out := make([][]byte, len(tc.in))
		m.Mix(tc.in, out)
		got := decoded(tc.in, out)
		for i := range got {
			if !near(got[i], tc.want[i]) {
				t.Errorf("%s: participant %d hears %d, want %d", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	// The recording mix is everyone unmuted.
	var m Mixer
	m.Mix([]Input{{PCM: flat(100)}, {PCM: flat(200)}, {PCM: flat(400), Muted: true}}, make([][]byte, 3))
	if m.Mixed()[5] != 300 {
		t.Errorf("mixed %d", m.Mixed()[5])
	}
}

// BenchmarkMix measures one 20 ms tick of a conference, G.711 decode of every input included;
// ns/participant is the cost per participant per frame.
func BenchmarkMix(b *testing.B) {
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			payloads := make([][]byte, n)
			pcm := make([][]int16, n)
			in := make([]Input, n)
			out := make([][]byte, n)
			for i := range n {
				f := make([]int16, audio.FrameSamples)
				for j := range f {
					f[j] = int16((i*131 + j*17) % 20000)
				}
				payloads[i] = audio.PCMU.Encode(nil, f)
				pcm[i] = make([]int16, 0, audio.FrameSamples)
				out[i] = make([]byte, 0, audio.FrameSamples)
			}
			var m Mixer
			b.ReportAllocs()
			for b.Loop() {
				for i := range n {
					pcm[i] = audio.PCMU.Decode(pcm[i][:0], payloads[i])
					in[i] = Input{PCM: pcm[i], Codec: audio.PCMU}
				}
				m.Mix(in, out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/participant")
		})
	}
}

type constSource int16

func (s constSource) Pull(dst []int16) []int16 { return append(dst, flat(int16(s))...) }

func TestConference(t *testing.T) {
	t.Parallel()
	var c Conference
	c.Join("a", constSource(1000))
	c.Join("b", constSource(2000))
	c.Join("c", constSource(-500))
	var recorded [][]int16
	c.OnMix(func(mixed []int16, each [][]int16) {
		r := []int16{mixed[0]}
		for _, e := range each {
			r = append(r, e[0])
		}
		recorded = append(recorded, r)
	})
	fa, fb, fc := c.Feed("a"), c.Feed("b"), c.Feed("c")
	dst := make([]int16, audio.FrameSamples)
	slot := time.Unix(100, 0)
	hear := func(f func(time.Time, []int16) bool) int16 {
		if !f(slot, dst) {
			return -1
		}
		return dst[0]
	}
	if a, b, cc := hear(fa), hear(fb), hear(fc); a != 1500 || b != 500 || cc != 3000 {
		t.Errorf("slot 1: a hears %d, b %d, c %d", a, b, cc)
	}
	c.Mute("b", true)
	slot = slot.Add(20 * time.Millisecond)
	if a, b, cc := hear(fa), hear(fb), hear(fc); a != -500 || b != 500 || cc != 1000 {
		t.Errorf("b muted: a hears %d, b %d, c %d", a, b, cc)
	}
	c.Leave("c")
	slot = slot.Add(20 * time.Millisecond)
	if a, cc := hear(fa), hear(fc); a != 0 || cc != -1 {
		t.Errorf("c left: a hears %d, c feed %d", a, cc)
	}
	// One mix per slot, whoever asks first.
	if len(recorded) != 3 || recorded[0][0] != 2500 || recorded[1][0] != 500 || recorded[1][2] != 2000 || len(recorded[2]) != 3 {
		t.Errorf("recording hook %v", recorded)
	}
	var m Mixer
	out := [][]int16{make([]int16, audio.FrameSamples), make([]int16, audio.FrameSamples)}
	m.MixPCM([]Input{{PCM: flat(10)}, {PCM: flat(20)}}, out)
	if out[0][0] != 20 || out[1][0] != 10 {
		t.Errorf("MixPCM %d %d", out[0][0], out[1][0])
	}
}
