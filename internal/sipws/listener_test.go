package sipws

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func TestSIPOverWebSocketOnHTTPListener(t *testing.T) {
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	hs := httptest.NewUnstartedServer(nil)
	l := NewListener(hs.Listener.Addr())
	mux := http.NewServeMux()
	mux.Handle("/sip/ws", l)
	hs.Config.Handler = mux
	hs.Start()
	defer hs.Close()
	go func() { _ = srv.ServeWS(l) }()
	defer l.Close()

	// Plain HTTP to the endpoint is told to upgrade.
	resp, err := http.Get(hs.URL + "/sip/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/sip/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := hs.Listener.Addr().String()
	reg := "REGISTER sip:" + host + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKasudf;rport\r\n" +
		"From: <sip:alice@" + host + ">;tag=65bnmj.i2\r\n" +
		"To: <sip:alice@" + host + ">\r\n" +
		"Call-ID: aiuy7k9njasd\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n" +
		"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600\r\nContent-Length: 0\r\n\r\n"
	if err := wsutil.WriteClientText(conn, []byte(reg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := wsutil.ReadServerText(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(msg), "SIP/2.0 200") {
		t.Fatalf("response: %q", msg)
	}
}
