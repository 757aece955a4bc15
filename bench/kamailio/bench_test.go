package kamailio

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Knobs (all optional):
//
//	TELGW_BENCH=1                    run at all
//	TELGW_BENCH_RATES=100,250,...    signalling ramp, calls/s (default: RampOptions defaults)
//	TELGW_BENCH_STEP=5s              duration of each ramp step
//	TELGW_BENCH_MEDIA_CALLS=100,500  concurrent RTP calls per media run (default 100)
//	TELGW_BENCH_HOLD=30s             how long each media call streams
//	TELGW_BENCH_DRAIN=10s            quiet time before each media run
//	TELGW_BENCH_COUNT=1              runs of everything, medians reported
//	TELGW_BENCH_TELGW=host:port      also measure a running telgw routing
//	                                 +1 415 555 01xx to TELGW_BENCH_CALLEE
//	TELGW_BENCH_KEEP=1               keep the working directories (logs)
//	TELGW_BENCH_CALLEE=host:port     where the SIPp callee listens (default 127.0.0.3, free port)
//
// With -tags telgwsip, telgw's B2BUA (internal/sip) also runs in-process as a second target.

// workDir is a temporary directory, kept (and named in the log) with TELGW_BENCH_KEEP=1 so
// that SIPp's, Kamailio's and rtpengine's logs can be read after a run.
func workDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("TELGW_BENCH_KEEP") != "1" {
		return t.TempDir()
	}
	d, err := os.MkdirTemp("", "bench-kamailio-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keeping %s", d)
	return d
}

func envList(t *testing.T, name string) []int {
	t.Helper()
	var out []int
	for _, s := range strings.Split(os.Getenv(name), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, n)
	}
	return out
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// target is one system under test.
type target struct {
	name string
	addr string
}

// run is one pass of every measurement against one target.
type run struct {
	steps []Step
	media []MediaResult
}

// TestReference measures Kamailio + rtpengine (and telgw when TELGW_BENCH_TELGW is set) with
// the same SIPp load and prints both side by side. It is a benchmark: it runs only with
// TELGW_BENCH=1 and asserts nothing about speed.
func TestReference(t *testing.T) {
	if os.Getenv("TELGW_BENCH") != "1" {
		t.Skip("load benchmark: set TELGW_BENCH=1")
	}
	ctx := context.Background()
	p := Parties{Dir: workDir(t)}
	if c := os.Getenv("TELGW_BENCH_CALLEE"); c != "" {
		host, port, ok := strings.Cut(c, ":")
		n, err := strconv.Atoi(port)
		if !ok || err != nil {
			t.Fatalf("TELGW_BENCH_CALLEE=%q: want host:port", c)
		}
		p.CalleeIP, p.CalleePort = host, n
	}
	if err := p.Defaults(); err != nil {
		t.Skip(err)
	}
	ref, err := Start(ctx, Config{Dir: workDir(t), Callee: p.Callee()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ref.Close)
	targets := []target{{"kamailio+rtpengine", ref.Addr}}
	if a := os.Getenv("TELGW_BENCH_TELGW"); a != "" {
		targets = append(targets, target{"telgw", a})
	} else if a, ok := startTelgw(t, p); ok {
		targets = append(targets, target{"telgw (in-process)", a})
	}
	ramp := RampOptions{Rates: envList(t, "TELGW_BENCH_RATES"), StepDuration: envDuration(t, "TELGW_BENCH_STEP", 0)}
	mediaCalls := envList(t, "TELGW_BENCH_MEDIA_CALLS")
	if len(mediaCalls) == 0 {
		mediaCalls = []int{100}
	}
	hold := envDuration(t, "TELGW_BENCH_HOLD", 30*time.Second)
	drain := envDuration(t, "TELGW_BENCH_DRAIN", 10*time.Second)
	count := 1
	if n := envList(t, "TELGW_BENCH_COUNT"); len(n) == 1 && n[0] > 0 {
		count = n[0]
	}
	runs := map[string][]run{}
	for i := range count {
		for _, tg := range targets {
			var r run
			r.steps, err = SignallingRamp(ctx, tg.addr, p, ramp)
			if err != nil {
				t.Fatalf("%s ramp: %v", tg.name, err)
			}
			for _, s := range r.steps {
				t.Logf("run %d %s: %d cps requested, %.0f achieved, %d/%d failed, %d retrans, %d unexpected, p50 %s p99 %s max %s",
					i+1, tg.name, s.CPS, s.Achieved, s.Failed, s.Calls, s.Retrans, s.Unexpected, s.P50, s.P99, s.Max)
			}
			for _, n := range mediaCalls {
				// Let the target drain what an overloaded step left behind (transactions
				// waiting on timers, media sessions never deleted) before measuring again.
				time.Sleep(drain)
				m, err := Media(ctx, tg.addr, p, MediaOptions{Calls: n, Rate: max(min(n, 100), n/10), Hold: hold})
				if err != nil {
					t.Fatalf("%s media %d: %v", tg.name, n, err)
				}
				t.Logf("run %d %s: media %+v loss→callee %.4f%% loss→caller %.4f%%",
					i+1, tg.name, m, 100*m.LossToCallee(), 100*m.LossToCaller())
				r.media = append(r.media, m)
			}
			runs[tg.name] = append(runs[tg.name], r)
		}
	}
	fmt.Print(Table(targets, runs, mediaCalls))
}
