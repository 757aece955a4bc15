package storetest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/store"
)

// CallEvents runs the delivery side of Call Automation on the store: the callback signing
// key every node shares, and IncomingCall events and callbacks queued with DB.InsertJob and
// worked by River on the calls queue over real HTTP.
func CallEvents(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("CallbackKeyShared", func(t *testing.T) { t.Parallel(); callbackKeyShared(t, open(t)) })
	t.Run("Deliveries", func(t *testing.T) { t.Parallel(); callDeliveries(t, open(t)) })
}

// callbackKeyShared: two nodes starting on one store at once agree on one RSA key.
func callbackKeyShared(t *testing.T, db *store.DB) {
	ctx := context.Background()
	rings := make([]*keys.Ring, 2)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := keys.NewRing(ctx, db, "", "")
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	a, b := rings[0].Current(), rings[1].Current()
	if a.CallbackKey == nil || !a.CallbackKey.Equal(b.CallbackKey) || a.CallbackKeyID != b.CallbackKeyID {
		t.Fatalf("nodes disagree on the callback key (kid %q vs %q)", a.CallbackKeyID, b.CallbackKeyID)
	}
}

// post is one request a test receiver got.
type post struct {
	authz string
	body  []byte
	at    time.Time
}

// recorder is an HTTP receiver that answers the webhook handshake, then status (or 200 once
// failFirst attempts have been refused with 503).
type recorder struct {
	mu        sync.Mutex
	posts     []post
	failFirst int
	got       chan struct{}
	seen      int // posts wait has returned
}

func newRecorder(t *testing.T, failFirst int) (*recorder, string) {
	r := &recorder{failFirst: failFirst, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hook"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if events.AnswerValidation(w, body) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failFirst > 0 {
		r.failFirst--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.posts = append(r.posts, post{req.Header.Get("Authorization"), body, time.Now()})
	r.got <- struct{}{}
}

// wait returns the next post, in arrival order.
func (r *recorder) wait(t *testing.T, what string, timeout time.Duration) post {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(timeout):
		t.Fatalf("%s: nothing delivered within %v", what, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen++
	return r.posts[r.seen-1]
}

// callDeliveries: callbacks reach their apps, signed, while a dead callback URL's batches
// wait for their retries without holding anything up; a callback refused once is delivered
// on its retry; an IncomingCall reaches its (handshake-validated) webhook even while hanging
// callback URLs hold every callback worker.
func callDeliveries(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ring, err := keys.NewRing(ctx, db, "", "")
	if err != nil {
		t.Fatal(err)
	}
	allow, _ := events.ParseCIDRs([]string{"127.0.0.1"})
	guard := &events.Guard{Allow: allow}
	hooks := events.NewDispatcher(events.Config{Store: db, Guard: guard})
	hook, hookURL := newRecorder(t, 0)
	if _, err := hooks.Create(ctx, events.Subscription{URL: hookURL, EventTypes: []string{events.TypeIncomingCall}}); err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	// A long client timeout, so callback URLs that hang hold their workers for the whole test.
	cb := events.NewCallbacks(events.CallbacksConfig{Jobs: db, Guard: guard, Client: guard.Client(time.Minute),
		Issuer: func() string { return "http://telgw.test" },
		Key: func() events.SigningKey {
			k := ring.Current()
			return events.SigningKey{Key: k.CallbackKey, KeyID: k.CallbackKeyID, Audience: k.ResourceID}
		}})
	workers := jobs.NewWorkers()
	hooks.Register(workers)
	cb.Register(workers)
	r, err := jobs.New(db, workers, jobs.Config{FetchPollInterval: 20 * time.Millisecond,
		Queues: map[string]int{"default": 2, events.QueueCalls: 2, events.QueueCallbacks: 4}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	live, liveURL := newRecorder(t, 0)
	flaky, flakyURL := newRecorder(t, 1)
	ev := func(typ string) calls.CallbackEvent {
		return calls.CallbackEvent{Type: typ, Subject: "calling/callConnections/cc-1",
			Data: map[string]any{"callConnectionId": "cc-1", "serverCallId": "srv-1", "correlationId": "corr-1"}}
	}
	for range 8 { // more dead batches than the calls queue has workers
		if err := cb.Send(ctx, dead.URL+"/cb", ev("Microsoft.Communication.CallConnected")); err != nil {
			t.Fatal(err)
		}
	}
	if err := cb.Send(ctx, flakyURL, ev("Microsoft.Communication.CallConnected")); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := cb.Send(ctx, liveURL, ev("Microsoft.Communication.CallConnected"), ev("Microsoft.Communication.ParticipantsUpdated")); err != nil {
		t.Fatal(err)
	}
	p := live.wait(t, "live callback", 10*time.Second)
	t.Logf("callback delivered %v after Send", p.at.Sub(sent))
	var ces []events.CloudEvent
	if err := json.Unmarshal(p.body, &ces); err != nil || len(ces) != 1 || ces[0].Type != "Microsoft.Communication.CallConnected" {
		t.Fatalf("first callback body %s: %v", p.body, err)
	}
	second := live.wait(t, "second callback", 10*time.Second)
	if err := json.Unmarshal(second.body, &ces); err != nil || len(ces) != 1 || ces[0].Type != "Microsoft.Communication.ParticipantsUpdated" {
		t.Fatalf("second callback body %s: %v", second.body, err)
	}
	raw, _ := strings.CutPrefix(p.authz, "Bearer ")
	if _, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return cb.JWKS().PublicKey(kid)
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(ring.Current().ResourceID), jwt.WithIssuer("http://telgw.test")); err != nil {
		t.Fatalf("callback JWT: %v", err)
	}

	flaky.wait(t, "callback refused once", 15*time.Second)
	rows, err := r.Jobs(ctx, events.CallbackArgs{}.Kind(), 20)
	if err != nil {
		t.Fatal(err)
	}
	failing := 0
	for _, j := range rows {
		if strings.Contains(string(j.EncodedArgs), dead.URL) && len(j.Errors) > 0 && j.FinalizedAt == nil {
			failing++
		}
	}
	if failing != 8 {
		t.Fatalf("%d dead-URL batches waiting for a retry, want 8", failing)
	}

	// Callback URLs that accept and never answer now hold every callback worker; a ringing
	// call's IncomingCall still goes out at once.
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer hanging.Close()
	defer close(release)
	for range 6 {
		if err := cb.Send(ctx, hanging.URL+"/cb", ev("Microsoft.Communication.CallConnected")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	published := time.Now()
	ic := calls.IncomingCall{To: calls.Phone("+14252000100"), From: calls.Phone("+14255550199"), ServerCallID: "srv-1",
		CorrelationID: "corr-1", IncomingCallContext: "ctx", At: published}
	if err := (&events.IncomingCalls{Dispatcher: hooks, Jobs: db}).PublishIncomingCall(ctx, ic); err != nil {
		t.Fatal(err)
	}
	p = hook.wait(t, "IncomingCall", 10*time.Second)
	t.Logf("IncomingCall delivered %v after publish", p.at.Sub(published))
	var evs []events.Event
	if err := json.Unmarshal(p.body, &evs); err != nil || len(evs) != 1 || evs[0].EventType != events.TypeIncomingCall {
		t.Fatalf("webhook body %s: %v", p.body, err)
	}

}
