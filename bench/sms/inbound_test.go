package sms

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/store/storetest"
)

// hookCounter is a webhook subscriber that counts the events it receives by type.
type hookCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newHookCounter(t *testing.T) (*hookCounter, string) {
	h := &hookCounter{counts: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h, "http://" + ln.Addr().String() + "/events"
}

func (h *hookCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var evs []struct {
		EventType string `json:"eventType"`
	}
	_ = json.Unmarshal(b, &evs)
	h.mu.Lock()
	for _, e := range evs {
		h.counts[e.EventType]++
	}
	h.mu.Unlock()
}

func (h *hookCounter) count(typ string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[typ]
}

// acked polls the SMSC until n deliver_sm were answered ESME_ROK (inbound messages and
// receipts telgw committed), returning when the last was.
func acked(t *testing.T, s *smsctest.SMSC, n int, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		s.Send(map[string]any{"cmd": "count"})
		ev := s.Wait("count", nil, 10*time.Second)
		if int(ev["delivered"].(float64)) >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC saw %v of %d deliver_sm acknowledged (%v refused) within %v", ev["delivered"], n, ev["deliverFailed"], timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBenchSMSInbound measures the other direction on both stores: n deliver_sm sent at once
// by the SMSC, each acknowledged once its SMSReceived event is durable (the deliver_sm_resp
// rate), then delivered to a webhook subscriber; and delivery receipts: n messages sent with
// deliveryReport, the SMSC's receipt for each matched to its message part and recorded (with
// its SMSDeliveryReportReceived event) before the deliver_sm_resp.
//
//	BENCH_SMS_N=10000 go test ./bench/sms -run TestBenchSMSInbound -v
//
// Medians of 3 runs of 10,000 on the shared 2-core development machine (CPU: telgw's, per
// message, webhook deliveries included where they overlap):
//
//	                                        SQLite            PostgreSQL
//	deliver_sm durable (acknowledged)   10,079/s  105µs    5,763/s  120µs
//	SMSReceived webhooks delivered         351/s              386/s     (River, 10 workers)
//	sent with receipts, end to end       3,711/s  306µs    2,208/s  286µs
func TestBenchSMSInbound(t *testing.T) {
	n := envInt("BENCH_SMS_N", 1000)
	for _, target := range envList("BENCH_SMS_TARGETS", "sqlite,postgres") {
		if target != "sqlite" && target != "postgres" {
			continue
		}
		t.Run(target, func(t *testing.T) {
			db := ""
			if target == "postgres" {
				db = storetest.NewPostgresDatabase(t) + "?sslmode=disable"
			}
			smsc := smsctest.Start(t, peers, map[string]any{"quiet": true, "receiptDelayMs": 1})
			hooks, url := newHookCounter(t)
			env := []string{"TELGW_LOG_LEVEL=error"}
			profiles := os.Getenv("BENCH_SMS_PPROF")
			if profiles != "" {
				env = append(env, "TELGW_METRICS_ADDR=127.0.0.1:0", "TELGW_METRICS_PPROF=true")
			}
			node := smsctest.StartNode(t, smsctest.NodeOptions{Bin: telgw(t), SMSC: smsc.Addr(), DatabaseURL: db, Window: 50, Links: 2,
				Webhooks: []string{url}, Env: env})
			smsc.Wait("bind", nil, 10*time.Second)
			node.PurchaseNumber("+14252000100", "smsc1")

			cpu0 := cpuTime(t, node.Pid())
			start := time.Now()
			smsc.Send(map[string]any{"cmd": "moburst", "n": n, "from": "12060000000", "to": "14252000100", "message": "bench"})
			end := acked(t, smsc, n, 10*time.Minute)
			cpu := cpuTime(t, node.Pid()) - cpu0
			t.Logf("%s inbound: %d deliver_sm, %.0f/s durable (acknowledged), CPU %v/message", target, n,
				float64(n)/end.Sub(start).Seconds(), (cpu / time.Duration(n)).Round(time.Microsecond))
			deadline := time.Now().Add(10 * time.Minute)
			for hooks.count("Microsoft.Communication.SMSReceived") < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d SMSReceived webhooks", hooks.count("Microsoft.Communication.SMSReceived"), n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%s inbound: %d SMSReceived webhooks delivered, %.0f/s from the first deliver_sm", target, n,
				float64(n)/time.Since(start).Seconds())

			// Receipts: n messages with deliveryReport, 100 recipients per request.
			var reqs []request
			for _, to := range batches(n, 100) {
				var rc []map[string]any
				for _, x := range to {
					rc = append(rc, map[string]any{"to": "+" + x})
				}
				b, _ := json.Marshal(map[string]any{"from": "+14252000100", "message": "bench", "smsRecipients": rc,
					"smsSendOptions": map[string]any{"enableDeliveryReport": true}})
				reqs = append(reqs, request{body: b, n: len(to)})
			}
			var stopProfile func()
			if profiles != "" {
				stopProfile = startProfile(t, node, filepath.Join(profiles, "telgw-"+target+"-receipts.pprof"))
			}
			cpu0 = cpuTime(t, node.Pid())
			start = time.Now()
			for _, r := range reqs {
				var body map[string]any
				_ = json.Unmarshal(r.body, &body)
				if st := node.Do("POST", "/sms?api-version=2021-03-07", body, nil); st != 202 {
					t.Fatalf("POST /sms = %d", st)
				}
			}
			end = acked(t, smsc, 2*n, 10*time.Minute)
			cpu = cpuTime(t, node.Pid()) - cpu0
			if stopProfile != nil {
				stopProfile()
			}
			t.Logf("%s receipts: %d messages sent and their receipts recorded, %.0f/s end to end, CPU %v/message", target, n,
				float64(n)/end.Sub(start).Seconds(), (cpu / time.Duration(n)).Round(time.Microsecond))
		})
	}
}
