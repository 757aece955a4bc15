package kamailio

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func median[T int | int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// Table renders the medians over runs of every target side by side.
func Table(targets []target, runs map[string][]run, mediaCalls []int) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "metric (median of runs)\t")
	for _, tg := range targets {
		fmt.Fprintf(w, "%s\t", tg.name)
	}
	fmt.Fprintln(w)
	row := func(name string, f func([]run) string) {
		fmt.Fprintf(w, "%s\t", name)
		for _, tg := range targets {
			fmt.Fprintf(w, "%s\t", f(runs[tg.name]))
		}
		fmt.Fprintln(w)
	}
	best := func(rs []run) []Step {
		var out []Step
		for _, r := range rs {
			if s, ok := MaxCPS(r.steps); ok {
				out = append(out, s)
			}
		}
		return out
	}
	row("max CPS with 0 failed calls", func(rs []run) string {
		var v []int
		for _, s := range best(rs) {
			v = append(v, s.CPS)
		}
		return fmt.Sprint(median(v))
	})
	row("  achieved CPS at that step", func(rs []run) string {
		var v []float64
		for _, s := range best(rs) {
			v = append(v, s.Achieved)
		}
		return fmt.Sprintf("%.0f", median(v))
	})
	row("  p99 setup latency at that step", func(rs []run) string {
		var v []time.Duration
		for _, s := range best(rs) {
			v = append(v, s.P99)
		}
		return median(v).String()
	})
	row("first failing step (cps: failed/calls)", func(rs []run) string {
		var out []string
		for _, r := range rs {
			if n := len(r.steps); n > 0 && r.steps[n-1].Failed > 0 {
				s := r.steps[n-1]
				out = append(out, fmt.Sprintf("%d: %d/%d", s.CPS, s.Failed, s.Calls))
			} else {
				out = append(out, "none")
			}
		}
		return strings.Join(out, ", ")
	})
	for i, n := range mediaCalls {
		pick := func(rs []run, f func(MediaResult) float64) float64 {
			var v []float64
			for _, r := range rs {
				if i < len(r.media) {
					v = append(v, f(r.media[i]))
				}
			}
			return median(v)
		}
		row(fmt.Sprintf("RTP %d calls: failed / with media both ways", n), func(rs []run) string {
			return fmt.Sprintf("%.0f / %.0f", pick(rs, func(m MediaResult) float64 { return float64(m.Failed) }),
				pick(rs, func(m MediaResult) float64 { return float64(m.WithMedia) }))
		})
		row(fmt.Sprintf("RTP %d calls: peak concurrent streams", n), func(rs []run) string {
			return fmt.Sprintf("%.0f", pick(rs, func(m MediaResult) float64 { return float64(m.Concurrent) }))
		})
		row(fmt.Sprintf("RTP %d calls: loss caller→callee", n), func(rs []run) string {
			return fmt.Sprintf("%.3f%%", 100*pick(rs, MediaResult.LossToCallee))
		})
		row(fmt.Sprintf("RTP %d calls: loss callee→caller", n), func(rs []run) string {
			return fmt.Sprintf("%.3f%%", 100*pick(rs, MediaResult.LossToCaller))
		})
		row(fmt.Sprintf("RTP %d calls: packets sent / echoed back", n), func(rs []run) string {
			return fmt.Sprintf("%.0f / %.0f", pick(rs, func(m MediaResult) float64 { return float64(m.Sent) }),
				pick(rs, func(m MediaResult) float64 { return float64(m.BackAtCaller) }))
		})
	}
	_ = w.Flush()
	return b.String()
}
