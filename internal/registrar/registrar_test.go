package registrar_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/icholy/digest"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sipws"
	"github.com/telgw/telgw/internal/store/storetest"
)

type env struct {
	ids  *identity.Service
	loc  *registrar.Location
	url  string
	host string
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	ring, err := keys.NewRing(ctx, db, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ids := identity.New(db, ring)
	loc := registrar.NewLocation(nil)
	reg := &registrar.Registrar{Auth: registrar.NewAuthenticator(ids, []byte("nonce-secret")), Location: loc,
		Log: slog.New(slog.DiscardHandler)}
	ua, _ := sipgo.NewUA()
	t.Cleanup(func() { _ = ua.Close() })
	srv, _ := sipgo.NewServer(ua)
	srv.OnRegister(reg.OnRegister)
	hs := httptest.NewUnstartedServer(nil)
	l := sipws.NewListener(hs.Listener.Addr())
	hs.Config.Handler = l
	hs.Start()
	t.Cleanup(hs.Close)
	go func() { _ = srv.ServeWS(l) }()
	t.Cleanup(func() { _ = l.Close() })
	return &env{ids: ids, loc: loc, url: "ws" + strings.TrimPrefix(hs.URL, "http"), host: hs.Listener.Addr().String()}
}

var seq atomic.Int64

// register sends one REGISTER over a fresh WebSocket and returns the response.
func (e *env) register(t *testing.T, auth string, contactParams string, expires string) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := seq.Add(1)
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/WS h%d.invalid;branch=z9hG4bK%d;rport\r\n"+
		"From: <sip:u@%s>;tag=t%d\r\nTo: <sip:u@%s>\r\nCall-ID: c%d\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:u@h%d.invalid;transport=ws>%s\r\n", e.host, n, n, e.host, n, e.host, n, n, contactParams)
	if expires != "" {
		msg += "Expires: " + expires + "\r\n"
	}
	if auth != "" {
		msg += "Authorization: " + auth + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	if err := wsutil.WriteClientText(conn, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := wsutil.ReadServerText(conn)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse %q: %v", b, err)
	}
	return res.(*sip.Response)
}

func TestRegisterWithBearerAndDigest(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	user, tok, err := e.ids.Create(ctx, []identity.Scope{identity.ScopeVoIP}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// No credentials: 401 with Bearer and Digest (SHA-256, MD5) challenges.
	res := e.register(t, "", "", "")
	if res.StatusCode != 401 {
		t.Fatalf("no auth: %d", res.StatusCode)
	}
	var challenges []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		challenges = append(challenges, h.Value())
	}
	if len(challenges) != 3 || !strings.HasPrefix(challenges[0], "Bearer") {
		t.Fatalf("challenges %q", challenges)
	}

	// Bearer (RFC 8898).
	if res := e.register(t, "Bearer "+tok.Token, ";expires=600", ""); res.StatusCode != 200 {
		t.Fatalf("bearer: %d", res.StatusCode)
	}
	if got := e.loc.Lookup(user.ID); len(got) != 1 || got[0].Transport != "WS" {
		t.Fatalf("location after bearer register: %+v", got)
	}

	// Digest with the token as password, for each offered algorithm.
	for _, ch := range challenges[1:] {
		c, err := digest.ParseChallenge(ch)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + e.host, Username: user.ID,
			Password: tok.Token, Count: 1, Cnonce: "abc123"})
		if err != nil {
			t.Fatal(err)
		}
		if res := e.register(t, cred.String(), "", "300"); res.StatusCode != 200 {
			t.Fatalf("digest %s: %d", c.Algorithm, res.StatusCode)
		}
		bad, _ := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + e.host, Username: user.ID,
			Password: "not-the-token", Count: 1, Cnonce: "abc123"})
		if res := e.register(t, bad.String(), "", "300"); res.StatusCode != 401 {
			t.Fatalf("digest with wrong password %s: %d", c.Algorithm, res.StatusCode)
		}
	}
	if got := e.loc.Lookup(user.ID); len(got) != 3 {
		t.Fatalf("want 3 devices registered, got %d", len(got))
	}

	// Too brief an interval.
	if res := e.register(t, "Bearer "+tok.Token, "", "10"); res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
		t.Fatalf("expires 10: %d", res.StatusCode)
	}
	// Contact: * with Expires: 0 would need the same contact; Remove-all is exercised in the unit.

	// A chat-only token is forbidden; a revoked one is challenged again.
	_, chat, _ := e.ids.Create(ctx, []identity.Scope{identity.ScopeChat}, time.Hour)
	if res := e.register(t, "Bearer "+chat.Token, "", ""); res.StatusCode != 403 {
		t.Fatalf("chat token: %d", res.StatusCode)
	}
	if err := e.ids.RevokeTokens(ctx, user.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.register(t, "Bearer "+tok.Token, "", ""); res.StatusCode != 401 {
		t.Fatalf("revoked token: %d", res.StatusCode)
	}
	if err := e.ids.Delete(ctx, user.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.register(t, "Bearer "+tok.Token, "", ""); res.StatusCode != 401 {
		t.Fatalf("deleted identity: %d", res.StatusCode)
	}
}

func TestLocationExpiryAndSources(t *testing.T) {
	l := registrar.NewLocation(nil)
	u1, u2 := sip.Uri{User: "a", Host: "x.invalid"}, sip.Uri{User: "b", Host: "y.invalid"}
	l.Put(registrar.Contact{Identity: "id", URI: u1, Source: "1.1.1.1:1", Expires: time.Now().Add(time.Hour)})
	l.Put(registrar.Contact{Identity: "id", URI: u2, Source: "2.2.2.2:2", Expires: time.Now().Add(-time.Second)})
	if got := l.Lookup("id"); len(got) != 1 || got[0].URI.User != "a" {
		t.Fatalf("expired binding returned: %+v", got)
	}
	l.RemoveSource("1.1.1.1:1")
	if got := l.Lookup("id"); len(got) != 0 {
		t.Fatalf("binding of a closed connection kept: %+v", got)
	}
}
