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
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/bench/internal/inproc"
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

type node struct {
	svc     *sip.Service
	reg     *prometheus.Registry
	pbxPort int
	dir     string
}

func start(t *testing.T) *node {
	t.Helper()
	n := &node{reg: prometheus.NewRegistry(), pbxPort: inproc.FreeUDPPort(t, pbxIP), dir: t.TempDir()}
	svc, err := sip.New(sip.Config{
		Addr:       telgwIP + ":0",
		Trunks:     []sip.TrunkConfig{{Name: "carrier1", Address: carrierIP + ":5070", Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}},
		SourceRate: 1e6, SourceBurst: 1e6, Logger: inproc.Logger("BENCH_SIP_LOG"),
		Registerer: n.reg,
		Media:      bridge.Config{ListenIP: netip.MustParseAddr(telgwIP), PortMin: 20000, PortMax: 39999, MediaTimeout: -1},
	}, sip.Deps{Router: router{fmt.Sprintf("sip:pbx@%s:%d", pbxIP, n.pbxPort)}})
	if err != nil {
		t.Fatal(err)
	}
	n.svc = svc
	inproc.Run(t, svc)
	for _, f := range []string{"uac.xml", "uas.xml"} {
		b := inproc.SIPpScenario(t, f)
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
	inproc.WriteTone(t, n.dir)
	return n
}

func (n *node) sipp(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(inproc.SIPpPath(t), append([]string{"-nostdin", "-max_socket", "65000"}, args...)...)
	cmd.Dir = n.dir
	return cmd
}

func (n *node) counter(name string) float64 { return inproc.Sum(n.reg, name, nil) }

type result struct {
	ok, failed int
	p50, p99   time.Duration
}

// run runs one SIPp uac against telgw with a uas PBX and returns the outcome.
func (n *node) run(t *testing.T, scenario string, rate, calls, limit int, holdMS int, rtp bool) result {
	t.Helper()
	uasArgs := []string{"-sf", "uas.xml", "-i", pbxIP, "-p", strconv.Itoa(n.pbxPort), "-m", strconv.Itoa(calls)}
	if rtp {
		uasArgs = append(uasArgs, "-rtp_echo", "-mp", strconv.Itoa(inproc.FreeUDPPort(t, pbxIP)))
	}
	uas := n.sipp(t, uasArgs...)
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	time.Sleep(300 * time.Millisecond)
	_ = os.RemoveAll(filepath.Join(n.dir, "rtt"))
	uac := n.sipp(t, n.svc.Addr().String(), "-sf", scenario, "-i", carrierIP, "-p", strconv.Itoa(inproc.FreeUDPPort(t, carrierIP)),
		"-s", number, "-key", "caller", "+12125550199", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(limit),
		"-d", strconv.Itoa(holdMS), "-mp", strconv.Itoa(inproc.FreeUDPPort(t, carrierIP)), "-trace_rtt", "-rtt_freq", "1", "-timeout", "600s", "-trace_err")
	out, _ := uac.CombinedOutput()
	var r result
	r.ok, r.failed = inproc.SIPpCalls(out)
	rtts := inproc.SIPpRTTs(n.dir, scenario)
	r.p50, r.p99 = inproc.Quantile(rtts, 0.50), inproc.Quantile(rtts, 0.99)
	if r.ok+r.failed != calls {
		t.Logf("sipp output:\n%s", inproc.Tail(string(out), 2500))
	}
	// Why calls failed: SIPp's error log.
	inproc.LogSIPpErrors(t, n.dir, scenario, r.failed)
	return r
}

func TestBenchSIP(t *testing.T) {
	if os.Getenv("TELGW_BENCH_SIP") == "" {
		t.Skip("set TELGW_BENCH_SIP=1 to run the SIP load harness")
	}
	runs := inproc.EnvInt("BENCH_SIP_RUNS", 3)
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
	for _, rs := range strings.Split(inproc.Env("BENCH_SIP_CPS", "250,500,1000"), ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(rs))
		if err != nil {
			t.Fatal(err)
		}
		calls := inproc.EnvInt("BENCH_SIP_CALLS", 10*rate)
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
		t.Logf("MEDIAN signalling %d cps: failed %d, setup p50 %s, p99 %s, CPU %.0f µs/call (runs %d)", rate, inproc.Median(failed), inproc.Median(p50), inproc.Median(p99), inproc.Median(cpus), runs)
	}
	c, hold := inproc.EnvInt("BENCH_SIP_RTP_CALLS", 200), inproc.EnvInt("BENCH_SIP_RTP_HOLD", 10)
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
		t.Logf("MEDIAN media %d calls × %ds: loss %.3f%%", c, hold, inproc.Median(losses))
	}
	// Server transactions keep state for Timer J/L (64×T1 = 32 s) after the last call.
	time.Sleep(35 * time.Second)
	runtime.GC()
	t.Logf("goroutines before %d, after load and 35 s %d, active calls %d", before, runtime.NumGoroutine(), n.svc.ActiveCalls())
	inproc.CheckGoroutines(t, before, "github.com/telgw/telgw/internal/")
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
