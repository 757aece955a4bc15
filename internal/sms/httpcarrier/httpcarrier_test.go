package httpcarrier

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/receipt"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

type recorder struct {
	mu       sync.Mutex
	receipts []sms.Receipt
	inbound  []sms.Inbound
	fail     bool
}

func (r *recorder) HandleInbound(_ context.Context, m sms.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("down")
	}
	r.inbound = append(r.inbound, m)
	return nil
}

func (r *recorder) HandleReceipt(_ context.Context, m sms.Receipt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.receipts = append(r.receipts, m)
	return nil
}

func TestSubmitRendersRequest(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, body = r, string(b)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c, err := New(Config{Name: "acme", URL: srv.URL + "/send?to={toDigits}&text={text}&dlr={dlrUrl}&mask={dlrMask}", Method: "post",
		Body: `{"from":"{from}","text":"{text}"}`, ContentType: "application/json", Username: "u", Password: "p",
		Headers: map[string]string{"X-Key": "k"}, CallbackToken: "tok",
		PublicBase: func() string { return "http://telgw.test/" }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Submit(context.Background(), sms.Outbound{MessageID: "m1", From: "+14255550100", To: "+14255550199",
		Text: `say "hi" & €`, DeliveryReport: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.CarrierIDs[0] != "tg-m1" || res.Segments != 1 {
		t.Fatalf("result %+v", res)
	}
	q := got.URL.Query()
	if q.Get("to") != "14255550199" || q.Get("text") != `say "hi" & €` || q.Get("mask") != "3" ||
		q.Get("dlr") != "http://telgw.test/telgw/carriers/acme/dlr?token=tok&messageId=m1&status=%d" {
		t.Fatalf("query %v", q)
	}
	if body != `{"from":"+14255550100","text":"say \"hi\" & €"}` || got.Header.Get("Content-Type") != "application/json" ||
		got.Header.Get("X-Key") != "k" || got.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")) {
		t.Fatalf("body %s headers %v", body, got.Header)
	}
}

func TestSubmitClassifiesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		temporary bool
	}{{400, false}, {403, false}, {429, true}, {500, true}, {503, true}}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) }))
		c, _ := New(Config{Name: "x", URL: srv.URL + "/?t={text}", CallbackToken: "t"})
		_, err := c.Submit(context.Background(), sms.Outbound{MessageID: "m", From: "+1", To: "+2", Text: "x"})
		var se *sms.SubmitError
		if !errors.As(err, &se) || se.Temporary != tt.temporary || se.Code != uint32(tt.status) {
			t.Errorf("HTTP %d: %v", tt.status, err)
		}
		srv.Close()
	}
	c, _ := New(Config{Name: "x", URL: "http://127.0.0.1:1/?t={text}", CallbackToken: "t"})
	if _, err := c.Submit(context.Background(), sms.Outbound{Text: "x"}); !sms.IsTemporary(err) {
		t.Errorf("connection refused: %v", err)
	}
}

func TestCallbacks(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c, err := New(Config{Name: "acme", URL: "http://x/?{text}", CallbackToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, rec)
	tests := []struct {
		name, method, target, form string
		status                     int
	}{
		{"bad token", "GET", "/dlr?token=no&messageId=m1&status=1", "", 403},
		{"kannel delivered", "GET", "/dlr?token=tok&messageId=m1&status=1", "", 200},
		{"kannel smsc ack", "GET", "/dlr?token=tok&messageId=m2&status=8", "", 200},
		{"text state by form", "POST", "/dlr", "token=tok&messageId=m3&state=failed&err=34", 200},
		{"dlr without id", "GET", "/dlr?token=tok&status=1", "", 400},
		{"inbound", "GET", "/inbound?token=tok&from=14255550199&to=%2B14255550100&text=STOP", "", 200},
		{"inbound without to", "GET", "/inbound?token=tok&from=1", "", 400},
		{"unknown", "GET", "/other?token=tok", "", 404},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/telgw/carriers/acme"+tt.target, strings.NewReader(tt.form))
		if tt.form != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s: %d %s", tt.name, w.Code, w.Body)
		}
	}
	want := []struct {
		id    string
		state receipt.State
	}{{"tg-m1", receipt.StateDelivered}, {"tg-m2", receipt.StateAccepted}, {"tg-m3", receipt.StateUndeliverable}}
	if len(rec.receipts) != 3 {
		t.Fatalf("receipts %+v", rec.receipts)
	}
	for i, w := range want {
		if rec.receipts[i].ID != w.id || rec.receipts[i].State != w.state {
			t.Errorf("receipt %d = %+v, want %v", i, rec.receipts[i], w)
		}
	}
	if len(rec.inbound) != 1 || rec.inbound[0].From != "+14255550199" || rec.inbound[0].To != "+14255550100" || rec.inbound[0].Text != "STOP" {
		t.Fatalf("inbound %+v", rec.inbound)
	}
	rec.fail = true
	w := httptest.NewRecorder()
	c.ServeHTTP(w, httptest.NewRequest("GET", "/x/inbound?token=tok&from=1&to=2&text=x", nil))
	if w.Code != 500 {
		t.Fatalf("handler failure answered %d", w.Code)
	}
}

// run runs c with h until the test ends.
func run(t *testing.T, c *Carrier, h sms.CarrierHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestCallbackBeforeRun: a callback that arrives before Run hands over the handler waits for
// it; one whose request ends first is told to retry (503).
func TestCallbackBeforeRun(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Name: "acme", URL: "http://x/?{text}", CallbackToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	c.ServeHTTP(w, httptest.NewRequest("GET", "/x/inbound?token=tok&from=1&to=2&text=x", nil).WithContext(ctx))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("callback with no handler answered %d, want 503", w.Code)
	}
	rec := &recorder{}
	answered := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest("GET", "/x/inbound?token=tok&from=1&to=2&text=early", nil))
		answered <- w.Code
	}()
	time.Sleep(20 * time.Millisecond)
	run(t, c, rec)
	if code := <-answered; code != 200 {
		t.Fatalf("early callback answered %d", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.inbound) != 1 || rec.inbound[0].Text != "early" {
		t.Fatalf("inbound %+v", rec.inbound)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := New(Config{URL: "ftp://x", Method: "PUT"})
	for _, want := range []string{"name", "url", "method", "callbackToken"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestKannel submits through Kannel's smsbox sendsms (a real HTTP SMS gateway) to the npm
// SMSC over SMPP, gets the SMSC's receipt back as a Kannel DLR callback, and an inbound
// message as a Kannel sms-service get-url callback.
func TestKannel(t *testing.T) {
	rec := &recorder{}
	mux := http.NewServeMux()
	var c *Carrier
	mux.HandleFunc("/telgw/carriers/kannel/", func(w http.ResponseWriter, r *http.Request) { c.ServeHTTP(w, r) })
	cb := httptest.NewServer(mux)
	defer cb.Close()
	smsc := smsctest.Start(t, "../../../test/peers", map[string]any{"receipt": "text"})
	service := `
group = sms-service
keyword = default
get-url = "` + cb.URL + `/telgw/carriers/kannel/inbound?token=tok&from=%p&to=%P&text=%a"
max-messages = 0
catch-all = true
`
	sendsms, logs := smsctest.StartKannel(t, smsc.Addr(), service)
	defer func() {
		if t.Failed() {
			t.Logf("kannel logs:\n%s", logs())
		}
	}()
	var err error
	c, err = New(Config{Name: "kannel", CallbackToken: "tok", PublicBase: func() string { return cb.URL + "/" },
		URL: sendsms + "?username=bench&password=bench&from={fromDigits}&to={toDigits}&text={text}&dlr-mask=3&dlr-url={dlrUrl}"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, rec)
	smsc.Wait("bind", nil, 30*time.Second)
	res, err := c.Submit(context.Background(), sms.Outbound{MessageID: "m-kannel", From: "+14255550100", To: "+14255550199", Text: "via Kannel €", DeliveryReport: true})
	if err != nil {
		t.Fatal(err)
	}
	ev := smsc.Wait("submit", nil, 20*time.Second)
	if ev["to"] != "14255550199" || ev["message"] != "via Kannel €" {
		t.Fatalf("SMSC got %v", ev)
	}
	waitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, r := range rec.receipts {
			if r.ID == res.CarrierIDs[0] && r.State == receipt.StateDelivered {
				return true
			}
		}
		return false
	}, "a delivered DLR from Kannel")
	smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14255550100", "message": "HELP"})
	waitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.inbound) == 1 && rec.inbound[0].Text == "HELP" && rec.inbound[0].From == "+14255550199"
	}, "an inbound message from Kannel")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
