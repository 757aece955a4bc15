package sms

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms/receipt"
)

const (
	us   = "+14255550100"
	them = "+14255550199"
)

type fixture struct {
	svc     *Service
	store   *memStore
	jobs    *memJobs
	events  *memEvents
	carrier *scriptCarrier

	mu  sync.Mutex
	now time.Time
}

func newFixture(numbers Numbers) *fixture {
	f := &fixture{store: newMemStore(), events: &memEvents{}, carrier: &scriptCarrier{name: "c1", errs: map[string]error{}}, now: time.Now()}
	f.jobs = f.store.jobs
	f.svc = New(Config{Store: f.store, Events: f.events, Numbers: numbers, Carriers: []Carrier{f.carrier}, Now: f.clock})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// advance moves the fixture's clock (past retry backoffs).
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// sendDue runs carrier c1's sender over everything due now, batch after batch as Run's
// sender does, and returns how many messages it claimed.
func (f *fixture) sendDue(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	sd := f.svc.senders["c1"]
	total := 0
	for {
		batch, err := sd.claim(ctx, cap(f.svc.inflight))
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			return total
		}
		total += len(batch)
		for _, q := range batch {
			f.svc.inflight <- struct{}{}
			sd.send(ctx, q)
		}
		sd.wg.Wait()
	}
}

// queued returns the queued messages, keyword replies only when replies is set.
func (f *fixture) queued(replies bool) []Message {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	var out []Message
	for _, m := range f.store.msgs {
		if m.Status == StatusQueued && (!replies || m.KeywordReply) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return f.store.seq[out[i].ID] < f.store.seq[out[j].ID] })
	return out
}

func TestSendValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(memNumbers{us: {Purchased: true, CanSend: true}, "+14255550111": {Purchased: true}})
	rc := []Recipient{{To: them}}
	many := make([]Recipient, 101)
	tests := []struct {
		name   string
		req    SendRequest
		target string
	}{
		{"bad from", SendRequest{From: "acme", Recipients: rc, Message: "x"}, "from"},
		{"unowned from", SendRequest{From: "+14255550000", Recipients: rc, Message: "x"}, "from"},
		{"no sms capability", SendRequest{From: "+14255550111", Recipients: rc, Message: "x"}, "from"},
		{"no recipients", SendRequest{From: us, Message: "x"}, "smsRecipients"},
		{"101 recipients", SendRequest{From: us, Recipients: many, Message: "x"}, "smsRecipients"},
		{"empty", SendRequest{From: us, Recipients: rc}, "message"},
		{"too long", SendRequest{From: us, Recipients: rc, Message: strings.Repeat("x", 2049)}, "message"},
		{"negative validity", SendRequest{From: us, Recipients: rc, Message: "x", Validity: -time.Second}, "smsSendOptions"},
	}
	for _, tt := range tests {
		_, err := f.svc.Send(context.Background(), tt.req)
		pe, ok := problem.As(err)
		if !ok || pe.Kind != problem.KindInvalid || pe.Target != tt.target {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if len(f.jobs.jobs) != 0 {
		t.Fatal("a rejected request enqueued jobs")
	}
}

func TestSendResults(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	_ = f.store.SMSTx(ctx, func(tx Tx) error { return tx.OptOutSet(ctx, us, "+14255550166", true, time.Now()) })
	rid := uuid.NewString()
	first := "Tue, 26 Mar 2019 16:06:51 GMT"
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", DeliveryReport: true, Recipients: []Recipient{
		{To: them}, {To: "12345"}, {To: "+14255550166"}, {To: "+1 (425) 555-0177", RepeatabilityRequestID: rid, RepeatabilityFirstSent: first},
		{To: "+14255550177", RepeatabilityRequestID: rid, RepeatabilityFirstSent: first}, {To: them, RepeatabilityRequestID: "not-a-uuid", RepeatabilityFirstSent: first},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ok, invalid := problem.Kind(-1), problem.KindInvalid
	want := []struct {
		kind problem.Kind // -1: accepted
		rep  string
	}{{ok, ""}, {invalid, ""}, {ok, ""}, {ok, "accepted"}, {ok, "rejected"}, {invalid, ""}}
	for i, w := range want {
		r := res[i]
		kind := problem.Kind(-1)
		if r.Err != nil {
			kind = problem.KindOf(r.Err)
		}
		if kind != w.kind || r.Successful() != (w.kind == ok) || r.RepeatabilityResult != w.rep || (r.MessageID == "") == (w.kind == ok) {
			t.Errorf("result %d = %+v, want kind %v repeatability %q", i, r, w.kind, w.rep)
		}
	}
	if res[3].MessageID != res[4].MessageID {
		t.Error("a repeat within one request got a new message")
	}
	if q := f.queued(false); len(q) != 3 {
		t.Fatalf("queued %+v, want 3 messages", q)
	}
	// The opted-out recipient's message ends failed with a report when the sender claims it,
	// without reaching the carrier.
	f.sendDue(t)
	for _, o := range f.carrier.got {
		if o.To == "+14255550166" {
			t.Fatal("the opted-out recipient's message reached the carrier")
		}
	}
	m, _ := f.store.MessageGet(ctx, res[2].MessageID)
	reps := f.events.ofType(events.TypeSMSDeliveryReportReceived)
	if m.Status != StatusFailed || len(reps) != 1 || !strings.Contains(string(reps[0].Data), "opted out") {
		t.Fatalf("opted out: %+v, reports %d", m, len(reps))
	}
	// Retrying the request: rejected with the first id, nothing new queued.
	res2, _ := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: "+14255550177", RepeatabilityRequestID: strings.ToUpper(rid), RepeatabilityFirstSent: first}}})
	if res2[0].RepeatabilityResult != "rejected" || res2[0].MessageID != res[3].MessageID || len(f.queued(false)) != 0 {
		t.Fatalf("repeat: %+v", res2)
	}
}

func TestSendWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	f.carrier.errs["+14255550102"] = &SubmitError{Code: 0x58, Temporary: true, Reason: "throttled"}
	f.carrier.errs["+14255550103"] = &SubmitError{Code: 0x0B, Reason: "bad destination"}
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", DeliveryReport: true,
		Recipients: []Recipient{{To: "+14255550101"}, {To: "+14255550102"}, {To: "+14255550103"}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.sendDue(t); n != 3 {
		t.Fatalf("sender claimed %d messages, want 3", n)
	}
	sent, _ := f.store.MessageGet(ctx, res[0].MessageID)
	retry, _ := f.store.MessageGet(ctx, res[1].MessageID)
	failed, _ := f.store.MessageGet(ctx, res[2].MessageID)
	if sent.Status != StatusSent || sent.Segments != 2 || retry.Status != StatusQueued || failed.Status != StatusFailed ||
		!strings.Contains(failed.StatusDetails, "bad destination") {
		t.Fatalf("after work: %+v / %+v / %+v", sent, retry, failed)
	}
	// The throttled message waits its backoff (1s after the first attempt), then goes again;
	// the sent and failed ones are not submitted again.
	if retry.Attempts != 1 || !retry.NextAttempt.Equal(f.clock().UTC().Add(time.Second)) {
		t.Fatalf("throttled message %+v, want attempt 1 held back 1s", retry)
	}
	before := len(f.carrier.got)
	if n := f.sendDue(t); n != 0 {
		t.Fatalf("sender claimed %d messages before the backoff ended", n)
	}
	f.advance(2 * time.Second)
	if n := f.sendDue(t); n != 1 || len(f.carrier.got)-before != 1 {
		t.Fatalf("after the backoff the sender claimed %d and submitted %d, want only the queued one", n, len(f.carrier.got)-before)
	}

	// Receipts: part 1 delivered, part 2 failed → failed, 1/1, one report; a repeat is ignored.
	part := func(i int) string { return "0" + string(rune('A'+i)) + "1" }
	for _, r := range []receipt.Receipt{{ID: part(0), State: receipt.StateDelivered}, {ID: part(0), State: receipt.StateDelivered},
		{ID: strings.ToLower(part(1)), State: receipt.StateUndeliverable, Err: "034"}} {
		if err := f.svc.HandleReceipt(ctx, Receipt{Carrier: "c1", Receipt: r}); err != nil {
			t.Fatal(err)
		}
	}
	sent, _ = f.store.MessageGet(ctx, sent.ID)
	if sent.Status != StatusFailed || sent.SegmentsSucceeded != 1 || sent.SegmentsFailed != 1 {
		t.Fatalf("after receipts: %+v", sent)
	}
	var d events.SMSDeliveryReportData
	reps := f.events.ofType(events.TypeSMSDeliveryReportReceived)
	_ = json.Unmarshal(reps[len(reps)-1].Data, &d)
	if d.MessageID != sent.ID || d.DeliveryStatus != "Failed" || d.DeliveryAttempts[0].SegmentsSucceeded != 1 || d.DeliveryAttempts[0].SegmentsFailed != 1 {
		t.Fatalf("report %+v", d)
	}
}

func TestOrphanReceipt(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, _ := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", DeliveryReport: true, Recipients: []Recipient{{To: them}}})
	// The receipt for part "0A1" (decimal 161 here) arrives before the worker recorded it.
	_ = f.svc.HandleReceipt(ctx, Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: "161", State: receipt.StateDelivered}})
	_ = f.svc.HandleReceipt(ctx, Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: "0B1", State: receipt.StateDelivered}})
	f.sendDue(t)
	m, _ := f.store.MessageGet(ctx, res[0].MessageID)
	if m.Status != StatusDelivered || m.SegmentsSucceeded != 2 {
		t.Fatalf("held receipts not applied: %+v", m)
	}
}

// A message sent without a delivery report asked for (registered_delivery 0) keeps no parts:
// a receipt the SMSC sends anyway matches nothing, and the message stays sent.
func TestNoReportNoParts(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, _ := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: them}}})
	f.sendDue(t)
	m, _ := f.store.MessageGet(ctx, res[0].MessageID)
	if m.Status != StatusSent || m.Segments != 2 {
		t.Fatalf("sent message %+v", m)
	}
	if f.carrier.got[0].DeliveryReport {
		t.Fatal("submitted asking for a receipt")
	}
	_ = f.svc.HandleReceipt(ctx, Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: "0A1", State: receipt.StateDelivered}})
	if m, _ = f.store.MessageGet(ctx, m.ID); m.Status != StatusSent || m.SegmentsSucceeded != 0 {
		t.Fatalf("unasked receipt changed the message: %+v", m)
	}
	if n := len(f.events.ofType(events.TypeSMSDeliveryReportReceived)); n != 0 {
		t.Fatalf("%d delivery reports for a message that asked none", n)
	}
}

// A receipt nothing matches is tried again after 1, 2, 4 … seconds, at most a minute apart,
// and dropped after ten minutes.
func TestHeldReceiptBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	_ = f.svc.HandleReceipt(ctx, Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: "F00", State: receipt.StateDelivered}})
	var tried []time.Duration
	start := f.clock()
	for f.clock().Sub(start) < 11*time.Minute {
		if f.svc.retryDue(ctx) > 0 {
			tried = append(tried, f.clock().Sub(start))
		}
		f.advance(time.Second)
	}
	want := []time.Duration{0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363, 423, 483, 543, 603}
	if len(tried) != len(want) {
		t.Fatalf("tried at %v, want at %v seconds", tried, want)
	}
	for i, w := range want {
		if tried[i] != w*time.Second {
			t.Fatalf("tried at %v, want at %v seconds", tried, want)
		}
	}
	f.svc.omu.Lock()
	n := len(f.svc.orphans)
	f.svc.omu.Unlock()
	if n != 0 {
		t.Fatalf("%d receipts still held after ten minutes", n)
	}
}

func TestInbound(t *testing.T) {
	t.Parallel()
	f := newFixture(memNumbers{us: {Purchased: true, CanSend: true, CanReceive: true}})
	ctx := context.Background()
	in := func(text string) {
		t.Helper()
		if err := f.svc.HandleInbound(ctx, Inbound{Carrier: "c1", From: them, To: us, Text: text, Segments: 1}); err != nil {
			t.Fatal(err)
		}
	}
	optedOut := func() bool {
		m, _ := f.store.OptOutCheck(ctx, us, []string{them})
		return m[them]
	}
	in("hello")
	if len(f.queued(true)) != 0 || len(f.events.ofType(events.TypeSMSReceived)) != 1 {
		t.Fatal("ordinary message: want an event and no reply")
	}
	in("STOP")
	if !optedOut() || len(f.queued(true)) != 1 {
		t.Fatal("STOP: want opted out and one reply")
	}
	reply := f.queued(true)[0]
	if reply.From != us || reply.To != them || !strings.Contains(reply.Text, "unsubscribed") {
		t.Fatalf("reply %+v", reply)
	}
	in("help")
	in("Start")
	if optedOut() || len(f.queued(true)) != 3 {
		t.Fatal("HELP and START: want opted in and two more replies")
	}
	var d events.SMSReceivedData
	evs := f.events.ofType(events.TypeSMSReceived)
	_ = json.Unmarshal(evs[1].Data, &d)
	if len(evs) != 4 || d.Message != "STOP" || d.From != them || d.To != us || d.SegmentCount != 1 {
		t.Fatalf("events %d, %+v", len(evs), d)
	}
	// Messages to numbers telgw does not serve are dropped.
	_ = f.svc.HandleInbound(ctx, Inbound{Carrier: "c1", From: them, To: "+14255550000", Text: "x"})
	if len(f.events.ofType(events.TypeSMSReceived)) != 4 {
		t.Fatal("message to an unknown number was published")
	}
}

func TestCarrierPerNumber(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	c1, c2 := &scriptCarrier{name: "c1"}, &scriptCarrier{name: "c2"}
	nums := memNumbers{us: {Purchased: true, CanSend: true, Carrier: "c2"}, "+14252000111": {Purchased: true, CanSend: true, Carrier: "gone"}}
	svc := New(Config{Store: st, Events: &memEvents{}, Numbers: nums, Carriers: []Carrier{c1, c2}})
	ctx := context.Background()
	r1, _ := svc.Send(ctx, SendRequest{From: us, Message: "x", Recipients: []Recipient{{To: them}}})
	m1, _ := st.MessageGet(ctx, r1[0].MessageID)
	if m1.Carrier != "c2" {
		t.Fatalf("carrier %q, want the number's (c2)", m1.Carrier)
	}
	// A number whose carrier is not configured fails every recipient in Send's results, naming
	// the carrier and sms.carriers, and queues nothing; it used to fall back to the first
	// carrier (or, with none, fail later in the worker).
	jobs := len(st.jobs.sends())
	r2, err := svc.Send(ctx, SendRequest{From: "+14252000111", Message: "x", Recipients: []Recipient{{To: them}, {To: "+14252000112"}}})
	if err != nil || len(r2) != 2 {
		t.Fatalf("send from a number of an unconfigured carrier: %v %+v", err, r2)
	}
	for _, r := range r2 {
		pe, ok := problem.As(r.Err)
		if r.Successful() || r.MessageID != "" || !ok || pe.Kind != problem.KindUnavailable ||
			!strings.Contains(pe.Message, `"gone"`) || !strings.Contains(pe.Message, "sms.carriers") {
			t.Fatalf("result %+v (%v), want a failure naming carrier gone and sms.carriers", r, r.Err)
		}
	}
	if len(st.jobs.sends()) != jobs {
		t.Fatal("a send job was queued for a number without a carrier")
	}
	// No carrier at all: the same, per recipient.
	none := New(Config{Store: newMemStore(), Events: &memEvents{}, Numbers: memNumbers{us: {Purchased: true, CanSend: true}}})
	r3, err := none.Send(ctx, SendRequest{From: us, Message: "x", Recipients: []Recipient{{To: them}}})
	if err != nil || len(r3) != 1 || r3[0].Successful() || !strings.Contains(r3[0].Err.Error(), "no SMS carrier is configured in sms.carriers") {
		t.Fatalf("no carriers: %v %+v", err, r3)
	}
}

// TestOptOutAfterAccept: a STOP that arrives while an accepted message waits for the carrier
// (the link is down) stops it: the worker checks opt-outs again before it submits, the message
// fails as one to an opted-out recipient does at accept, with the same delivery report, and
// the carrier never sees it; the other recipient's message goes out once the link is up.
func TestOptOutAfterAccept(t *testing.T) {
	t.Parallel()
	f := newFixture(memNumbers{us: {Purchased: true, CanSend: true, CanReceive: true}})
	ctx := context.Background()
	const other = "+14255550188"
	down := &SubmitError{Temporary: true, Reason: "no bind"}
	f.carrier.errs[them], f.carrier.errs[other] = down, down
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "offer", DeliveryReport: true, Recipients: []Recipient{{To: them}, {To: other}}})
	if err != nil || !res[0].Successful() || !res[1].Successful() {
		t.Fatalf("send: %v %+v", err, res)
	}
	f.sendDue(t)
	if q := f.queued(false); len(q) != 2 || q[0].Attempts != 1 || q[1].Attempts != 1 {
		t.Fatalf("link down: want both messages queued for a retry, got %+v", q)
	}
	// STOP from the recipient over the inbound path, then the link comes up.
	if err := f.svc.HandleInbound(ctx, Inbound{Carrier: "c1", From: them, To: us, Text: "STOP", Segments: 1}); err != nil {
		t.Fatal(err)
	}
	f.carrier.mu.Lock()
	f.carrier.errs = map[string]error{}
	before := len(f.carrier.got)
	f.carrier.mu.Unlock()
	f.advance(2 * time.Second)
	f.sendDue(t)
	f.carrier.mu.Lock()
	got := f.carrier.got[before:]
	f.carrier.mu.Unlock()
	// The offer goes only to the other recipient; the STOP confirmation itself goes to the
	// recipient who just opted out, after the offer to them was settled (order per recipient).
	if len(got) != 2 || got[0].To != other || got[0].Text != "offer" || got[1].To != them || !strings.Contains(got[1].Text, "unsubscribed") {
		t.Fatalf("after the link came up the carrier got %+v, want the offer to %s and the STOP confirmation to %s", got, other, them)
	}
	m, _ := f.store.MessageGet(ctx, res[0].MessageID)
	if m.Status != StatusFailed || m.StatusDetails != optedOutDetails {
		t.Fatalf("opted-out message %+v", m)
	}
	var d events.SMSDeliveryReportData
	for _, ev := range f.events.ofType(events.TypeSMSDeliveryReportReceived) {
		var x events.SMSDeliveryReportData
		if json.Unmarshal(ev.Data, &x) == nil && x.MessageID == m.ID {
			d = x
		}
	}
	if d.DeliveryStatus != "Failed" || d.DeliveryStatusDetails != optedOutDetails {
		t.Fatalf("delivery report %+v", d)
	}
	if o, _ := f.store.MessageGet(ctx, res[1].MessageID); o.Status != StatusSent {
		t.Fatalf("other recipient's message %+v", o)
	}
	if q := f.queued(false); len(q) != 0 {
		t.Fatalf("still queued: %+v", q)
	}
}

// TestRunHandsCarriersTheService: Run runs every carrier with the service itself as the
// handler of what the carrier receives, and returns when ctx ends.
func TestRunHandsCarriersTheService(t *testing.T) {
	t.Parallel()
	c1, c2 := &scriptCarrier{name: "c1"}, &scriptCarrier{name: "c2"}
	svc := New(Config{Store: newMemStore(), Events: &memEvents{}, Carriers: []Carrier{c1, c2}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for c1.handler() == nil || c2.handler() == nil {
		if time.Now().After(deadline) {
			t.Fatal("carriers not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range []*scriptCarrier{c1, c2} {
		if h, ok := c.handler().(*Service); !ok || h != svc {
			t.Errorf("carrier %s got handler %T, want the service", c.name, c.handler())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// windowCarrier is a Windowed carrier.
type windowCarrier struct {
	*scriptCarrier
	window int
}

func (c windowCarrier) Window() int { return c.window }

func TestInFlightDefault(t *testing.T) {
	t.Parallel()
	plain := &scriptCarrier{name: "http"}
	for _, tt := range []struct {
		name      string
		carriers  []Carrier
		set, want int
	}{
		{"no carriers", nil, 0, 10},
		{"no window", []Carrier{plain}, 0, 10},
		{"sum of windows", []Carrier{windowCarrier{&scriptCarrier{name: "a"}, 10}, plain, windowCarrier{&scriptCarrier{name: "b"}, 30}}, 0, 40},
		{"configured wins", []Carrier{windowCarrier{&scriptCarrier{name: "a"}, 10}}, 3, 3},
	} {
		svc := New(Config{Store: newMemStore(), Events: &memEvents{}, Carriers: tt.carriers, InFlight: tt.set})
		if got := cap(svc.inflight); got != tt.want {
			t.Errorf("%s: in flight %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSendAnyCountry: the inventory sells US numbers, but a message goes to any valid E.164
// destination (the carrier decides what it reaches); numbers of no country are refused.
func TestSendAnyCountry(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	tos := []string{"+442071838750", "+4915112345678", "+81312345678", "+5511912345678", "+2801234567"}
	res, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{{To: tos[0]}, {To: tos[1]}, {To: tos[2]}, {To: tos[3]}, {To: tos[4]}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:4] {
		if !r.Successful() {
			t.Errorf("%s: %+v, want accepted", tos[i], r)
		}
	}
	if res[4].Successful() || problem.KindOf(res[4].Err) != problem.KindInvalid {
		t.Errorf("+280… (no such country code): %+v, want invalid", res[4])
	}
}
