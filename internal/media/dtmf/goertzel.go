package dtmf

import "math"

// The DTMF frequencies (ITU-T Q.23): rows (low group) and columns (high group).
var (
	rowFreqs = [4]float64{697, 770, 852, 941}
	colFreqs = [4]float64{1209, 1336, 1477, 1633}
	keypad   = [4][4]Tone{{1, 2, 3, A}, {4, 5, 6, B}, {7, 8, 9, C}, {Star, 0, Pound, D}}
)

// Detector thresholds (ITU-T Q.24 gives the ranges administrations use; these follow the
// common North American ones).
const (
	window = 160 // 20 ms analysis window at 8 kHz (bin width 50 Hz: rows 73 Hz apart resolve)
	hop    = 80  // a window every 10 ms, so a 40 ms tone (Q.24 minimum) fills two windows
	// minAmp is the smallest peak amplitude per tone, in 16-bit linear units: about -35 dBm0
	// (0 dBm0 ≈ 22,700 peak on the G.711 scale), under Q.24's -25 to -30 dBm0 must-accept
	// levels after line loss.
	minAmp = 400
	// Q.24 twist: the high-group tone may be up to 8 dB weaker than the low (normal twist) and
	// up to 4 dB stronger (reverse twist).
	normalTwist  = 8.0
	reverseTwist = 4.0
	// The strongest tone of each group must beat the other three by this much (dB).
	groupMargin = 6.0
	// toneShare is the least part of the window's energy the two tones must carry: speech and
	// music spread theirs over many frequencies (talk-off protection).
	toneShare = 0.6
	// hitsToDetect consecutive windows must agree on a key: a 40 ms tone (the Q.24 minimum)
	// fills three at a 10 ms hop wherever it starts, a 20 ms one (Q.24: reject) at most two.
	// missesToRelease windows without it end the key: a 10 ms dropout inside a press spans
	// two, a 40 ms pause (the Q.24 minimum) at least three.
	hitsToDetect    = 3
	missesToRelease = 3
)

var coeffs = func() (c [8]float32) {
	for i, f := range append(rowFreqs[:], colFreqs[:]...) {
		c[i] = float32(2 * math.Cos(2*math.Pi*f/8000))
	}
	return c
}()

var (
	twistLow  = float32(math.Pow(10, normalTwist/10))
	twistHigh = float32(math.Pow(10, reverseTwist/10))
	margin    = float32(math.Pow(10, groupMargin/10))
	minPower  = float32(minAmp * window / 2 * minAmp * window / 2) // |X|² of a sine of minAmp
)

// Detector finds DTMF keys in 8 kHz linear PCM (decoded G.711) with the Goertzel algorithm on
// 20 ms windows every 10 ms. Each key press is reported once, when it has lasted three windows (30–40 ms).
// The zero Detector is ready; it keeps 10 ms of history, so one Detector serves one stream.
type Detector struct {
	buf    [window]float32
	n      int // samples in buf
	cand   Tone
	hits   int
	on     bool
	onTone Tone
	misses int
}

// Process analyses pcm (any length; 20 ms frames in practice) and appends each key that
// starts to dst.
func (d *Detector) Process(dst []Tone, pcm []int16) []Tone {
	for len(pcm) > 0 {
		k := min(window-d.n, len(pcm))
		for i, s := range pcm[:k] {
			d.buf[d.n+i] = float32(s)
		}
		d.n += k
		pcm = pcm[k:]
		if d.n < window {
			break
		}
		tone, ok := analyse(&d.buf)
		if t, start := d.step(tone, ok); start {
			dst = append(dst, t)
		}
		copy(d.buf[:], d.buf[hop:])
		d.n = window - hop
	}
	return dst
}

// step advances the press/release state with one window's verdict: a key starts after
// hitsToDetect agreeing windows and ends after missesToRelease windows without it (a window of
// another key counts as a miss, so a glitch inside a long press does not report it twice).
func (d *Detector) step(t Tone, ok bool) (Tone, bool) {
	switch {
	case !ok:
		d.hits = 0
	case d.hits > 0 && t == d.cand:
		d.hits++
	default:
		d.cand, d.hits = t, 1
	}
	if d.on {
		if ok && t == d.onTone {
			d.misses = 0
			return 0, false
		}
		if d.misses++; d.misses < missesToRelease {
			return 0, false
		}
		d.on = false
	}
	if d.hits >= hitsToDetect {
		d.on, d.onTone, d.misses = true, d.cand, 0
		return d.cand, true
	}
	return 0, false
}

// analyse runs the eight Goertzel filters over one window and applies the Q.24 checks.
func analyse(x *[window]float32) (Tone, bool) {
	var p [8]float32
	var energy float32
	for _, v := range x {
		energy += v * v
	}
	if energy == 0 {
		return 0, false
	}
	for f := range 8 {
		c := coeffs[f]
		var s1, s2 float32
		for _, v := range x {
			s1, s2 = v+c*s1-s2, s1
		}
		p[f] = s1*s1 + s2*s2 - c*s1*s2
	}
	r, pr := peak(p[:4])
	c, pc := peak(p[4:])
	switch {
	case pr < minPower || pc < minPower:
		return 0, false
	case pr > pc*twistLow || pc > pr*twistHigh:
		return 0, false
	}
	for i := range 4 {
		if (i != r && p[i]*margin > pr) || (i != c && p[4+i]*margin > pc) {
			return 0, false
		}
	}
	// A sine of amplitude a carries |X|² = (aN/2)² and energy a²N/2, so 2|X|²/N over the
	// window's energy is the share of the energy each tone holds.
	if 2*(pr+pc)/window < toneShare*energy {
		return 0, false
	}
	return keypad[r][c], true
}

func peak(p []float32) (int, float32) {
	best := 0
	for i := 1; i < len(p); i++ {
		if p[i] > p[best] {
			best = i
		}
	}
	return best, p[best]
}
