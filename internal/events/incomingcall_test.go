package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/telgw/telgw/internal/calls"
)

// optsTx records jobs with their insert options.
type optsTx struct {
	jobs []river.JobArgs
	opts []*river.InsertOpts
}

func (t *optsTx) InsertJob(_ context.Context, a river.JobArgs, o *river.InsertOpts) error {
	t.jobs, t.opts = append(t.jobs, a), append(t.opts, o)
	return nil
}

var testIncomingCall = calls.IncomingCall{
	To: calls.Phone("+14252000100"), From: calls.Phone("+14255550199"), CallerDisplayName: "Alice",
	ServerCallID: "srv-1", CorrelationID: "corr-1", IncomingCallContext: "ctx-token",
	CustomContext: map[string]string{"X-MS-Custom-Order": "42"},
	At:            time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC),
}

// TestIncomingCallEventShape: the event is what ACS sends (AcsIncomingCallEventData with
// CommunicationIdentifierModel participants, the "/caller/…/recipient/…" subject), field
// for field in JSON.
func TestIncomingCallEventShape(t *testing.T) {
	t.Parallel()
	ev, err := IncomingCallEvent("e1", "/telgw", testIncomingCall)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": "e1", "topic": "/telgw", "subject": "/caller/4:+14255550199/recipient/4:+14252000100",
		"eventType": "Microsoft.Communication.IncomingCall", "eventTime": "2026-12-03T08:00:00Z",
		"dataVersion": "1.0", "metadataVersion": "1",
		"data": map[string]any{
			"to":                  map[string]any{"rawId": "4:+14252000100", "kind": "phoneNumber", "phoneNumber": map[string]any{"value": "+14252000100"}},
			"from":                map[string]any{"rawId": "4:+14255550199", "kind": "phoneNumber", "phoneNumber": map[string]any{"value": "+14255550199"}},
			"callerDisplayName":   "Alice",
			"serverCallId":        "srv-1",
			"correlationId":       "corr-1",
			"incomingCallContext": "ctx-token",
			"customContext":       map[string]any{"sipHeaders": map[string]any{"X-MS-Custom-Order": "42"}, "voipHeaders": map[string]any{}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("event\n got %s\nwant %v", b, want)
	}
	if len(ev.Numbers) != 1 || ev.Numbers[0] != "+14252000100" {
		t.Fatalf("filter numbers %v, want the callee's", ev.Numbers)
	}
	u, _ := json.Marshal(Identifier(calls.User("8:acs:r_u")))
	if string(u) != `{"rawId":"8:acs:r_u","kind":"communicationUser","communicationUser":{"id":"8:acs:r_u"}}` {
		t.Fatalf("user identifier %s", u)
	}
}

// TestIncomingCallDirectFirst: each delivery is attempted at once, off the caller's path; a
// subscriber that takes it leaves no job behind, one that fails gets its retries from the
// urgent queue (and one that answers 410 is not retried).
func TestIncomingCallDirectFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ok, okHits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	down, downHits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	gone, goneHits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	st := &memStore{}
	for id, u := range map[string]string{"ok": ok.URL, "down": down.URL, "gone": gone.URL} {
		_ = st.SubscriptionPut(ctx, Subscription{ID: id, URL: u})
	}
	d := NewDispatcher(Config{Store: st, Client: ok.Client()})
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	tx := &lockedTx{}
	p := &IncomingCalls{Dispatcher: d, Jobs: tx}
	ic := testIncomingCall
	ic.At = time.Now()
	if err := p.PublishIncomingCall(ctx, ic); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if okHits.Load() != 1 || downHits.Load() != 1 || goneHits.Load() != 1 {
		t.Fatalf("direct attempts: ok %d, down %d, gone %d; want one each", okHits.Load(), downHits.Load(), goneHits.Load())
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if len(tx.jobs) != 1 || tx.jobs[0].(DeliverArgs).SubscriptionID != "down" || tx.opts[0].Queue != QueueCalls {
		t.Fatalf("queued %v, want one retry for the subscriber that failed", tx.jobs)
	}
	if s, _ := st.SubscriptionGet(ctx, "gone"); !s.Disabled {
		t.Fatal("the subscription that answered 410 is still enabled")
	}
}

// TestIncomingCallWithoutSubscriber: with no webhook subscribed to the number's IncomingCall,
// publishing fails at once (the caller is refused instead of ringing for nobody).
func TestIncomingCallWithoutSubscriber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{}
	_ = st.SubscriptionPut(ctx, Subscription{ID: "sms", URL: "https://example.com/sms", EventTypes: []string{TypeSMSReceived}})
	d := NewDispatcher(Config{Store: st})
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, queueOnly := range []bool{false, true} {
		p := &IncomingCalls{Dispatcher: d, Jobs: &lockedTx{}, QueueOnly: queueOnly}
		if err := p.PublishIncomingCall(ctx, testIncomingCall); !errors.Is(err, ErrNoSubscriber) {
			t.Fatalf("queueOnly %v: %v, want ErrNoSubscriber", queueOnly, err)
		}
	}
}

type lockedTx struct {
	mu sync.Mutex
	optsTx
}

func (t *lockedTx) InsertJob(ctx context.Context, a river.JobArgs, o *river.InsertOpts) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.optsTx.InsertJob(ctx, a, o)
}

// TestPublishIncomingCall: one urgent job per matching subscription (type and number
// filters), on the calls queue at top priority, expiring at the ring timeout.
func TestPublishIncomingCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{}
	for _, s := range []Subscription{
		{ID: "all", URL: "https://example.com/all"},
		{ID: "calls", URL: "https://example.com/calls", EventTypes: []string{"microsoft.communication.incomingcall"}},
		{ID: "sms", URL: "https://example.com/sms", EventTypes: []string{TypeSMSReceived}},
		{ID: "mine", URL: "https://example.com/mine", PhoneNumbers: []string{"+14252000100"}},
		{ID: "other", URL: "https://example.com/other", PhoneNumbers: []string{"+14252000999"}},
	} {
		if err := st.SubscriptionPut(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDispatcher(Config{Store: st})
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	tx := &optsTx{}
	p := &IncomingCalls{Dispatcher: d, Jobs: tx, MaxAge: 20 * time.Second, QueueOnly: true}
	if err := p.PublishIncomingCall(ctx, testIncomingCall); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, j := range tx.jobs {
		a := j.(DeliverArgs)
		ids = append(ids, a.SubscriptionID)
		if o := tx.opts[i]; o.Queue != QueueCalls || o.Priority != 1 {
			t.Errorf("%s: queue %q priority %d, want %q 1", a.SubscriptionID, o.Queue, o.Priority, QueueCalls)
		}
		if want := testIncomingCall.At.Add(20 * time.Second); !a.ExpiresAt.Equal(want) {
			t.Errorf("%s: expires %v, want %v", a.SubscriptionID, a.ExpiresAt, want)
		}
	}
	slices.Sort(ids)
	if !reflect.DeepEqual(ids, []string{"all", "calls", "mine"}) {
		t.Fatalf("queued for %v, want all, calls, mine", ids)
	}
}

// TestExpiredIncomingCallNotDelivered: past its expiry the job is cancelled without dialling
// the subscriber; before it, failures retry within seconds (not the minute-long backoff of
// other events).
func TestExpiredIncomingCallNotDelivered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, hits := hitServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	st := &memStore{}
	_ = st.SubscriptionPut(ctx, Subscription{ID: "s", URL: srv.URL})
	d := NewDispatcher(Config{Store: st, Client: srv.Client()})
	w := &deliverWorker{d: d}
	job := func(exp time.Time, attempt int) *river.Job[DeliverArgs] {
		return &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{Attempt: attempt},
			Args: DeliverArgs{SubscriptionID: "s", EventID: "e1", Event: testEvent, ExpiresAt: exp}}
	}
	err := w.Work(ctx, job(time.Now().Add(-time.Second), 3))
	var cancel *river.JobCancelError
	if !errors.As(err, &cancel) || hits.Load() != 0 {
		t.Fatalf("expired: err %v, %d requests; want a cancelled job and none", err, hits.Load())
	}
	if err := w.Work(ctx, job(time.Now().Add(time.Minute), 1)); err == nil || hits.Load() != 1 {
		t.Fatalf("live event to a 503 subscriber: err %v, %d requests; want a retry after 1", err, hits.Load())
	}
	for attempt := 1; attempt <= 10; attempt++ {
		if wait := time.Until(w.NextRetry(job(time.Now().Add(time.Minute), attempt))); wait > urgentMaxBackoff {
			t.Fatalf("attempt %d retries after %v, want at most %v", attempt, wait, urgentMaxBackoff)
		}
	}
	if wait := time.Until(w.NextRetry(job(time.Time{}, 5))); wait < 10*time.Second {
		t.Fatalf("an ordinary event retries after %v at attempt 5", wait)
	}
}
