package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// wsPhone is one WebSocket connection to telgw's /sip/ws.
type wsPhone struct {
	t    *testing.T
	conn net.Conn
	n    int
}

func dialPhone(t *testing.T, endpoint string) *wsPhone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws://" + strings.TrimSuffix(strings.TrimPrefix(endpoint, "http://"), "/") + "/sip/ws"
	conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &wsPhone{t: t, conn: conn}
}

// register sends a REGISTER with a Bearer token and returns the status line.
func (p *wsPhone) register(user, token string) string {
	p.t.Helper()
	p.n++
	n := strconv.Itoa(p.n)
	msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bKreg" + n + "\r\nMax-Forwards: 70\r\n" +
		"To: <sip:" + user + "@127.0.0.1>\r\nFrom: <sip:" + user + "@127.0.0.1>;tag=r" + n + "\r\nCall-ID: reg-" + user + "\r\n" +
		"CSeq: " + n + " REGISTER\r\nContact: <sip:d" + n + "@h.invalid;transport=ws>;expires=300\r\n" +
		"Authorization: Bearer " + token + "\r\nContent-Length: 0\r\n\r\n"
	if err := wsutil.WriteClientText(p.conn, []byte(msg)); err != nil {
		p.t.Fatal(err)
	}
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		b, err := wsutil.ReadServerText(p.conn)
		if err != nil {
			p.t.Fatalf("read: %v", err)
		}
		if line, _, _ := strings.Cut(string(b), "\r\n"); !strings.HasPrefix(line, "SIP/2.0 100") {
			return line
		}
	}
}

// TestRegistrationsFollowTokensAndConnections: against a real `telgw serve`, a user's
// WebSocket registrations (telgw_registrations) go when the user's tokens are revoked, when the
// user is deleted and when the WebSocket closes; REGISTER over plain UDP is refused.
func TestRegistrationsFollowTokensAndConnections(t *testing.T) {
	tg := StartTelgw(t, Options{})
	sipAddr := tg.Addrs.SIP
	c := NewClient(t, tg.ConnString)
	type created struct {
		Identity    struct{ ID string }    `json:"identity"`
		AccessToken struct{ Token string } `json:"accessToken"`
	}
	newUser := func() created {
		var id created
		c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}}).JSON(t, &id)
		return id
	}
	registrations := func() float64 { return metric(t, tg.Endpoint, "telgw_registrations") }
	waitFor := func(what string, want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for registrations() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: telgw_registrations %v, want %v", what, registrations(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Revoked tokens.
	u := newUser()
	if line := dialPhone(t, tg.Endpoint).register(u.Identity.ID, u.AccessToken.Token); line != "SIP/2.0 200 OK" {
		t.Fatalf("register: %s", line)
	}
	waitFor("registered", 1)
	if r := c.Do(t, "POST", "/identities/"+url.PathEscape(u.Identity.ID)+"/:revokeAccessTokens?api-version=2023-10-01", map[string]any{}); r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("revoke: %d", r.Status)
	}
	waitFor("after revocation", 0)

	// Deleted identity.
	u = newUser()
	if line := dialPhone(t, tg.Endpoint).register(u.Identity.ID, u.AccessToken.Token); line != "SIP/2.0 200 OK" {
		t.Fatalf("register: %s", line)
	}
	waitFor("registered", 1)
	if r := c.Do(t, "DELETE", "/identities/"+url.PathEscape(u.Identity.ID)+"?api-version=2023-10-01", nil); r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("delete: %d", r.Status)
	}
	waitFor("after deletion", 0)

	// Closed WebSocket.
	u = newUser()
	p := dialPhone(t, tg.Endpoint)
	if line := p.register(u.Identity.ID, u.AccessToken.Token); line != "SIP/2.0 200 OK" {
		t.Fatalf("register: %s", line)
	}
	waitFor("registered", 1)
	_ = p.conn.Close()
	waitFor("after the WebSocket closed", 0)

	// Plain UDP: 403, nothing registered.
	conn, err := net.Dial("udp", sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bKudp1\r\nMax-Forwards: 70\r\n" +
		"To: <sip:" + u.Identity.ID + "@127.0.0.1>\r\nFrom: <sip:" + u.Identity.ID + "@127.0.0.1>;tag=u1\r\nCall-ID: reg-udp\r\n" +
		"CSeq: 1 REGISTER\r\nContact: <sip:d@" + conn.LocalAddr().String() + ">;expires=300\r\n" +
		"Authorization: Bearer " + u.AccessToken.Token + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer to REGISTER over UDP: %v", err)
	}
	if line, _, _ := strings.Cut(string(buf[:n]), "\r\n"); line != "SIP/2.0 403 Forbidden" {
		t.Fatalf("REGISTER over UDP: %s, want 403", line)
	}
	if v := registrations(); v != 0 {
		t.Fatalf("telgw_registrations %v after a REGISTER over UDP", v)
	}
}
