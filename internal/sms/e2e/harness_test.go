// Package e2e runs the SMS gateway as users do: the real `telgw serve` binary, the npm smpp
// SMSC, a signature-checking webhook receiver and signed ACS REST calls.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/store/storetest"
)

const peers = "../../../test/peers"

var telgwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telgw-sms-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if telgwBin, err = smsctest.BuildTelgw("../../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// goleak fails the run when a goroutine outlives the tests, then Cleanup removes the build.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// receiver is a webhook subscriber that checks Standard Webhooks signatures.
type receiver struct {
	mu     sync.Mutex
	events []events.Event
	down   bool
	status int // answered when down (default 503)
	bad    int // deliveries with bad signatures
	notify chan struct{}
}

func newReceiver(t testing.TB) (*receiver, string) {
	r := &receiver{notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, "http://" + ln.Addr().String() + "/events"
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down && events.AnswerValidation(w, body) {
		return // the handshake of POST /telgw/webhooks, not an event
	}
	if r.down {
		st := r.status
		if st == 0 {
			st = http.StatusServiceUnavailable
		}
		w.WriteHeader(st)
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
	r.events = append(r.events, evs...)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *receiver) setDown(down bool, status int) {
	r.mu.Lock()
	r.down, r.status = down, status
	r.mu.Unlock()
}

// wait returns the first event of type typ whose data satisfies pred.
func (r *receiver) wait(t testing.TB, typ string, pred func(data map[string]any) bool, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.EventType != typ {
				continue
			}
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			if pred == nil || pred(d) {
				r.mu.Unlock()
				return d
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s event within %v (got %d events, %d badly signed)", typ, timeout, len(r.events), r.bad)
		}
	}
}

// postgres returns a fresh PostgreSQL database URL (skip, or fail in CI, when unreachable).
func postgres(t testing.TB) string { return storetest.NewPostgresDatabase(t) }

// node aliases the shared harness.
type node = smsctest.Node

type nodeOpts = smsctest.NodeOptions

// startNode runs telgw with opts (Bin filled in) on a fresh store and buys the number the
// tests send from.
func startNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	n := restartNode(t, o)
	n.PurchaseNumber(us, "smsc1")
	return n
}

// restartNode runs telgw on a store that already has its number.
func restartNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	o.Bin = telgwBin
	return smsctest.StartNode(t, o)
}
