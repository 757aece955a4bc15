// Package inproc is what the SIP and WebRTC load harnesses (bench/sip, bench/webrtc) share.
// Both run telgw's B2BUA (internal/sip) in the test process rather than as a `telgw serve`
// node (internal/testnode): they read its Prometheus registry, its CDRs and its goroutines,
// and profile its CPU apart from the harness. They drive it with SIPp, whose outputs this
// package reads: the call counts, the response-time files (-trace_rtt) and the error log
// (-trace_err).
package inproc

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/sip"
)

// Env is the environment variable name, or def when it is unset or empty.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// EnvInt is the positive integer in the environment variable name, or def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Logger is telgw's logger for a harness: text on stderr at the level named by the
// environment variable levelVar (e.g. info for the call log), error by default, so the
// harness's own output stays readable.
func Logger(levelVar string) *slog.Logger {
	level := slog.LevelError
	_ = level.UnmarshalText([]byte(os.Getenv(levelVar)))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Run runs svc until the test ends; the cleanup stops it and waits for Run to return.
// Goroutines started here inherit the caller's pprof labels.
func Run(t testing.TB, svc *sip.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// FreeUDPPort is a UDP port on ip that was free a moment ago, for SIPp, which takes its ports
// on the command line.
func FreeUDPPort(t testing.TB, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Sum adds up the counters and gauges called name in reg whose labels match want (nil
// matches every series).
func Sum(reg prometheus.Gatherer, name string, want map[string]string) float64 {
	mfs, _ := reg.Gather()
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// Median is the median of v (the upper one of an even count); v is not modified.
func Median[T cmp.Ordered](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// Quantile is the q-quantile of sorted v (0 when empty).
func Quantile[T cmp.Ordered](v []T, q float64) T {
	if len(v) == 0 {
		var zero T
		return zero
	}
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// SIPpScenario reads one of the SIPp scenarios the tests use (test/sipp); the harnesses run
// two directories below the repository root.
func SIPpScenario(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "test", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteTone writes tone.ul, the µ-law audio the scenarios stream, into dir.
func WriteTone(t testing.TB, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "tone.ul"), []byte(strings.Repeat("\xff\x7f", 4000)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SIPpPath is the sipp binary; the test is skipped when it is not installed.
func SIPpPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed: apt-get install -y sip-tester")
	}
	return p
}

var (
	failedRe = regexp.MustCompile(`Failed call\s+\|\s+\d+\s+\|\s+(\d+)`)
	okRe     = regexp.MustCompile(`Successful call\s+\|\s+\d+\s+\|\s+(\d+)`)
	// errKindRe classifies SIPp error log events: unexpected messages (what was expected and
	// the status line received) and timeouts.
	errKindRe = regexp.MustCompile(`(while expecting '[^']*' \(index \d+\), received '[^\r\n]*)|((?:receive|retransmission) timeout on message [^:]*:\d+)`)
)

// SIPpCalls reads the successful and failed call counts from SIPp's final statistics.
func SIPpCalls(out []byte) (ok, failed int) {
	if m := failedRe.FindSubmatch(out); m != nil {
		failed, _ = strconv.Atoi(string(m[1]))
	}
	if m := okRe.FindSubmatch(out); m != nil {
		ok, _ = strconv.Atoi(string(m[1]))
	}
	return ok, failed
}

// SIPpRTTs reads and removes the response-time files a SIPp uac running scenario (a file
// name in dir) wrote with -trace_rtt, and returns the times, sorted.
func SIPpRTTs(dir, scenario string) []time.Duration {
	// <scenario>_<pid>_rtt.csv: a header naming the columns (Date_ms;response_time_ms;rtd_no),
	// then one line per measured response time.
	files, _ := filepath.Glob(filepath.Join(dir, strings.TrimSuffix(scenario, ".xml")+"_*_rtt.csv"))
	var rtts []time.Duration
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		col := 1
		for i, h := range strings.Split(lines[0], ";") {
			if strings.Contains(strings.ToLower(h), "response") {
				col = i
			}
		}
		for _, line := range lines[1:] {
			fs := strings.Split(strings.TrimSpace(line), ";")
			if len(fs) > col {
				if v, err := strconv.ParseFloat(fs[col], 64); err == nil {
					rtts = append(rtts, time.Duration(v*float64(time.Millisecond)))
				}
			}
		}
		_ = os.Remove(f)
	}
	slices.Sort(rtts)
	return rtts
}

// LogSIPpErrors reads and removes the error logs of a SIPp uac running scenario in dir and,
// when calls failed, logs why: the count of each kind of error.
func LogSIPpErrors(t testing.TB, dir, scenario string, failed int) {
	t.Helper()
	errs, _ := filepath.Glob(filepath.Join(dir, strings.TrimSuffix(scenario, ".xml")+"_*_errors.log"))
	for _, f := range errs {
		if b, _ := os.ReadFile(f); failed > 0 && len(b) > 0 {
			kinds := map[string]int{}
			for _, m := range errKindRe.FindAllStringSubmatch(string(b), -1) {
				kinds[m[1]+m[2]]++
			}
			t.Logf("sipp error kinds: %v", kinds)
		}
		_ = os.Remove(f)
	}
}

// CheckGoroutines fails the test when the process has more than 50 goroutines over before,
// naming where the goroutines wait: the first frame of each that contains one of frames
// (module paths such as "github.com/telgw/telgw/").
func CheckGoroutines(t testing.TB, before int, frames ...string) {
	t.Helper()
	after := runtime.NumGoroutine()
	if after <= before+50 {
		return
	}
	buf := make([]byte, 16<<20)
	dump := string(buf[:runtime.Stack(buf, true)])
	where := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		for _, l := range strings.Split(g, "\n") {
			if slices.ContainsFunc(frames, func(f string) bool { return strings.Contains(l, f) }) {
				where[strings.SplitN(strings.TrimSpace(l), "(", 2)[0]]++
				break
			}
		}
	}
	t.Errorf("goroutines grew from %d to %d; first frames in %s: %v", before, after, strings.Join(frames, ", "), where)
}
