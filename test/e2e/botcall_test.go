package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/telgw/telgw/internal/events"
)

// botApp is an app's server on loopback: its Event Grid endpoint (/events, answering the
// validation handshake) collects IncomingCall events, its callback endpoint (/callbacks)
// collects mid-call CloudEvents with their Authorization header.
type botApp struct {
	URL       string
	mu        sync.Mutex
	incoming  []map[string]any
	callbacks []map[string]any
	auth      []string
}

func newBotApp(t *testing.T) *botApp {
	t.Helper()
	a := &botApp{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var evs []map[string]any
		_ = json.Unmarshal(body, &evs)
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r.URL.Path {
		case "/events":
			if events.AnswerValidation(w, body) {
				return
			}
			for _, ev := range evs {
				if ev["eventType"] == events.TypeIncomingCall {
					a.incoming = append(a.incoming, ev)
				}
			}
		case "/callbacks":
			a.callbacks = append(a.callbacks, evs...)
			a.auth = append(a.auth, r.Header.Get("Authorization"))
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	a.URL = "http://" + ln.Addr().String()
	return a
}

// waitFor polls f under the app's lock until it reports true.
func (a *botApp) waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a.mu.Lock()
		ok := f()
		a.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBotAnswersPSTNCall: the whole Call Automation path on a real `telgw serve`. A carrier
// (SIPp) calls a number routed to a bot; the app's Event Grid webhook (created through the
// validation handshake) gets Microsoft.Communication.IncomingCall while the caller hears
// ringing; the app answers over the signed REST API; its callbackUri gets CallConnected with
// an RS256 JWT that verifies against telgw's published JWKS; the caller hangs up and the app
// gets CallDisconnected; the call connection is gone (404) and the CDR shows the bot call.
func TestBotAnswersPSTNCall(t *testing.T) {
	sippBin(t)
	const botNumber = "+14252000142"
	carrierPort := freePortOn(t, carrierIP)
	app := newBotApp(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n",
		carrierIP, carrierPort, carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + app.URL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": app.URL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}

	// The carrier calls the bot's number and hangs up 3 s after the answer.
	wait := sippRun(t, scenarioCopy(t), tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-d", "3000", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))

	var ctxToken, serverCallID string
	app.waitFor(t, "IncomingCall", func() bool { return len(app.incoming) > 0 })
	app.mu.Lock()
	data, _ := app.incoming[0]["data"].(map[string]any)
	app.mu.Unlock()
	ctxToken, _ = data["incomingCallContext"].(string)
	serverCallID, _ = data["serverCallId"].(string)
	to, _ := data["to"].(map[string]any)
	if ctxToken == "" || serverCallID == "" || to["rawId"] != "4:"+botNumber {
		t.Fatalf("IncomingCall data %v", data)
	}

	r := c.Do(t, "POST", "/calling/callConnections:answer?api-version=2025-05-15", map[string]any{
		"incomingCallContext": ctxToken, "callbackUri": app.URL + "/callbacks", "operationContext": "e2e"})
	if r.Status != http.StatusOK {
		t.Fatalf("answer: %d %s", r.Status, r.Body)
	}
	var conn struct {
		CallConnectionID string `json:"callConnectionId"`
		ServerCallID     string `json:"serverCallId"`
	}
	r.JSON(t, &conn)
	if conn.CallConnectionID == "" {
		t.Fatalf("answer: %s", r.Body)
	}

	types := func() []string {
		var out []string
		for _, ev := range app.callbacks {
			s, _ := ev["type"].(string)
			out = append(out, s)
		}
		return out
	}
	app.waitFor(t, "CallConnected", func() bool { return strings.Contains(strings.Join(types(), ","), "CallConnected") })
	wait(40 * time.Second)
	app.waitFor(t, "CallDisconnected", func() bool { return strings.Contains(strings.Join(types(), ","), "CallDisconnected") })

	// Every callback carries a JWT that verifies against telgw's JWKS, for this resource.
	app.mu.Lock()
	auth := append([]string(nil), app.auth...)
	cbs := append([]map[string]any(nil), app.callbacks...)
	app.mu.Unlock()
	set := jwks(t, tg.Endpoint)
	for i, h := range auth {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			t.Fatalf("callback %d without a bearer token: %q", i, h)
		}
		if _, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
			kid, _ := tk.Header["kid"].(string)
			return set.PublicKey(kid)
		}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()); err != nil {
			t.Errorf("callback %d JWT: %v", i, err)
		}
	}
	for _, ev := range cbs {
		d, _ := ev["data"].(map[string]any)
		if d["callConnectionId"] != conn.CallConnectionID || d["operationContext"] != "e2e" {
			t.Errorf("callback %v: want callConnectionId %s and operationContext e2e", ev, conn.CallConnectionID)
		}
	}
	if r := c.Do(t, "GET", "/calling/callConnections/"+conn.CallConnectionID+"?api-version=2025-05-15", nil); r.Status != http.StatusNotFound {
		t.Errorf("ended call connection: %d %s, want 404", r.Status, r.Body)
	}
	checkCDR(t, c, "inbound", pstnNumber, botNumber, "caller")
}

// jwks fetches telgw's OpenID configuration and the JWKS it names, as an app verifying
// callbacks does.
func jwks(t *testing.T, endpoint string) events.JWKSet {
	t.Helper()
	var oidc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, endpoint+"calling/.well-known/acsopenidconfiguration", &oidc)
	var set events.JWKSet
	getJSON(t, oidc.JWKSURI, &set)
	if len(set.Keys) == 0 {
		t.Fatal("empty JWKS")
	}
	return set
}
