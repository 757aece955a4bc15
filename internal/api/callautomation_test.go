package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/calls"
)

type capturePublisher struct{ ch chan calls.IncomingCall }

func (p capturePublisher) PublishIncomingCall(_ context.Context, ic calls.IncomingCall) error {
	p.ch <- ic
	return nil
}

type captureCallbacks struct {
	mu    sync.Mutex
	types []string
}

func (c *captureCallbacks) Send(_ context.Context, _ string, evs ...calls.CallbackEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		c.types = append(c.types, e.Type)
	}
	return nil
}

// fakeLine is the transport side of one bot-routed call (internal/sip in production; its own
// tests run this with SIPp): it carries out each decision at once and holds an answered call
// until the app hangs up.
type fakeLine struct {
	in       *calls.Incoming
	token    string
	answered chan *calls.Connection
	rejected chan int
	done     chan struct{}
}

func ring(t *testing.T, a *calls.Automation, pub capturePublisher, ringFor time.Duration) *fakeLine {
	t.Helper()
	c := calls.NewCall(time.Now(), calls.Leg{ID: uuid.NewString(), Kind: calls.LegCarrier, Participant: calls.Phone("+12125550199")})
	c.SetFrom("+12125550199")
	c.SetTo("+14155550100")
	in, err := a.Offer(context.Background(), calls.OfferParams{Call: c, Route: calls.BotRoute{URL: "http://app.example/cb"}, Expires: time.Now().Add(ringFor)})
	if err != nil {
		t.Fatal(err)
	}
	ic := <-pub.ch
	l := &fakeLine{in: in, token: ic.IncomingCallContext, answered: make(chan *calls.Connection, 1), rejected: make(chan int, 1), done: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(l.done)
		defer in.Close()
		t := time.NewTimer(ringFor)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				return
			case <-stop:
				return
			case d := <-in.Decisions():
				switch d.Kind {
				case calls.DecideReject:
					d.Done(nil)
					l.rejected <- d.SIPCode
					return
				case calls.DecideRedirect:
					if d.Target.ID != "+12025550142" {
						d.Done(calls.ErrNoRoute)
						continue
					}
					d.Done(nil)
					return
				case calls.DecideAnswer:
					d.Done(nil)
					d.Conn.Connected()
					l.answered <- d.Conn
					select {
					case <-d.Conn.HangupRequested():
					case <-stop:
					}
					d.Conn.Disconnected(calls.ResultInformation{Code: 200, Message: "The app hung up."})
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-l.done })
	return l
}

func automationServer(t *testing.T, tweak ...func(*calls.AutomationConfig)) (*calls.Automation, capturePublisher, *captureCallbacks, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	pub := capturePublisher{ch: make(chan calls.IncomingCall, 4)}
	cbs := &captureCallbacks{}
	reg := prometheus.NewRegistry()
	cfg := calls.AutomationConfig{Publisher: pub, Callbacks: cbs, Numbers: ownNumbers{"+14155550100"},
		Keys: func() [][]byte { return [][]byte{calls.CallContextKey(testKey)} }}
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := calls.NewAutomation(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDialer{}
	a.SetDialer(d)
	t.Cleanup(d.wg.Wait)
	s := New(Config{Registry: reg, Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }, Skew: 15 * time.Minute}})
	s.MountCallAutomation(a)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return a, pub, cbs, srv, reg
}

const caVersion = "?api-version=2025-05-15"

func TestCallAutomationAnswerGetHangUp(t *testing.T) {
	t.Parallel()
	a, pub, cbs, srv, reg := automationServer(t)
	l := ring(t, a, pub, 10*time.Second)
	var conn callConnectionJSON
	body := `{"incomingCallContext":"` + l.token + `","callbackUri":"https://app.example/cb","operationContext":"op","customCallingContext":{"sipHeaders":{}}}`
	// The SDK's version is served as well.
	if code := call(t, srv, "POST", "/calling/callConnections:answer?api-version=2026-03-12", body, true, &conn); code != 200 {
		t.Fatalf("answer: %d", code)
	}
	if conn.CallConnectionID == "" || (conn.CallConnectionState != "connecting" && conn.CallConnectionState != "connected") || conn.Source == nil || conn.Source.PhoneNumber.Value != "+12125550199" ||
		len(conn.Targets) != 1 || conn.Targets[0].RawID != "4:+14155550100" || conn.CallbackURI != "https://app.example/cb" {
		t.Fatalf("connection %+v", conn)
	}
	<-l.answered
	var got callConnectionJSON
	if code := call(t, srv, "GET", "/calling/callConnections/"+conn.CallConnectionID+caVersion, "", true, &got); code != 200 || got.CallConnectionState != "connected" {
		t.Fatalf("get: %d %+v", code, got)
	}
	// Answering again: the context is spent.
	var e ErrorBody
	if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, body, true, &e); code != 404 || e.Error.Code == "" {
		t.Fatalf("second answer: %d %+v", code, e)
	}
	if code := call(t, srv, "DELETE", "/calling/callConnections/"+conn.CallConnectionID+caVersion, "", true, nil); code != 204 {
		t.Fatalf("hang up: %d", code)
	}
	for _, op := range []struct{ method, path string }{
		{"GET", "/calling/callConnections/" + conn.CallConnectionID},
		{"DELETE", "/calling/callConnections/" + conn.CallConnectionID},
		{"POST", "/calling/callConnections/" + conn.CallConnectionID + ":terminate"},
	} {
		if code := call(t, srv, op.method, op.path+caVersion, "", true, &e); code != 404 {
			t.Fatalf("%s %s after the call ended: %d", op.method, op.path, code)
		}
	}
	cbs.mu.Lock()
	types := strings.Join(cbs.types, ",")
	cbs.mu.Unlock()
	if types != "Microsoft.Communication.CallConnected,Microsoft.Communication.CallDisconnected" {
		t.Fatalf("callbacks %s", types)
	}
	if n := counterValue(t, reg, "telgw_callautomation_operations_total", map[string]string{"operation": "answer", "result": "ok"}); n != 1 {
		t.Fatalf("answer ok metric %v", n)
	}
	if n := counterValue(t, reg, "telgw_callautomation_operations_total", map[string]string{"operation": "get", "result": "not_found"}); n != 1 {
		t.Fatalf("get not_found metric %v", n)
	}
}

func TestCallAutomationTerminate(t *testing.T) {
	t.Parallel()
	a, pub, _, srv, _ := automationServer(t)
	l := ring(t, a, pub, 10*time.Second)
	var conn callConnectionJSON
	if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, `{"incomingCallContext":"`+l.token+`","callbackUri":"http://127.0.0.1:1/cb"}`, true, &conn); code != 200 {
		t.Fatalf("answer: %d", code)
	}
	if code := call(t, srv, "POST", "/calling/callConnections/"+conn.CallConnectionID+":terminate"+caVersion, "", true, nil); code != 204 {
		t.Fatalf("terminate: %d", code)
	}
	if code := call(t, srv, "POST", "/calling/callConnections/"+conn.CallConnectionID+":transferToParticipant"+caVersion, `{"targetParticipant":{"rawId":"4:+12025550142"}}`, true, nil); code != 404 {
		t.Fatalf("transfer: %d", code)
	}
}

func TestCallAutomationRejectAndRedirect(t *testing.T) {
	t.Parallel()
	a, pub, _, srv, _ := automationServer(t)
	l := ring(t, a, pub, 10*time.Second)
	var e ErrorBody
	if code := call(t, srv, "POST", "/calling/callConnections:reject"+caVersion, `{"incomingCallContext":"`+l.token+`","callRejectReason":"maybe"}`, true, &e); code != 400 || e.Error.Target != "callRejectReason" {
		t.Fatalf("bad reason: %d %+v", code, e)
	}
	if code := call(t, srv, "POST", "/calling/callConnections:reject"+caVersion, `{"incomingCallContext":"`+l.token+`","callRejectReason":"busy"}`, true, nil); code != 204 {
		t.Fatalf("reject: %d", code)
	}
	if code := <-l.rejected; code != 486 {
		t.Fatalf("reject code %d", code)
	}

	l = ring(t, a, pub, 10*time.Second)
	for _, tc := range []struct {
		target string
		code   int
	}{
		{`{"phoneNumber":{"value":"+442071838750"}}`, 400}, // no route: the call keeps ringing
		{`{"communicationUser":{"id":"8:acs:r_u"}}`, 400},  // the fake SIP side reaches no user: refused, still ringing
		{`{"communicationUser":{"id":""}}`, 400},
		{`{"phoneNumber":{"value":"12"}}`, 400},
		{`{"kind":"phoneNumber","rawId":"4:+12025550142"}`, 204},
	} {
		if code := call(t, srv, "POST", "/calling/callConnections:redirect"+caVersion, `{"incomingCallContext":"`+l.token+`","target":`+tc.target+`}`, true, nil); code != tc.code {
			t.Fatalf("redirect %s: %d, want %d", tc.target, code, tc.code)
		}
	}
}

func TestCallAutomationBadInput(t *testing.T) {
	t.Parallel()
	a, pub, _, srv, _ := automationServer(t)
	expired := ring(t, a, pub, 50*time.Millisecond)
	<-expired.done
	time.Sleep(time.Second) // the context's expiry has a resolution of a second
	forged := strings.Replace(expired.token, ".", ".A", 1)
	for _, tc := range []struct {
		name, path, body string
		sign             bool
		code             int
	}{
		{"unsigned", "/calling/callConnections:answer" + caVersion, `{}`, false, 401},
		{"no api-version", "/calling/callConnections:answer", `{}`, true, 400},
		{"old api-version", "/calling/callConnections:answer?api-version=2023-10-15", `{}`, true, 400},
		{"no context", "/calling/callConnections:answer" + caVersion, `{"callbackUri":"https://a.example/"}`, true, 400},
		{"no callback", "/calling/callConnections:answer" + caVersion, `{"incomingCallContext":"x.y"}`, true, 400},
		{"relative callback", "/calling/callConnections:answer" + caVersion, `{"incomingCallContext":"x.y","callbackUri":"/cb"}`, true, 400},
		{"garbage context", "/calling/callConnections:answer" + caVersion, `{"incomingCallContext":"x.y","callbackUri":"https://a.example/"}`, true, 400},
		{"forged context", "/calling/callConnections:answer" + caVersion, `{"incomingCallContext":"` + forged + `","callbackUri":"https://a.example/"}`, true, 400},
		{"expired context", "/calling/callConnections:answer" + caVersion, `{"incomingCallContext":"` + expired.token + `","callbackUri":"https://a.example/"}`, true, 404},
		{"expired reject", "/calling/callConnections:reject" + caVersion, `{"incomingCallContext":"` + expired.token + `"}`, true, 404},
		{"unknown connection", "/calling/callConnections/nope" + caVersion, ``, true, 404},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		var e ErrorBody
		if code := call(t, srv, method, tc.path, tc.body, tc.sign, &e); code != tc.code || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d", tc.name, code, e, tc.code)
		}
	}
}

func TestCallAutomationRepeatability(t *testing.T) {
	t.Parallel()
	a, pub, _, srv, _ := automationServer(t)
	l := ring(t, a, pub, 10*time.Second)
	body := `{"incomingCallContext":"` + l.token + `","callbackUri":"https://app.example/cb"}`
	rid, first := uuid.NewString(), time.Now().UTC().Format(http.TimeFormat)
	send := func(rid, first string) (int, string, callConnectionJSON) {
		req, _ := http.NewRequest("POST", srv.URL+"/calling/callConnections:answer"+caVersion, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Repeatability-Request-ID", rid)
		req.Header.Set("Repeatability-First-Sent", first)
		Sign(testKey, "POST", req.URL.RequestURI(), req.URL.Host, []byte(body), time.Now(), req.Header)
		var out callConnectionJSON
		res := doJSON(t, srv, req, &out)
		return res.StatusCode, res.Header.Get("Repeatability-Result"), out
	}
	code1, rr1, c1 := send(rid, first)
	code2, rr2, c2 := send(rid, first)
	if code1 != 200 || code2 != 200 || rr1 != "accepted" || rr2 != "accepted" || c1.CallConnectionID == "" || c1.CallConnectionID != c2.CallConnectionID {
		t.Fatalf("first %d %s %+v, repeat %d %s %+v", code1, rr1, c1, code2, rr2, c2)
	}
	if code, _, _ := send("not-a-uuid", first); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
	if code, _, _ := send(uuid.NewString(), "yesterday"); code != 400 {
		t.Fatalf("bad first-sent: %d", code)
	}
	<-l.answered
	if err := a.HangUp(context.Background(), c1.CallConnectionID); err != nil {
		t.Fatal(err)
	}
}

// doJSON sends req and decodes a JSON answer into out.
func doJSON(t *testing.T, srv *httptest.Server, req *http.Request, out any) *http.Response {
	t.Helper()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if len(bytes.TrimSpace(b)) > 0 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %d %q: %v", req.URL, res.StatusCode, b, err)
		}
	}
	return res
}

// counterValue reads a counter from reg (summed over series matching labels).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == k && lp.GetValue() == v
				}
				if !found {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// ownNumbers are the resource's numbers.
type ownNumbers []string

func (o ownNumbers) CallRoute(_ context.Context, e164 string) (calls.Route, error) {
	for _, n := range o {
		if n == e164 {
			return calls.BotRoute{URL: "http://app.example/cb"}, nil
		}
	}
	return nil, calls.ErrUnknownNumber
}

// fakeDialer is the SIP edge placing apps' calls (its own tests use SIPp): every call is
// answered at once and lasts until the app hangs up.
type fakeDialer struct{ wg sync.WaitGroup }

func (d *fakeDialer) Dial(conn *calls.Connection) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		conn.Connected()
		select {
		case <-conn.HangupRequested():
		case <-time.After(5 * time.Second):
		}
		conn.Disconnected(calls.ResultInformation{Code: 200})
	}()
}

func TestCallAutomationCreateCall(t *testing.T) {
	t.Parallel()
	_, _, _, srv, _ := automationServer(t)
	const target = `{"kind":"phoneNumber","phoneNumber":{"value":"+12025550142"}}`
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"caller id not ours", `{"targets":[` + target + `],"sourceCallerIdNumber":{"value":"+12125550199"},"callbackUri":"https://app.example/cb"}`, 403},
		{"no caller id", `{"targets":[` + target + `],"callbackUri":"https://app.example/cb"}`, 400},
		{"no targets", `{"targets":[],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`, 400},
		{"a target twice", `{"targets":[` + target + `,` + target + `,{"communicationUser":{"id":"8:acs:r_u"}}],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`, 400},
		{"group call, phone without caller id", `{"targets":[` + target + `,{"communicationUser":{"id":"8:acs:r_u"}}],"callbackUri":"https://app.example/cb"}`, 400},
		{"group call, bad second target", `{"targets":[` + target + `,{"phoneNumber":{"value":"12"}}],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`, 400},
		{"user, caller id not ours", `{"targets":[{"communicationUser":{"id":"8:acs:r_u"}}],"sourceCallerIdNumber":{"value":"+12125550199"},"callbackUri":"https://app.example/cb"}`, 403},
		{"no callback", `{"targets":[` + target + `],"sourceCallerIdNumber":{"value":"+14155550100"}}`, 400},
	} {
		var e ErrorBody
		if code := call(t, srv, "POST", "/calling/callConnections"+caVersion, tc.body, true, &e); code != tc.code || e.Error.Code == "" {
			t.Errorf("%s: %d %+v, want %d", tc.name, code, e, tc.code)
		}
	}
	// More targets than calls.maxParticipants (16 by default): the 400 names the field and says why.
	var many []string
	for i := range 17 {
		many = append(many, fmt.Sprintf(`{"phoneNumber":{"value":"+120255501%02d"}}`, i))
	}
	var over ErrorBody
	overBody := `{"targets":[` + strings.Join(many, ",") + `],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`
	if code := call(t, srv, "POST", "/calling/callConnections"+caVersion, overBody, true, &over); code != 400 || over.Error.Target != "targets" || !strings.Contains(over.Error.Message, "maxParticipants") {
		t.Errorf("17 targets: %d %+v", code, over)
	}
	// A communication user (no caller id needed), a group of two and one of three are placed.
	for _, body := range []string{
		`{"targets":[` + strings.Join(many[:2], ",") + `,{"communicationUser":{"id":"8:acs:r_u"}}],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`,
		`{"targets":[{"communicationUser":{"id":"8:acs:r_u"}}],"callbackUri":"https://app.example/cb"}`,
		`{"targets":[` + target + `,{"communicationUser":{"id":"8:acs:r_u"}}],"sourceCallerIdNumber":{"value":"+14155550100"},"callbackUri":"https://app.example/cb"}`,
	} {
		var conn callConnectionJSON
		if code := call(t, srv, "POST", "/calling/callConnections"+caVersion, body, true, &conn); code != 201 || conn.CallConnectionID == "" {
			t.Fatalf("create %s: %d %+v", body, code, conn)
		}
		if last := conn.Targets[len(conn.Targets)-1]; last.CommunicationUser == nil || last.CommunicationUser.ID != "8:acs:r_u" {
			t.Fatalf("targets %+v", conn.Targets)
		}
		if code := call(t, srv, "DELETE", "/calling/callConnections/"+conn.CallConnectionID+caVersion, "", true, nil); code != 204 {
			t.Fatalf("hang up: %d", code)
		}
	}
	var conn callConnectionJSON
	body := `{"targets":[` + target + `],"sourceCallerIdNumber":{"value":"+14155550100"},"sourceDisplayName":"Bot","callbackUri":"https://app.example/cb","operationContext":"out"}`
	if code := call(t, srv, "POST", "/calling/callConnections?api-version=2026-03-12", body, true, &conn); code != 201 || conn.CallConnectionID == "" ||
		conn.SourceCallerIDNumber == nil || conn.SourceCallerIDNumber.Value != "+14155550100" || len(conn.Targets) != 1 || conn.Targets[0].PhoneNumber.Value != "+12025550142" {
		t.Fatalf("create: %d %+v", code, conn)
	}
	if code := call(t, srv, "DELETE", "/calling/callConnections/"+conn.CallConnectionID+caVersion, "", true, nil); code != 204 {
		t.Fatalf("hang up: %d", code)
	}
}
