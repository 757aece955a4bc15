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
	reg  *registrar.Registrar
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
	return node(t, identity.New(db, ring), true)
}

// node is one telgw node's registrar on its own WebSocket listener, sharing ids (and so the
// store) with the others; hook wires the identity service's revocation to it, as the app does
// on the node that serves the API call.
func node(t *testing.T, ids *identity.Service, hook bool) *env {
	t.Helper()
	loc := registrar.NewLocation(nil)
	reg := &registrar.Registrar{Auth: registrar.NewAuthenticator(ids, []byte("nonce-secret")), Location: loc,
		Log: slog.New(slog.DiscardHandler)}
	if hook {
		ids.OnRevoke(loc.RemoveAll)
	}
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
	return &env{ids: ids, loc: loc, reg: reg, url: "ws" + strings.TrimPrefix(hs.URL, "http"), host: hs.Listener.Addr().String()}
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

	// Digest with the token as password, for each offered algorithm (one nonce: nc 1, then 2).
	for i, ch := range challenges[1:] {
		c, err := digest.ParseChallenge(ch)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + e.host, Username: user.ID,
			Password: tok.Token, Count: i + 1, Cnonce: "abc123"})
		if err != nil {
			t.Fatal(err)
		}
		if res := e.register(t, cred.String(), "", "300"); res.StatusCode != 200 {
			t.Fatalf("digest %s: %d", c.Algorithm, res.StatusCode)
		}
		bad, _ := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + e.host, Username: user.ID,
			Password: "not-the-token", Count: i + 3, Cnonce: "abc123"})
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

func TestLocationAll(t *testing.T) {
	l := registrar.NewLocation(nil)
	now := time.Now()
	l.Put(registrar.Contact{Identity: "b", URI: sip.Uri{User: "b1", Host: "x.invalid"}, Expires: now.Add(time.Hour)})
	l.Put(registrar.Contact{Identity: "a", URI: sip.Uri{User: "a1", Host: "x.invalid"}, Expires: now.Add(time.Minute)})
	l.Put(registrar.Contact{Identity: "a", URI: sip.Uri{User: "a2", Host: "x.invalid"}, Expires: now.Add(time.Hour)})
	l.Put(registrar.Contact{Identity: "c", URI: sip.Uri{User: "c1", Host: "x.invalid"}, Expires: now.Add(-time.Second)})
	var got []string
	for _, c := range l.All() {
		got = append(got, c.URI.User)
	}
	if strings.Join(got, ",") != "a2,a1,b1" {
		t.Fatalf("All = %v, want a2,a1,b1 (by identity, newest expiry first, no expired)", got)
	}
}

// challenge returns the MD5 digest challenge of a credential-less REGISTER.
func (e *env) challenge(t *testing.T) *digest.Challenge {
	t.Helper()
	res := e.register(t, "", "", "")
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if strings.HasPrefix(h.Value(), "Digest") && strings.Contains(h.Value(), "MD5") {
			c, err := digest.ParseChallenge(h.Value())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("no MD5 digest challenge in %d", res.StatusCode)
	return nil
}

func (e *env) digestFor(t *testing.T, c *digest.Challenge, uri, user, token string, nc int) string {
	t.Helper()
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: uri, Username: user, Password: token, Count: nc, Cnonce: "f00dcafe"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// TestRegisterDigestReplay: a captured digest REGISTER (token as password) cannot be sent
// again: the same nonce-count is challenged again with stale=true (RFC 7616 §3.4.5) and
// credentials for another URI are refused (RFC 7616 §3.4.6); the client's own nc 2 works.
// Another node's nonce is stale there (each node tracks its own nonces).
func TestRegisterDigestReplay(t *testing.T) {
	e := setup(t)
	user, tok, err := e.ids.Create(context.Background(), []identity.Scope{identity.ScopeVoIP}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := e.challenge(t)
	captured := e.digestFor(t, c, "sip:"+e.host, user.ID, tok.Token, 1)
	if res := e.register(t, captured, "", "300"); res.StatusCode != 200 {
		t.Fatalf("digest register: %d", res.StatusCode)
	}
	res := e.register(t, captured, "", "300")
	if res.StatusCode != 401 {
		t.Fatalf("replayed register: %d, want 401", res.StatusCode)
	}
	stale := false
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		stale = stale || strings.Contains(h.Value(), "stale=true")
	}
	if !stale {
		t.Fatal("replay not answered with stale=true")
	}
	if res := e.register(t, e.digestFor(t, c, "sip:elsewhere.example", user.ID, tok.Token, 2), "", "300"); res.StatusCode != 403 {
		t.Fatalf("credentials for another URI: %d, want 403", res.StatusCode)
	}
	if res := e.register(t, e.digestFor(t, c, "sip:"+e.host, user.ID, tok.Token, 3), "", "300"); res.StatusCode != 200 {
		t.Fatalf("next nc on the same nonce: %d, want 200", res.StatusCode)
	}
	other := node(t, e.ids, false)
	if res := other.register(t, e.digestFor(t, c, "sip:"+other.host, user.ID, tok.Token, 4), "", "300"); res.StatusCode != 401 {
		t.Fatalf("another node's nonce: %d, want 401 (stale)", res.StatusCode)
	}
}

func TestRegisterContactsCap(t *testing.T) {
	e := setup(t)
	user, tok, err := e.ids.Create(context.Background(), []identity.Scope{identity.ScopeVoIP}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	extra := ""
	for i := range registrar.DefaultMaxContacts {
		extra += fmt.Sprintf(", <sip:extra%d@h.invalid;transport=ws>", i)
	}
	res := e.register(t, "Bearer "+tok.Token, extra, "300")
	if res.StatusCode != 403 || res.Reason != "Too Many Contacts" {
		t.Fatalf("%d contacts in one REGISTER: %d %s, want 403", registrar.DefaultMaxContacts+1, res.StatusCode, res.Reason)
	}
	if n := e.loc.Lookup(user.ID); len(n) != 0 {
		t.Fatal("bindings added by a refused REGISTER")
	}
	for i := range registrar.DefaultMaxDevices {
		if res := e.register(t, "Bearer "+tok.Token, "", "300"); res.StatusCode != 200 {
			t.Fatalf("device %d: %d", i, res.StatusCode)
		}
	}
	if res := e.register(t, "Bearer "+tok.Token, "", "300"); res.StatusCode != 403 || res.Reason != "Too Many Registrations" {
		t.Fatalf("device %d: %d %s, want 403 Too Many Registrations", registrar.DefaultMaxDevices+1, res.StatusCode, res.Reason)
	}
}

// TestRevokeAndDeleteDropBindings: revoking a user's tokens or deleting the user drops its
// registrations at once on the node that did it (identity hook) and, on another node sharing
// the store, as soon as a call would ring them (Registrar.Live), for Bearer and digest
// registrations alike; other users keep theirs.
func TestRevokeAndDeleteDropBindings(t *testing.T) {
	a := setup(t)
	b := node(t, a.ids, false)
	ctx := context.Background()
	mk := func() (identity.Identity, *identity.Token) {
		u, tok, err := a.ids.Create(ctx, []identity.Scope{identity.ScopeVoIP}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return u, tok
	}
	revoked, rtok := mk()
	deleted, dtok := mk()
	kept, ktok := mk()
	for _, n := range []*env{a, b} {
		for _, r := range []struct {
			id  string
			tok string
		}{{revoked.ID, rtok.Token}, {deleted.ID, dtok.Token}, {kept.ID, ktok.Token}} {
			if res := n.register(t, "Bearer "+r.tok, "", "300"); res.StatusCode != 200 {
				t.Fatalf("bearer register: %d", res.StatusCode)
			}
			if res := n.register(t, n.digestFor(t, n.challenge(t), "sip:"+n.host, r.id, r.tok, 1), "", "300"); res.StatusCode != 200 {
				t.Fatalf("digest register: %d", res.StatusCode)
			}
		}
	}
	if err := a.ids.RevokeTokens(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.ids.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{revoked.ID, deleted.ID} {
		if got := a.loc.Lookup(id); len(got) != 0 {
			t.Fatalf("node a kept %d bindings of %s", len(got), id)
		}
		if got := b.loc.Lookup(id); len(got) != 2 {
			t.Fatalf("node b: %d bindings before a call, want 2", len(got))
		}
		if got := b.reg.Live(ctx, id); len(got) != 0 {
			t.Fatalf("node b would ring %d devices of %s", len(got), id)
		}
		if got := b.loc.Lookup(id); len(got) != 0 {
			t.Fatalf("node b kept %d bindings of %s", len(got), id)
		}
	}
	for _, n := range []*env{a, b} {
		if got := n.reg.Live(ctx, kept.ID); len(got) != 2 {
			t.Fatalf("%d live bindings of a user in good standing, want 2", len(got))
		}
	}
}
