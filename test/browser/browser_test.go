package browser

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/web"
)

// fakeToken is shaped like a user access token (the page reads only its subject); the
// stand-in checks it byte for byte in the Authorization header.
func fakeToken(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc([]byte(`{"sub":"`+sub+`","acsScope":"voip"}`)) + ".sig"
}

type verifier string

func (v verifier) Verify(_ context.Context, token string) (identity.Claims, error) {
	if token != string(v) {
		return identity.Claims{}, problem.Unauthorized("invalid token")
	}
	return identity.Claims{Identity: "8:acs:test_1", Scopes: []identity.Scope{identity.ScopeVoIP}}, nil
}

// phoneServer serves the softphone, the ICE endpoint and the stand-in SIP WebSocket on one
// origin, as telgw will.
func phoneServer(t *testing.T) (*httptest.Server, *standIn, string) {
	t.Helper()
	token := fakeToken("8:acs:test_1")
	eng, err := webrtc.NewEngine(webrtc.Config{ConnectTimeout: 10 * time.Second}, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	si := newStandIn(t, eng, token)
	mux := http.NewServeMux()
	page := web.Handler()
	mux.Handle("/phone", page)
	mux.Handle("/phone/", page)
	mux.Handle("/phone/ice", web.ICEHandler(verifier(token), nil, discard()))
	mux.Handle("/sip/ws", si)
	srv := httptest.NewUnstartedServer(mux)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		si.hangupLeg()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, si, token
}

func checkMedia(t *testing.T, res Result, si *standIn, digits string) {
	t.Helper()
	if res.Stats == nil {
		t.Fatalf("no stats: %+v", res)
	}
	st := res.Stats
	t.Logf("browser: %+v; call %q cause %q", *st, res.CallStatus, res.Cause)
	if st.Codec != "audio/PCMU" {
		t.Errorf("codec %q, want audio/PCMU (G.711 without transcoding)", st.Codec)
	}
	// ~50 packets/s of 20 ms G.711 for a 3 s call; allow for ICE/DTLS set-up time.
	if st.PacketsSent < 50 || st.PacketsReceived < 50 {
		t.Errorf("RTP sent %d received %d, want ≥ 50 each way", st.PacketsSent, st.PacketsReceived)
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	ls := si.leg.Stats()
	t.Logf("telgw leg: %+v, DTMF packets %d, digits %v", ls, si.dtmf, si.digits)
	if ls.PacketsReceived < 50 || ls.PacketsSent < 50 {
		t.Errorf("leg stats %+v", ls)
	}
	if got := strings.Join(si.digits, ""); got != digits {
		t.Errorf("DTMF digits %q, want %q (RFC 4733 from the browser)", got, digits)
	}
}

// TestSoftphoneCallsOut registers the softphone with a Bearer token and places a call that a
// real pion WebRTC leg answers and echoes.
func TestSoftphoneCallsOut(t *testing.T) {
	Require(t)
	srv, si, token := phoneServer(t)
	res := Run(t, Options{URL: srv.URL + "/phone/", Token: token, Mode: "call", Number: "+14155550123", DTMF: "19#", Talk: 3 * time.Second})
	if !res.Registered || !strings.HasPrefix(res.CallStatus, "ended") {
		t.Fatalf("result %+v", res)
	}
	checkMedia(t, res, si, "19#")
	si.mu.Lock()
	auth := si.auth
	si.mu.Unlock()
	for _, a := range auth {
		if method, _, _ := strings.Cut(a, " "); method != "ACK" && !strings.HasSuffix(a, "Bearer "+token) {
			t.Errorf("%s: no Bearer token", a)
		}
	}
}

// TestSoftphoneAnswers calls the registered softphone with the leg's offer (telgw → browser)
// and lets the page answer.
func TestSoftphoneAnswers(t *testing.T) {
	Require(t)
	srv, si, token := phoneServer(t)
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := RunContext(context.Background(), Require(t), Options{URL: srv.URL + "/phone/", Token: token, Mode: "answer", DTMF: "5", Talk: 3 * time.Second})
		done <- out{res, err}
	}()
	si.wait(t, "registered", 30*time.Second)
	si.callBrowser()
	si.wait(t, "invite 200", 30*time.Second)
	o := <-done
	if o.err != nil {
		t.Fatalf("%v\n%+v", o.err, o.res)
	}
	checkMedia(t, o.res, si, "5")
}
