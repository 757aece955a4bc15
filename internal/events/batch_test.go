package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
)

// testJob is a delivery job of n SMSReceived events for subscription sub.
func testJob(t *testing.T, sub string, n int) DeliverArgs {
	t.Helper()
	var jobs []river.InsertManyParams
	for i := range n {
		ev, err := New(fmt.Sprintf("e%03d", i), "/telgw", "sms", TypeSMSReceived, time.Now(), SMSReceivedData{MessageID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		jobs = append(jobs, river.InsertManyParams{Args: DeliverArgs{SubscriptionID: sub, EventID: ev.ID, Event: b},
			InsertOpts: &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: 100}})
	}
	out := Coalesce(jobs)
	if len(out) != 1 {
		t.Fatalf("Coalesce made %d jobs of %d events, want 1", len(out), n)
	}
	return out[0].Args.(DeliverArgs)
}

// TestCoalesce: the deliveries of one commit become one job per subscription, in order, at
// most maxEventsPerJob events each; expiring deliveries and other jobs are left alone.
func TestCoalesce(t *testing.T) {
	t.Parallel()
	var in []river.InsertManyParams
	opts := &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: 100}
	for i := range 600 {
		for _, sub := range []string{"a", "b"} {
			in = append(in, river.InsertManyParams{Args: DeliverArgs{SubscriptionID: sub, EventID: fmt.Sprint(i), Event: json.RawMessage(`{}`)}, InsertOpts: opts})
		}
		if i == 10 {
			in = append(in, river.InsertManyParams{Args: DeliverArgs{SubscriptionID: "a", EventID: "call", Event: json.RawMessage(`{}`),
				ExpiresAt: time.Now()}, InsertOpts: &river.InsertOpts{Queue: QueueCalls}})
			in = append(in, river.InsertManyParams{Args: unrelatedArgs{}})
		}
	}
	out := Coalesce(in)
	var got []string
	next := map[string]int{}
	for _, j := range out {
		a, ok := j.Args.(DeliverArgs)
		if !ok {
			got = append(got, "other")
			continue
		}
		if !a.ExpiresAt.IsZero() {
			got = append(got, "call")
			continue
		}
		got = append(got, fmt.Sprintf("%s:%d", a.SubscriptionID, 1+len(a.More)))
		for _, e := range a.events() {
			if e.ID != fmt.Sprint(next[a.SubscriptionID]) {
				t.Fatalf("%s: event %s out of order, want %d", a.SubscriptionID, e.ID, next[a.SubscriptionID])
			}
			next[a.SubscriptionID]++
		}
	}
	want := []string{"a:256", "b:256", "call", "other", "a:256", "b:256", "a:88", "b:88"}
	if !slices.Equal(got, want) {
		t.Fatalf("jobs %v, want %v", got, want)
	}
}

type unrelatedArgs struct{}

func (unrelatedArgs) Kind() string { return "test.unrelated" }

// hookServer is a subscriber recording every event it accepted with its POST's size; answer
// decides each POST's status from the event ids it carries.
type hookServer struct {
	t      *testing.T
	secret string
	answer func(ids []string) int

	mu       sync.Mutex
	got      map[string]int // accepted deliveries by event id
	posts    [][]string
	inFlight atomic.Int32
	maxIn    atomic.Int32
	delay    time.Duration
}

func newHookServer(t *testing.T, answer func(ids []string) int) (*hookServer, *httptest.Server) {
	h := &hookServer{t: t, secret: "s", answer: answer, got: map[string]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		m := h.maxIn.Load()
		if n <= m || h.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	if err := Verify(h.secret, r.Header, body, time.Now(), time.Minute); err != nil {
		h.t.Errorf("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var evs []Event
	if err := json.Unmarshal(body, &evs); err != nil {
		h.t.Errorf("body %q: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if len(ids) == 1 && r.Header.Get(HeaderID) != ids[0] {
		h.t.Errorf("webhook-id %q for event %s", r.Header.Get(HeaderID), ids[0])
	}
	if len(ids) > 1 && !strings.HasPrefix(r.Header.Get(HeaderID), "batch-") {
		h.t.Errorf("webhook-id %q for a batch", r.Header.Get(HeaderID))
	}
	time.Sleep(h.delay)
	st := http.StatusOK
	if h.answer != nil {
		st = h.answer(ids)
	}
	h.mu.Lock()
	h.posts = append(h.posts, ids)
	if st/100 == 2 {
		for _, id := range ids {
			h.got[id]++
		}
	}
	h.mu.Unlock()
	w.WriteHeader(st)
}

func testDispatcher(t *testing.T, cfg Config, subs ...Subscription) *Dispatcher {
	t.Helper()
	st := &memStore{}
	for _, s := range subs {
		if err := st.SubscriptionPut(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Store, cfg.Guard = st, &Guard{AllowPrivate: true}
	return NewDispatcher(cfg)
}

// TestDeliverJobResumes: a job's events are posted one per request (Event Grid's default),
// signed, several at once but never more than Concurrency; those a subscriber refused (500)
// are posted again by the next attempt, and only those.
func TestDeliverJobResumes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	refused := map[string]bool{}
	h, srv := newHookServer(t, func(ids []string) int {
		mu.Lock()
		defer mu.Unlock()
		if id := ids[0]; id[len(id)-1]%3 == 0 && !refused[id] {
			refused[id] = true
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h.delay = 5 * time.Millisecond
	d := testDispatcher(t, Config{Concurrency: 4}, Subscription{ID: "s1", URL: srv.URL + "/events", Secret: "s"})
	a := testJob(t, "s1", 60)
	done, err := d.deliverJob(context.Background(), a, nil)
	if err == nil || len(done) == 0 || len(done) == 60 {
		t.Fatalf("first attempt: %d delivered, err %v; want some refused", len(done), err)
	}
	done, err = d.deliverJob(context.Background(), a, done)
	if err != nil || len(done) != 60 {
		t.Fatalf("second attempt: %d delivered, err %v", len(done), err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range 60 {
		if id := fmt.Sprintf("e%03d", i); h.got[id] != 1 {
			t.Errorf("event %s delivered %d times, want 1", id, h.got[id])
		}
	}
	if len(h.posts) != 60+len(refused) {
		t.Errorf("%d POSTs, want %d", len(h.posts), 60+len(refused))
	}
	if m := h.maxIn.Load(); m < 2 || m > 4 {
		t.Errorf("at most %d POSTs in flight, want 2..4", m)
	}
}

// TestDeliverJobBatches: a subscription with maxEventsPerBatch gets arrays of up to that many
// events, cut at preferredBatchSizeInKilobytes.
func TestDeliverJobBatches(t *testing.T) {
	t.Parallel()
	h, srv := newHookServer(t, nil)
	d := testDispatcher(t, Config{}, Subscription{ID: "s1", URL: srv.URL, Secret: "s", MaxEventsPerBatch: 40},
		Subscription{ID: "s2", URL: srv.URL + "/small", Secret: "s", MaxEventsPerBatch: 40, PreferredBatchSizeInKilobytes: 1})
	if done, err := d.deliverJob(context.Background(), testJob(t, "s1", 100), nil); err != nil || len(done) != 100 {
		t.Fatalf("s1: %d delivered, %v", len(done), err)
	}
	h.mu.Lock()
	var sizes []int
	for _, p := range h.posts {
		sizes = append(sizes, len(p))
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{20, 40, 40}) {
		t.Errorf("batches of %v events, want 40, 40, 20", sizes)
	}
	h.posts = nil
	h.mu.Unlock()
	if done, err := d.deliverJob(context.Background(), testJob(t, "s2", 10), nil); err != nil || len(done) != 10 {
		t.Fatalf("s2: %d delivered, %v", len(done), err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.posts {
		if len(p) > 4 { // each event is about 300 bytes: 3 or 4 fit in 1 KiB
			t.Errorf("a batch of %d events exceeds 1 KiB", len(p))
		}
	}
	if len(h.got) != 100 {
		t.Errorf("%d distinct events delivered, want 100", len(h.got))
	}
}

// TestCircuitBreaker: a subscriber failing every POST opens its endpoint's circuit after
// breakerThreshold failures: the job stops posting, the next fails at once without a POST,
// and after the cooldown one probe POST goes alone before the rest.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	h, srv := newHookServer(t, func([]string) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	d := testDispatcher(t, Config{Concurrency: 1, MaxBackoff: time.Second}, Subscription{ID: "s1", URL: srv.URL, Secret: "s"})
	a := testJob(t, "s1", 20)
	if _, err := d.deliverJob(context.Background(), a, nil); err == nil {
		t.Fatal("delivered to a failing subscriber")
	}
	h.mu.Lock()
	n := len(h.posts)
	h.mu.Unlock()
	if n != breakerThreshold {
		t.Fatalf("%d POSTs before the circuit opened, want %d", n, breakerThreshold)
	}
	if _, err := d.deliverJob(context.Background(), a, nil); !errors.Is(err, errCircuitOpen) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("while open: %v, want errCircuitOpen naming the 503", err)
	}
	up.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		done, err := d.deliverJob(context.Background(), a, nil)
		if err == nil && len(done) == 20 {
			break
		}
		if !errors.Is(err, errCircuitOpen) || time.Now().After(deadline) {
			t.Fatalf("after recovery: %d delivered, %v", len(done), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.posts) != breakerThreshold+20 || len(h.got) != 20 {
		t.Fatalf("%d POSTs, %d events delivered; want %d, 20", len(h.posts), len(h.got), breakerThreshold+20)
	}
}

// TestSlowEndpointDoesNotStarve: an endpoint's jobs take at most half of the workers; more
// jobs for it are snoozed (no attempt spent) while another subscriber's job runs at once.
func TestSlowEndpointDoesNotStarve(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var entered atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		<-release
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	_, fast := newHookServer(t, nil)
	d := testDispatcher(t, Config{Workers: 4, Concurrency: 2}, Subscription{ID: "slow", URL: slow.URL, Secret: "s"},
		Subscription{ID: "fast", URL: fast.URL, Secret: "s"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = d.deliverJob(ctx, testJob(t, "slow", 1), nil)
		}()
	}
	for entered.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := d.deliverJob(ctx, testJob(t, "slow", 1), nil)
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) {
		t.Fatalf("third job for the slow endpoint: %v, want a snooze", err)
	}
	if done, err := d.deliverJob(ctx, testJob(t, "fast", 3), nil); err != nil || len(done) != 3 {
		t.Fatalf("other endpoint: %d delivered, %v", len(done), err)
	}
	cancel()
	wg.Wait()
}

// TestServerErrorsDoNotOpenCircuit: a subscriber answering 500 at once is up: its answer
// fails the events, not the endpoint, so every event is still posted.
func TestServerErrorsDoNotOpenCircuit(t *testing.T) {
	t.Parallel()
	h, srv := newHookServer(t, func([]string) int { return http.StatusInternalServerError })
	d := testDispatcher(t, Config{Concurrency: 1}, Subscription{ID: "s1", URL: srv.URL, Secret: "s"})
	if _, err := d.deliverJob(context.Background(), testJob(t, "s1", 20), nil); err == nil || errors.Is(err, errCircuitOpen) {
		t.Fatalf("err %v, want the subscriber's 500", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.posts) != 20 {
		t.Fatalf("%d POSTs, want 20", len(h.posts))
	}
}

// TestCreateBatchingBounds: Event Grid's bounds of the batching settings are checked before
// the handshake, the error naming the field; a subscription within them keeps them.
func TestCreateBatchingBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		AnswerValidation(w, body)
	}))
	t.Cleanup(srv.Close)
	d := testDispatcher(t, Config{})
	for field, s := range map[string]Subscription{
		"maxEventsPerBatch":             {URL: srv.URL, MaxEventsPerBatch: 5001},
		"preferredBatchSizeInKilobytes": {URL: srv.URL, MaxEventsPerBatch: 10, PreferredBatchSizeInKilobytes: -1},
	} {
		if _, err := d.Create(ctx, s); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s out of bounds: %v", field, err)
		}
	}
	s, err := d.Create(ctx, Subscription{URL: srv.URL, Secret: "s", MaxEventsPerBatch: 5000, PreferredBatchSizeInKilobytes: 1024})
	if err != nil || s.MaxEventsPerBatch != 5000 || s.PreferredBatchSizeInKilobytes != 1024 {
		t.Fatalf("Create = %+v, %v", s, err)
	}
}

// BenchmarkDeliverJob posts a job of 100 events, one per POST, to a loopback subscriber
// (telgw's side and the subscriber's: both run in this process).
func BenchmarkDeliverJob(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	st := &memStore{}
	_ = st.SubscriptionPut(context.Background(), Subscription{ID: "s1", URL: srv.URL, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	d := NewDispatcher(Config{Store: st, Guard: &Guard{AllowPrivate: true}})
	var jobs []river.InsertManyParams
	for i := range 100 {
		ev, _ := New(fmt.Sprintf("e%03d", i), "/telgw", "sms", TypeSMSReceived, time.Now(), SMSReceivedData{MessageID: fmt.Sprint(i), Message: "bench"})
		raw, _ := json.Marshal(ev)
		jobs = append(jobs, river.InsertManyParams{Args: DeliverArgs{SubscriptionID: "s1", EventID: ev.ID, Event: raw},
			InsertOpts: &river.InsertOpts{Queue: QueueWebhooks}})
	}
	a := Coalesce(jobs)[0].Args.(DeliverArgs)
	b.ReportAllocs()
	for b.Loop() {
		if done, err := d.deliverJob(context.Background(), a, nil); err != nil || len(done) != 100 {
			b.Fatal(len(done), err)
		}
	}
}
