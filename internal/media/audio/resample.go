package audio

import (
	"math"
	"sync"
)

// halfTaps is the half length of the interpolation kernel in output-rate samples: 16 gives a
// stopband well below -70 dB (Blackman window) with a transition band of about 6 % of the
// lower Nyquist frequency.
const halfTaps = 16

// polyphase is a windowed-sinc kernel for one rate pair, one row of taps per fractional phase
// (the output positions of a rational ratio L/M repeat every L samples).
type polyphase struct {
	l, m  int
	half  int // taps each side of the centre
	phase [][]float32
}

var kernels sync.Map // [2]int{from, to} → *polyphase

func kernel(from, to int) *polyphase {
	key := [2]int{from, to}
	if k, ok := kernels.Load(key); ok {
		return k.(*polyphase)
	}
	g := gcd(from, to)
	p := &polyphase{l: to / g, m: from / g}
	scale := math.Min(1, float64(to)/float64(from)) // < 1 when decimating: low-pass first
	fc := 0.5 * scale * 0.94                        // cutoff in cycles per input sample
	p.half = int(math.Ceil(halfTaps / scale))
	p.phase = make([][]float32, p.l)
	for ph := range p.l {
		frac := float64(ph) / float64(p.l)
		row := make([]float32, 2*p.half)
		var sum float64
		taps := make([]float64, 2*p.half)
		for i := range taps {
			d := frac - float64(i-p.half+1) // distance from the output position to input i
			u := d / float64(p.half)
			if math.Abs(u) >= 1 {
				continue
			}
			w := 0.42 + 0.5*math.Cos(math.Pi*u) + 0.08*math.Cos(2*math.Pi*u) // Blackman
			x := 2 * fc * d
			s := 1.0
			if x != 0 {
				s = math.Sin(math.Pi*x) / (math.Pi * x)
			}
			taps[i] = 2 * fc * s * w
			sum += taps[i]
		}
		for i, t := range taps {
			row[i] = float32(t / sum) // unity gain at DC in every phase
		}
		p.phase[ph] = row
	}
	k, _ := kernels.LoadOrStore(key, p)
	return k.(*polyphase)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Resample converts mono PCM from one sample rate to another with a windowed-sinc low-pass
// (so 16 kHz → 8 kHz is a low-pass at 3.76 kHz followed by decimation by two). Rates must be
// positive; the same rate returns a copy.
func Resample(in []int16, from, to int) []int16 {
	if from <= 0 || to <= 0 {
		return nil
	}
	if from == to {
		return append([]int16(nil), in...)
	}
	k := kernel(from, to)
	n := int(int64(len(in)) * int64(k.l) / int64(k.m))
	out := make([]int16, n)
	for j := range n {
		pos := int64(j) * int64(k.m)
		base := int(pos / int64(k.l))
		row := k.phase[pos%int64(k.l)]
		start := base - k.half + 1
		var acc float32
		for i, t := range row {
			x := start + i
			if x < 0 || x >= len(in) {
				continue
			}
			acc += t * float32(in[x])
		}
		out[j] = Clamp(int32(math.Round(float64(acc))))
	}
	return out
}
