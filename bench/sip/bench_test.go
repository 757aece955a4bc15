// Package sip is the SIP load harness: SIPp as carrier (uac) → telgw's B2BUA (internal/sip,
// in-process, with its RTP relay) → SIPp as PBX (uas), all on loopback.
//
//	TELGW_BENCH_SIP=1 go test ./bench/sip -run TestBenchSIP -v -timeout 30m
//
// Two measurements, each repeated BENCH_SIP_RUNS times (default 3; medians reported):
//   - signalling: for each rate in BENCH_SIP_CPS (default "250,500,1000"), BENCH_SIP_CALLS calls
//     (default 10×rate) with no media; failed calls and p50/p99 setup latency (INVITE sent to
//     200 received, SIPp rtd) per rate;
//   - media: BENCH_SIP_RTP_CALLS concurrent G.711 calls (default 200; 0 skips) held BENCH_SIP_RTP_HOLD
//     seconds (default 10) with 50 packet/s streams echoed by the PBX; relayed packets and
//     loss (RTP sequence gaps seen by the relay's legs).
//
// BENCH_SIP_LOG=info shows telgw's log (default error).
// BENCH_SIP_CPUPROFILE=FILE writes a CPU profile of the whole run (telgw and the harness).
// Goroutines are counted before and after (after the transaction timers, 64×T1, ran out):
// sipgo has open reports of leaks in UDP server transactions (issues 277, 349).
package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/sip"
)

const (
	telgwIP   = "127.0.0.1"
	carrierIP = "127.0.0.2"
	pbxIP     = "127.0.0.3"
	number    = "+14155550100"
)

type router struct{ uri string }

func (r router) CallRoute(context.Context, string) (sip.Route, error) {
	return sip.SIPRoute{URI: r.uri}, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type node struct {
	svc     *sip.Service
	reg     *prometheus.Registry
	pbxPort int
	dir     string
}

func start(t *testing.T) *node {
	t.Helper()
	n := &node{reg: prometheus.NewRegistry(), pbxPort: freePort(t, pbxIP), dir: t.TempDir()}
	level := slog.LevelError
	_ = level.UnmarshalText([]byte(os.Getenv("BENCH_SIP_LOG"))) // e.g. info: telgw's call log
	svc, err := sip.New(sip.Config{
		Addr:       telgwIP + ":0",
		Trunks:     []sip.TrunkConfig{{Name: "carrier1", Address: carrierIP + ":5070", Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}},
		SourceRate: 1e6, SourceBurst: 1e6, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Registerer: n.reg,
		Media:      bridge.Config{ListenIP: netip.MustParseAddr(telgwIP), PortMin: 20000, PortMax: 39999, MediaTimeout: -1},
	}, sip.Deps{Router: router{fmt.Sprintf("sip:pbx@%s:%d", pbxIP, n.pbxPort)}})
	if err != nil {
		t.Fatal(err)
	}
	n.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, f := range []string{"uac.xml", "uas.xml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "test", "sipp", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// The signalling-only caller: no RTP.
		if f == "uac.xml" {
			s := regexp.MustCompile(`(?m)^\s*<nop><action><exec rtp_stream=.*$\n`).ReplaceAllString(string(b), "")
			if err := os.WriteFile(filepath.Join(n.dir, "uac_nomedia.xml"), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "tone.ul"), []byte(strings.Repeat("\xff\x7f", 4000)), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) sipp(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed: apt-get install -y sip-tester")
	}
	cmd := exec.Command(path, append([]string{"-nostdin", "-max_socket", "65000"}, args...)...)
	cmd.Dir = n.dir
	return cmd
}

func (n *node) counter(name string) float64 {
	mfs, _ := n.reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil {
					sum += c.GetValue()
				}
			}
		}
	}
	return sum
}

var failedRe = regexp.MustCompile(`Failed call\s+\|\s+\d+\s+\|\s+(\d+)`)

// errKindRe classifies SIPp error log events: unexpected messages (what was expected and the
// status line received) and timeouts.
var errKindRe = regexp.MustCompile(`(while expecting '[^']*' \(index \d+\), received '[^\r\n]*)|((?:receive|retransmission) timeout on message [^:]*:\d+)`)

var okRe = regexp.MustCompile(`Successful call\s+\|\s+\d+\s+\|\s+(\d+)`)

type result struct {
	ok, failed int
	p50, p99   time.Duration
}

// run runs one SIPp uac against telgw with a uas PBX and returns the outcome.
func (n *node) run(t *testing.T, scenario string, rate, calls, limit int, holdMS int, rtp bool) result {
	t.Helper()
	uasArgs := []string{"-sf", "uas.xml", "-i", pbxIP, "-p", strconv.Itoa(n.pbxPort), "-m", strconv.Itoa(calls)}
	if rtp {
		uasArgs = append(uasArgs, "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	}
	uas := n.sipp(t, uasArgs...)
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	time.Sleep(300 * time.Millisecond)
	_ = os.RemoveAll(filepath.Join(n.dir, "rtt"))
	uac := n.sipp(t, n.svc.Addr().String(), "-sf", scenario, "-i", carrierIP, "-p", strconv.Itoa(freePort(t, carrierIP)),
		"-s", number, "-key", "caller", "+12125550199", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(limit),
		"-d", strconv.Itoa(holdMS), "-mp", strconv.Itoa(freePort(t, carrierIP)), "-trace_rtt", "-rtt_freq", "1", "-timeout", "600s", "-trace_err")
	out, _ := uac.CombinedOutput()
	var r result
	if m := failedRe.FindSubmatch(out); m != nil {
		r.failed, _ = strconv.Atoi(string(m[1]))
	}
	if m := okRe.FindSubmatch(out); m != nil {
		r.ok, _ = strconv.Atoi(string(m[1]))
	}
	// <scenario>_<pid>_rtt.csv: a header naming the columns (Date_ms;response_time_ms;rtd_no),
	// then one line per measured response time.
	files, _ := filepath.Glob(filepath.Join(n.dir, strings.TrimSuffix(scenario, ".xml")+"_*_rtt.csv"))
	var rtts []float64
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
					rtts = append(rtts, v)
				}
			}
		}
		_ = os.Remove(f)
	}
	slices.Sort(rtts)
	if len(rtts) > 0 {
		ms := func(q float64) time.Duration {
			return time.Duration(rtts[min(len(rtts)-1, int(q*float64(len(rtts))))] * float64(time.Millisecond))
		}
		r.p50, r.p99 = ms(0.50), ms(0.99)
	}
	if r.ok+r.failed != calls {
		t.Logf("sipp output:\n%s", tail(string(out), 2500))
	}
	// Why calls failed: the first lines of SIPp's error log.
	errs, _ := filepath.Glob(filepath.Join(n.dir, strings.TrimSuffix(scenario, ".xml")+"_*_errors.log"))
	for _, f := range errs {
		if b, _ := os.ReadFile(f); r.failed > 0 && len(b) > 0 {
			kinds := map[string]int{}
			for _, m := range errKindRe.FindAllStringSubmatch(string(b), -1) {
				kinds[m[1]+m[2]]++
			}
			t.Logf("sipp error kinds: %v", kinds)
		}
		_ = os.Remove(f)
	}
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func median[T int | time.Duration | float64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestBenchSIP(t *testing.T) {
	if os.Getenv("TELGW_BENCH_SIP") == "" {
		t.Skip("set TELGW_BENCH_SIP=1 to run the SIP load harness")
	}
	runs := envInt("BENCH_SIP_RUNS", 3)
	n := start(t)
	if p := os.Getenv("BENCH_SIP_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	for _, rs := range strings.Split(env("BENCH_SIP_CPS", "250,500,1000"), ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(rs))
		if err != nil {
			t.Fatal(err)
		}
		calls := envInt("BENCH_SIP_CALLS", 10*rate)
		var failed []int
		var p50, p99 []time.Duration
		var cpus []float64
		for range runs {
			cpu0 := processCPU()
			r := n.run(t, "uac_nomedia.xml", rate, calls, 4*rate, 1, false)
			cpu := float64((processCPU() - cpu0).Microseconds()) / float64(max(r.ok, 1))
			failed, p50, p99, cpus = append(failed, r.failed), append(p50, r.p50), append(p99, r.p99), append(cpus, cpu)
			t.Logf("signalling %d cps × %d calls: ok %d failed %d p50 %s p99 %s, CPU %.0f µs/call", rate, calls, r.ok, r.failed, r.p50, r.p99, cpu)
			time.Sleep(2 * time.Second)
		}
		t.Logf("MEDIAN signalling %d cps: failed %d, setup p50 %s, p99 %s, CPU %.0f µs/call (runs %d)", rate, median(failed), median(p50), median(p99), median(cpus), runs)
	}
	c, hold := envInt("BENCH_SIP_RTP_CALLS", 200), envInt("BENCH_SIP_RTP_HOLD", 10)
	var losses []float64
	for i := 0; c > 0 && i < runs; i++ {
		relayed0, lost0 := n.counter("telgw_rtp_packets_relayed_total"), n.counter("telgw_rtp_packets_lost_total")
		r := n.run(t, "uac.xml", max(c/10, 10), c, c, hold*1000, true)
		relayed, lost := n.counter("telgw_rtp_packets_relayed_total")-relayed0, n.counter("telgw_rtp_packets_lost_total")-lost0
		loss := 100 * lost / max(relayed+lost, 1)
		losses = append(losses, loss)
		t.Logf("media %d concurrent calls × %ds: ok %d failed %d, relayed %.0f packets (expected ≈ %d), lost %.0f (%.3f%%)",
			c, hold, r.ok, r.failed, relayed, c*hold*50*2, lost, loss)
	}
	if c > 0 {
		t.Logf("MEDIAN media %d calls × %ds: loss %.3f%%", c, hold, median(losses))
	}
	// Server transactions keep state for Timer J/L (64×T1 = 32 s) after the last call.
	time.Sleep(35 * time.Second)
	runtime.GC()
	t.Logf("goroutines before %d, after load and 35 s %d, active calls %d", before, runtime.NumGoroutine(), n.svc.ActiveCalls())
	if after := runtime.NumGoroutine(); after > before+50 {
		buf := make([]byte, 8<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		// Where the goroutines wait: the first telgw frame of each.
		where := map[string]int{}
		for _, g := range strings.Split(dump, "\n\n") {
			for _, l := range strings.Split(g, "\n") {
				if strings.Contains(l, "github.com/telgw/telgw/internal/") {
					where[strings.SplitN(strings.TrimSpace(l), "(", 2)[0]]++
					break
				}
			}
		}
		t.Errorf("goroutines grew from %d to %d; first telgw frames: %v", before, after, where)
	}
}

// processCPU is the CPU time (user + system) this process has used: telgw's B2BUA and relay
// run in it, SIPp does not, so a run's difference divided by its calls is telgw's CPU per call.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
