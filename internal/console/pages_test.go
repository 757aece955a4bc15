package console_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

// The pages over fakes of the services: what each shows. The real services behind them are
// driven end to end in test/browser.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type fakeMessages struct{ ms []sms.Message }

func (f fakeMessages) Messages(_ context.Context, fl sms.MessageFilter) ([]sms.Message, error) {
	var out []sms.Message
	for _, m := range f.ms {
		if (fl.Status == "" || m.Status == fl.Status) && (fl.To == "" || m.To == fl.To) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f fakeMessages) Message(_ context.Context, id string) (sms.Message, error) {
	for _, m := range f.ms {
		if m.ID == id {
			return m, nil
		}
	}
	return sms.Message{}, problem.ErrNotFound
}

type fakeSIP struct{ routes []calls.OutboundRoute }

func (f *fakeSIP) Trunks() []console.Trunk {
	return []console.Trunk{{Name: "carrier-a", Address: "10.0.0.1:5060", Up: true, Active: 2}, {Name: "carrier-b", Address: "10.0.0.2:5060"}}
}
func (f *fakeSIP) ActiveCalls() int { return 2 }
func (f *fakeSIP) Routing() calls.Routing {
	return calls.Routing{Trunks: []calls.ACSTrunk{{FQDN: "carrier-a", Port: 5060}}, Routes: f.routes}
}
func (f *fakeSIP) SetRoutes(_ context.Context, rs []calls.OutboundRoute) (calls.Routing, error) {
	for _, r := range rs {
		for _, t := range r.Trunks {
			if t != "carrier-a" && t != "carrier-b" {
				return calls.Routing{}, problem.Invalid("routes", "trunk %q is not configured", t)
			}
		}
	}
	f.routes = rs
	return f.Routing(), nil
}
func (f *fakeSIP) Calls(context.Context, calls.CDRListParams) ([]calls.CDR, error) {
	return []calls.CDR{{CallID: "c1", Direction: "inbound", From: "+12065550100", To: "+14255550100", Trunk: "carrier-a",
		Start: t0, Answer: t0.Add(2 * time.Second), End: t0.Add(62 * time.Second), Disposition: "answered", SIPCode: 200, Q850: 16, EndedBy: "callee"}}, nil
}

type fakeHooks struct{ retried *[]int64 }

func (fakeHooks) List(context.Context) ([]events.Subscription, error) {
	return []events.Subscription{{URL: "https://app.example/hook", Source: "config", Disabled: true, DisabledReason: "410 Gone"}}, nil
}

func (fakeHooks) Deliveries(context.Context, int) ([]console.Delivery, error) {
	return []console.Delivery{
		{ID: 7, State: "retryable", Attempt: 2, MaxAttempts: 25, URL: "https://app.example/hook", EventType: "Microsoft.Communication.SMSReceived", LastError: "HTTP 503", CreatedAt: t0, ScheduledAt: t0.Add(time.Minute)},
		{ID: 6, State: "completed", Attempt: 1, MaxAttempts: 25, URL: "https://app.example/hook", EventType: "Microsoft.Communication.SMSReceived", CreatedAt: t0},
	}, nil
}

func (f fakeHooks) RetryNow(_ context.Context, id int64) error {
	if id != 7 {
		return problem.ErrNotFound
	}
	*f.retried = append(*f.retried, id)
	return nil
}

type fakeRegs struct{}

func (fakeRegs) Registrations() []console.Registration {
	return []console.Registration{{Identity: "8:acs:r_alice", Contact: "sip:a@x.invalid;transport=ws", Transport: "WS", Expires: t0.Add(time.Hour)}}
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPages(t *testing.T) {
	t.Parallel()
	sipFake := &fakeSIP{routes: []calls.OutboundRoute{{Name: "us", NumberPattern: `\+1.*`, Trunks: []string{"carrier-a"}}}}
	msgs := fakeMessages{ms: []sms.Message{
		{ID: "m-ok", From: "+14255550100", To: "+12065550101", Text: "hi", Carrier: "smsc", Status: sms.StatusDelivered,
			CreatedAt: t0, SentAt: t0.Add(time.Second), DoneAt: t0.Add(3 * time.Second), Segments: 1, Attempts: 1},
		{ID: "m-bad", From: "+14255550100", To: "+12065550199", Text: "<b>x</b>", Carrier: "smsc", Status: sms.StatusFailed,
			StatusDetails: "carrier refused: ESME_RINVDSTADR (0x0000000b)", CreatedAt: t0, DoneAt: t0.Add(time.Second), Attempts: 1},
	}}
	var retried []int64
	e := newEnv(t, func(c *console.Config) {
		c.Messages, c.SIP, c.Webhooks, c.Registrations = msgs, sipFake, fakeHooks{&retried}, fakeRegs{}
		c.Ready = func(context.Context) error { return errors.New("store down") }
		c.SMPPBound = func() map[string]int { return map[string]int{"smsc": 2} }
	})
	c, token := e.signIn(b64(primary))
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/console/", []string{"not ready: store down", "carrier-a", "down", `id="active-calls">2<`, "1 on this node", "<td>smsc</td><td>2</td>"}},
		{"/console/messages?status=failed", []string{"m-bad", "ESME_RINVDSTADR"}},
		{"/console/messages/m-bad", []string{"<strong>queued</strong>", "<strong>failed</strong>", "ESME_RINVDSTADR (0x0000000b)", "&lt;b&gt;x&lt;/b&gt;"}},
		{"/console/messages/m-ok", []string{"<strong>sent</strong>", "<strong>delivered</strong>"}},
		{"/console/calls", []string{"&#43;12065550100", "1m0s", "answered", "<td>16</td>", "callee"}},
		{"/console/trunks", []string{"carrier-b", `us | \&#43;1.* | carrier-a`}},
		{"/console/webhooks", []string{"https://app.example/hook", "410 Gone", "HTTP 503", "2/25", `name="id" value="7"`}},
		{"/console/users", []string{"8:acs:r_alice", "transport=ws"}},
	} {
		res := e.do("GET", tc.path, nil, c, nil)
		b := body(t, res)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, res.StatusCode)
		}
		for _, w := range tc.want {
			if !strings.Contains(b, w) {
				t.Errorf("GET %s: no %q in the page", tc.path, w)
			}
		}
	}
	if res := e.do("GET", "/console/messages/nope", nil, c, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown message: %d, want 404", res.StatusCode)
	}

	// Routes are edited as text, one a line, and go through SetRoutes.
	res := e.do("POST", "/console/trunks/routes", url.Values{"csrf": {token}, "routes": {"nanp | \\+1[2-9].* | carrier-b, carrier-a\n\n# note\nall | .* | carrier-a\n"}}, c, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save routes: %d %s", res.StatusCode, body(t, res))
	}
	if len(sipFake.routes) != 2 || sipFake.routes[0].Name != "nanp" || strings.Join(sipFake.routes[0].Trunks, ",") != "carrier-b,carrier-a" {
		t.Fatalf("routes %+v", sipFake.routes)
	}
	for text, want := range map[string]string{"broken line": "line 1", "x | .* | nowhere": "nowhere"} {
		res = e.do("POST", "/console/trunks/routes", url.Values{"csrf": {token}, "routes": {text}}, c, nil)
		if b := body(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(b, want) || !strings.Contains(b, text) {
			t.Errorf("routes %q: %d, want 400 naming %q and keeping the text", text, res.StatusCode, want)
		}
	}
	// Retry now: only with the CSRF token, only a known delivery.
	if res := e.do("POST", "/console/webhooks/retry", url.Values{"id": {"7"}}, c, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("retry without CSRF token: %d, want 403", res.StatusCode)
	}
	if res := e.do("POST", "/console/webhooks/retry", url.Values{"csrf": {token}, "id": {"8"}}, c, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("retry of an unknown delivery: %d, want 404", res.StatusCode)
	}
	if res := e.do("POST", "/console/webhooks/retry", url.Values{"csrf": {token}, "id": {"7"}}, c, nil); res.StatusCode != http.StatusSeeOther || len(retried) != 1 {
		t.Errorf("retry: %d, retried %v", res.StatusCode, retried)
	}

	// A bad number route is reported on the page, not saved.
	res = e.do("POST", "/console/numbers/route", url.Values{"csrf": {token}, "number": {"+14255550100"}, "route": {"ftp://x"}}, c, nil)
	if b := body(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(b, "want sip:URI") {
		t.Errorf("bad route: %d", res.StatusCode)
	}
}
