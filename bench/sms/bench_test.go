// Package sms is the end-to-end SMS benchmark: N messages posted through the ACS REST API of a
// real `telgw serve`, counted at the npm smpp SMSC on loopback, on SQLite and PostgreSQL; and,
// in the same run, the same N messages through Kannel (smsbox sendsms → bearerbox → SMPP →
// the same kind of SMSC) for comparison.
//
//	go test ./bench/sms -run TestBenchSMS -v -timeout 30m
//
// Env: BENCH_SMS_N (default 5000), BENCH_SMS_RUNS (default 3; the median is reported),
// BENCH_SMS_CONCURRENCY (parallel POSTs of 100 recipients, default 8).
package sms

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/store/storetest"
)

const peers = "../../test/peers"

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

var (
	binOnce sync.Once
	bin     string
	binErr  error
)

func telgw(t *testing.T) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "telgw-bench-")
		if err != nil {
			binErr = err
			return
		}
		bin, binErr = smsctest.BuildTelgw("../..", dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

// count asks the SMSC how many submit_sm it accepted.
func count(t *testing.T, s *smsctest.SMSC) int {
	s.Send(map[string]any{"cmd": "count"})
	ev := s.Wait("count", nil, 10*time.Second)
	return int(ev["accepted"].(float64))
}

// waitCount polls the SMSC until it accepted n, returning when the last arrived (to 10ms).
func waitCount(t *testing.T, s *smsctest.SMSC, n int, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		if c := count(t, s); c >= n {
			return time.Now()
		} else if time.Now().After(deadline) {
			t.Fatalf("SMSC accepted %d of %d within %v", c, n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runTelgw posts n messages (100 recipients per request, conc requests in parallel) and
// returns messages per second from the first request to the last submit at the SMSC, and the
// REST acceptance rate alone.
func runTelgw(t *testing.T, dbURL string, n, conc int) (endToEnd, accept float64) {
	smsc := smsctest.Start(t, peers, map[string]any{"quiet": true})
	node := smsctest.StartNode(t, smsctest.NodeOptions{Bin: telgw(t), SMSC: smsc.Addr(), DatabaseURL: dbURL, Window: 50, Links: 2})
	smsc.Wait("bind", nil, 10*time.Second)
	node.PurchaseNumber("+14252000100", "smsc1")
	reqs := make(chan int, n/100+1)
	for i := 0; i < n; i += 100 {
		reqs <- i
	}
	close(reqs)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range reqs {
				var rc []map[string]any
				for j := i; j < min(i+100, n); j++ {
					rc = append(rc, map[string]any{"to": fmt.Sprintf("+1206%07d", j)})
				}
				body := map[string]any{"from": "+14252000100", "message": "bench", "smsRecipients": rc}
				if st := node.Do("POST", "/sms?api-version=2021-03-07", body, nil); st != 202 {
					t.Errorf("POST /sms = %d", st)
					return
				}
			}
		})
	}
	wg.Wait()
	accepted := time.Since(start)
	end := waitCount(t, smsc, n, 10*time.Minute)
	return float64(n) / end.Sub(start).Seconds(), float64(n) / accepted.Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestBenchSMS(t *testing.T) {
	n := envInt("BENCH_SMS_N", 5000)
	runs := envInt("BENCH_SMS_RUNS", 3)
	conc := envInt("BENCH_SMS_CONCURRENCY", 8)
	results := map[string][]float64{}
	for r := range runs {
		for _, dialect := range []string{"sqlite", "postgres"} {
			t.Run(fmt.Sprintf("%s/run%d", dialect, r+1), func(t *testing.T) {
				db := ""
				if dialect == "postgres" {
					db = storetest.NewPostgresDatabase(t)
				}
				e2e, acc := runTelgw(t, db, n, conc)
				t.Logf("telgw %s: %d messages, %.0f msg/s end to end (REST accepted at %.0f msg/s)", dialect, n, e2e, acc)
				results["telgw-"+dialect] = append(results["telgw-"+dialect], e2e)
				results["telgw-"+dialect+"-accept"] = append(results["telgw-"+dialect+"-accept"], acc)
			})
		}
		t.Run(fmt.Sprintf("kannel/run%d", r+1), func(t *testing.T) {
			rate := runKannel(t, n, conc)
			t.Logf("kannel: %d messages, %.0f msg/s end to end", n, rate)
			results["kannel"] = append(results["kannel"], rate)
		})
	}
	for _, k := range []string{"telgw-postgres", "telgw-postgres-accept", "telgw-sqlite", "telgw-sqlite-accept", "kannel"} {
		if v := results[k]; len(v) > 0 {
			t.Logf("MEDIAN %-22s %8.0f msg/s over %d runs of %d messages", k, median(v), len(v), n)
		}
	}
}
