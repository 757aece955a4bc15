// Package numbers benchmarks the number inventory on both stores: importing a carrier file of
// BENCH_NUMBERS_ROWS numbers (default 1,000,000; CSV parsing and NANP validation included,
// PostgreSQL through COPY, SQLite through batched INSERTs), then searches holding 1–10 numbers
// of a random area code from BENCH_NUMBERS_CLIENTS concurrent clients (default 32) for
// BENCH_NUMBERS_SECONDS (default 10), reporting holds/s and latency percentiles.
//
//	go test ./bench/numbers -run '^$' -bench . -benchtime 1x -count 3 -timeout 60m
//
// Each benchmark iteration uses a fresh database; -count gives the runs to take medians of.
package numbers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// inventory writes an import file of n numbers: 10,000 per area code (NXX 200–209), over as
// many geographic area codes as needed.
func inventory(n int) ([]byte, []string) {
	var codes []string
	for _, c := range numbers.USAreaCodes() {
		if !numbers.IsTollFreeNPA(c) {
			codes = append(codes, c)
		}
	}
	var b bytes.Buffer
	b.Grow(n * 30)
	b.WriteString("phoneNumber,carrier\n")
	var used []string
	for i := range n {
		npa := codes[(i/10_000)%len(codes)]
		if i%10_000 == 0 {
			used = append(used, npa)
		}
		fmt.Fprintf(&b, "+1%s%03d%04d,carrier-a\n", npa, 200+i/10_000/len(codes), i%10_000)
	}
	return b.Bytes(), used
}

func BenchmarkSQLite(b *testing.B) {
	run(b, func(tb testing.TB) *store.DB { return storetest.OpenSQLite(tb) })
}

func BenchmarkPostgres(b *testing.B) {
	run(b, func(tb testing.TB) *store.DB {
		db, err := store.Open(context.Background(), store.Options{URL: storetest.NewPostgresDatabase(tb), MaxConns: 40})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			tb.Fatal(err)
		}
		return db
	})
}

func run(b *testing.B, open func(testing.TB) *store.DB) {
	rows := envInt("BENCH_NUMBERS_ROWS", 1_000_000)
	clients := envInt("BENCH_NUMBERS_CLIENTS", 32)
	secs := envInt("BENCH_NUMBERS_SECONDS", 10)
	file, codes := inventory(rows)
	for range b.N {
		db := open(b)
		svc := numbers.New(numbers.Config{Store: db})
		ctx := context.Background()

		start := time.Now()
		rep, err := svc.ImportCSV(ctx, bytes.NewReader(file))
		importDur := time.Since(start)
		if err != nil || rep.Imported != rows || rep.Invalid != 0 {
			b.Fatalf("import: %+v %v", rep, err)
		}

		var mu sync.Mutex
		var lat []time.Duration
		held, failed := 0, 0
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		var wg sync.WaitGroup
		hstart := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), 7))
				var mine []time.Duration
				n, f := 0, 0
				for time.Now().Before(deadline) {
					q := 1 + rng.IntN(10)
					t := time.Now()
					_, op, err := svc.Search(ctx, numbers.SearchRequest{CountryCode: "US", Type: "geographic", Assignment: "person",
						Calling: "inbound+outbound", SMS: "inbound+outbound", AreaCode: codes[rng.IntN(len(codes))], Quantity: &q})
					mine = append(mine, time.Since(t))
					if err != nil || op.Status != numbers.OpSucceeded {
						if err == nil {
							err = errors.New(op.ErrMsg)
						}
						f++
						if f < 3 {
							b.Logf("search: %v", err)
						}
						continue
					}
					n++
				}
				mu.Lock()
				lat = append(lat, mine...)
				held += n
				failed += f
				mu.Unlock()
			}()
		}
		wg.Wait()
		hdur := time.Since(hstart)
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / 1e6 }
		b.ReportMetric(float64(rows)/importDur.Seconds(), "import-rows/s")
		b.ReportMetric(float64(held)/hdur.Seconds(), "holds/s")
		b.ReportMetric(pct(0.50), "hold-p50-ms")
		b.ReportMetric(pct(0.99), "hold-p99-ms")
		b.ReportMetric(float64(failed), "hold-failures")
		b.Logf("%s: imported %d in %v (%.0f rows/s); %d searches by %d clients in %v: %.0f holds/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d failed",
			db.Dialect(), rows, importDur.Round(time.Millisecond), float64(rows)/importDur.Seconds(), held, clients, hdur.Round(time.Millisecond),
			float64(held)/hdur.Seconds(), pct(0.5), pct(0.99), pct(1), failed)
	}
}
