package sip_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestDrain: once the service drains, OPTIONS (a dispatcher's probe), new INVITEs and
// REGISTERs get 503, and a user's idle WebSocket is closed with 1012 (Service Restart) so the
// client reconnects elsewhere; its binding goes with it.
func TestDrain(t *testing.T) {
	ue := newUserEnv(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, "ws://"+ue.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reg := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bKdrain1\r\nMax-Forwards: 70\r\n" +
		"To: <sip:" + alice + "@127.0.0.1>\r\nFrom: <sip:" + alice + "@127.0.0.1>;tag=d1\r\nCall-ID: drain-reg\r\n" +
		"CSeq: 1 REGISTER\r\nContact: <sip:d1@h.invalid;transport=ws>;expires=300\r\n" +
		"Authorization: Bearer " + aliceToken + "\r\nContent-Length: 0\r\n\r\n"
	if err := wsutil.WriteClientText(conn, []byte(reg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := wsutil.ReadServerText(conn)
	if err != nil || !strings.HasPrefix(string(b), "SIP/2.0 200") {
		t.Fatalf("register: %q %v", b, err)
	}
	if n := ue.loc.Count(); n != 1 {
		t.Fatalf("%d bindings, want 1", n)
	}

	left := make(chan int, 1)
	go func() { left <- ue.svc.Drain(ctx) }()
	select {
	case n := <-left:
		if n != 0 {
			t.Fatalf("Drain left %d calls", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain with no calls did not return")
	}
	// The idle WebSocket: a Close frame with 1012, then the connection ends.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := ws.ReadFrame(conn)
	if err != nil || f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || int(f.Payload[0])<<8|int(f.Payload[1]) != 1012 {
		t.Fatalf("after drain the WebSocket read %+v %v, want a Close frame with 1012", f.Header, err)
	}
	eventually(t, "binding dropped with its connection", func() bool { return ue.loc.Count() == 0 })

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("dispatcher"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(ue.addr)
	for _, m := range []sipmsg.RequestMethod{sipmsg.OPTIONS, sipmsg.INVITE} {
		req := sipmsg.NewRequest(m, sipmsg.Uri{Scheme: "sip", User: ourNumber, Host: host, Port: portOf(ue.addr)})
		res, err := cli.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if m == sipmsg.INVITE && res.StatusCode == 100 {
			continue
		}
		if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
			t.Fatalf("%s while draining: %d, want 503 with Retry-After", m, res.StatusCode)
		}
	}
	if !ue.svc.Draining() {
		t.Fatal("Draining() is false")
	}
}
