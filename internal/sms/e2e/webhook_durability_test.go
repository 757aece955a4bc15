package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

// flakyReceiver is a subscriber that checks signatures and answers 500 to the first POST of
// each event (by id), 200 to the next; while down it answers 503 to everything. It records
// the SMSReceived events it accepted by sender.
type flakyReceiver struct {
	mu      sync.Mutex
	down    bool
	flaky   bool
	refused map[string]bool
	from    map[string]int // accepted SMSReceived by data.from
	posts   int
	bad     int
}

func newFlakyReceiver(t *testing.T) (*flakyReceiver, string) {
	r := &flakyReceiver{refused: map[string]bool{}, from: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, "http://" + ln.Addr().String() + "/events"
}

func (r *flakyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if r.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := events.Verify("a-secret", req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var evs []events.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.flaky {
		for _, ev := range evs {
			if !r.refused[ev.ID] {
				for _, e := range evs {
					r.refused[e.ID] = true
				}
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
	}
	for _, ev := range evs {
		if ev.EventType != events.TypeSMSReceived {
			continue
		}
		var d events.SMSReceivedData
		_ = json.Unmarshal(ev.Data, &d)
		r.from[d.From]++
	}
}

func (r *flakyReceiver) set(down, flaky bool) {
	r.mu.Lock()
	r.down, r.flaky = down, flaky
	r.mu.Unlock()
}

// waitAll waits until an SMSReceived from each of the n burst senders was accepted, and
// returns how many arrived more than once.
func (r *flakyReceiver) waitAll(t *testing.T, n int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		missing, dups := 0, 0
		for i := range n {
			c := r.from[fmt.Sprintf("+%d", 12060000000+i)]
			if c == 0 {
				missing++
			}
			dups += max(c-1, 0)
		}
		posts, bad := r.posts, r.bad
		r.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d deliveries with a bad signature", bad)
		}
		if missing == 0 {
			return dups
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d SMSReceived events never arrived (%d POSTs)", missing, n, posts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliveredMO waits until the SMSC saw n deliver_sm acknowledged: each inbound message and
// its SMSReceived event are durable.
func deliveredMO(t *testing.T, s *smsctest.SMSC, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.Send(map[string]any{"cmd": "count"})
		ev := s.Wait("count", nil, 10*time.Second)
		if int(ev["delivered"].(float64)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC saw %v of %d deliver_sm acknowledged", ev["delivered"], n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhooksSurviveKill9: inbound messages acknowledged while their subscriber is down are
// delivered after telgw is killed with SIGKILL and started again on the same store, each
// signed, none lost. Jobs that were running at the kill are taken up again once River deems
// them stuck (the runner's RescueAfter, 45 s), so a run takes about a minute.
func TestWebhooksSurviveKill9(t *testing.T) {
	const burst = 500
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			smsc := smsctest.Start(t, peers, map[string]any{"quiet": true})
			rcv, url := newFlakyReceiver(t)
			rcv.set(true, false)
			o := nodeOpts{SMSC: smsc.Addr(), DataDir: t.TempDir(), Webhooks: []string{url}}
			if dialect == "postgres" {
				o.DatabaseURL = postgres(t)
			}
			n := startNode(t, o)
			smsc.Wait("bind", nil, 10*time.Second)
			smsc.Send(map[string]any{"cmd": "moburst", "n": burst, "from": "12060000000", "to": us[1:], "message": "before the kill"})
			deliveredMO(t, smsc, burst)
			// Deliveries are failing now: kill the node with them pending.
			for {
				rcv.mu.Lock()
				posts := rcv.posts
				rcv.mu.Unlock()
				if posts > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			n.Kill()
			rcv.set(false, false)
			restartNode(t, o)
			dups := rcv.waitAll(t, burst, 120*time.Second)
			t.Logf("all %d events delivered after the restart; %d twice", burst, dups)
		})
	}
}

// TestWebhooksRetriedUntilAccepted: a subscriber that answers 500 to the first POST of every
// event and 200 to the next gets every event at least once, signed, in Event Grid's default
// one event per POST and with batching (maxEventsPerBatch).
func TestWebhooksRetriedUntilAccepted(t *testing.T) {
	const burst = 300
	for _, batch := range []int{1, 50} {
		t.Run(fmt.Sprintf("maxEventsPerBatch=%d", batch), func(t *testing.T) {
			smsc := smsctest.Start(t, peers, map[string]any{"quiet": true})
			rcv, url := newFlakyReceiver(t)
			rcv.set(false, true)
			sub, _ := json.Marshal([]map[string]any{{"url": url, "secret": "a-secret", "maxEventsPerBatch": batch}})
			startNode(t, nodeOpts{SMSC: smsc.Addr(), Env: []string{"TELGW_WEBHOOKS_SUBSCRIBERS=" + string(sub)}})
			smsc.Wait("bind", nil, 10*time.Second)
			smsc.Send(map[string]any{"cmd": "moburst", "n": burst, "from": "12060000000", "to": us[1:], "message": "flaky"})
			deliveredMO(t, smsc, burst)
			dups := rcv.waitAll(t, burst, 120*time.Second)
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			t.Logf("all %d events accepted in %d POSTs; %d accepted twice", burst, rcv.posts, dups)
		})
	}
}
