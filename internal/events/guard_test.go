package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/telgw/telgw/internal/problem"
)

func TestGuardCheckIP(t *testing.T) {
	t.Parallel()
	refused := []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1", "100.64.0.1", "100.127.255.254", "224.0.0.1",
		"ff02::1", "0.0.0.0", "::", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:c0a8:101::1", "0.1.2.3"}
	allowed := []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "172.32.0.1", "100.128.0.1",
		"64:ff9b::808:808", "2002:808:808::1"}
	var g Guard
	for _, s := range refused {
		if err := g.CheckIP(netip.MustParseAddr(s)); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("CheckIP(%s) = %v, want ErrBlockedAddress", s, err)
		}
	}
	for _, s := range allowed {
		if err := g.CheckIP(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckIP(%s) = %v, want nil", s, err)
		}
	}
	open := Guard{AllowPrivate: true}
	if err := open.CheckIP(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	allow, err := ParseCIDRs([]string{"10.20.0.0/16", "::ffff:192.168.7.7"})
	if err != nil {
		t.Fatal(err)
	}
	listed := Guard{Allow: allow}
	for s, want := range map[string]bool{"10.20.3.4": true, "10.21.0.1": false, "192.168.7.7": true, "192.168.7.8": false} {
		if got := listed.CheckIP(netip.MustParseAddr(s)) == nil; got != want {
			t.Errorf("allow-list CheckIP(%s) allowed=%v, want %v", s, got, want)
		}
	}
	if _, err := ParseCIDRs([]string{"10.0.0.0/33"}); err == nil {
		t.Error("ParseCIDRs accepted 10.0.0.0/33")
	}
}

func TestGuardCheckURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var g Guard
	for _, u := range []string{"http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
		"https://10.0.0.5/hook", "http://localhost:9/", "http://0x7f000001/", "ftp://example.com/", "file:///etc/passwd",
		"gopher://127.0.0.1:25/", "http:///x", "https://user:pw@example.com/"} {
		err := g.CheckURL(ctx, "url", u)
		pe, ok := problem.As(err)
		if !ok || pe.Kind != problem.KindInvalid || pe.Target != "url" {
			t.Errorf("CheckURL(%s) = %v, want an invalid-url problem", u, err)
		}
	}
	if err := g.CheckURL(ctx, "url", "https://93.184.216.34/hook"); err != nil {
		t.Errorf("public literal refused: %v", err)
	}
	open := Guard{AllowPrivate: true}
	if err := open.CheckURL(ctx, "url", "http://127.0.0.1:8080/"); err != nil {
		t.Errorf("AllowPrivate refused loopback: %v", err)
	}
	if err := open.CheckURL(ctx, "url", "ftp://127.0.0.1/"); err == nil {
		t.Error("AllowPrivate accepted ftp")
	}
}

// memStore is an in-memory Store.
type memStore struct {
	mu   sync.Mutex
	subs map[string]Subscription
}

func (m *memStore) SubscriptionList(context.Context) ([]Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Subscription
	for _, s := range m.subs {
		out = append(out, s)
	}
	return out, nil
}

func (m *memStore) SubscriptionGet(_ context.Context, id string) (Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return s, problem.ErrNotFound
	}
	return s, nil
}

func (m *memStore) SubscriptionPut(_ context.Context, s Subscription) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.subs == nil {
		m.subs = map[string]Subscription{}
	}
	m.subs[s.ID] = s
	return nil
}

func (m *memStore) SubscriptionDelete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[id]; !ok {
		return problem.ErrNotFound
	}
	delete(m.subs, id)
	return nil
}

func (m *memStore) SubscriptionSetDisabled(_ context.Context, id string, disabled bool, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return problem.ErrNotFound
	}
	s.Disabled, s.DisabledReason = disabled, reason
	m.subs[id] = s
	return nil
}

// hitServer counts the requests it gets; it answers the validation handshake, then h.
func hitServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if AnswerValidation(w, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var testEvent = json.RawMessage(`{"id":"e1"}`)

// A subscription stored while webhooks.allowPrivate was on (or whose name resolved outward at
// creation and inward now, DNS rebinding) is refused when delivering: the check runs on the
// address actually dialled, by name ("localhost") or by literal.
func TestDeliverRefusesInternalAtDialTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, hits := hitServer(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	st := &memStore{}

	lax := NewDispatcher(Config{Store: st, Guard: &Guard{AllowPrivate: true}})
	var subs []Subscription
	for _, u := range []string{srv.URL + "/", "http://localhost:" + port + "/"} {
		s, err := lax.Create(ctx, Subscription{URL: u})
		if err != nil {
			t.Fatalf("create %s with allowPrivate: %v", u, err)
		}
		if err := lax.Deliver(ctx, s, "e1", testEvent); err != nil {
			t.Fatalf("deliver %s with allowPrivate: %v", u, err)
		}
		subs = append(subs, s)
	}
	before := hits.Load()

	strict := NewDispatcher(Config{Store: st}) // the default guard
	for _, s := range subs {
		err := strict.Deliver(ctx, s, "e1", testEvent)
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("deliver %s by default = %v, want ErrBlockedAddress", s.URL, err)
		}
		if _, err := strict.Create(ctx, Subscription{URL: s.URL}); err == nil {
			t.Errorf("create %s by default succeeded", s.URL)
		}
	}
	if n := hits.Load(); n != before {
		t.Fatalf("the internal subscriber got %d requests with the default guard", n-before)
	}
}

// A 3xx is a failed delivery and its Location is not followed, even to an allowed address.
func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner, innerHits := hitServer(t, nil)
	outer, _ := hitServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/latest/meta-data/", http.StatusFound)
	})
	allow, _ := ParseCIDRs([]string{"127.0.0.1/32"})
	d := NewDispatcher(Config{Store: &memStore{}, Guard: &Guard{Allow: allow}})
	s, err := d.Create(ctx, Subscription{URL: outer.URL + "/hook"})
	if err != nil {
		t.Fatalf("create with 127.0.0.1 allow-listed: %v", err)
	}
	err = d.Deliver(ctx, s, "e1", testEvent)
	if err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("deliver = %v, want a 302 failure", err)
	}
	if n := innerHits.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests", n)
	}
}

// Configured subscribers with internal literals stop start-up, naming the key.
func TestSyncConfigRefusesInternal(t *testing.T) {
	t.Parallel()
	d := NewDispatcher(Config{Store: &memStore{}})
	err := d.SyncConfig(context.Background(), []Subscription{{URL: "https://93.184.216.34/"}, {URL: "http://169.254.169.254/"}})
	if err == nil || !strings.Contains(err.Error(), "webhooks[1].url") {
		t.Fatalf("SyncConfig = %v, want webhooks[1].url refused", err)
	}
}

// FuzzGuardURL: whatever the URL, the creation check does not panic, and what it accepts is an
// http(s) URL whose literal address (if any) is not internal.
func FuzzGuardURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1/", "https://[::ffff:169.254.169.254]/", "http://[fe80::1%25eth0]:80/",
		"https://example.com/hook", "http://0177.0.0.1/", "http://2130706433/", "ftp://x", "http://a@b/", "https://[64:ff9b::a00:1]/"} {
		f.Add(s)
	}
	var g Guard
	f.Fuzz(func(t *testing.T, raw string) {
		if err := g.checkURL(context.Background(), "url", raw, false); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("accepted %q", raw)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && g.CheckIP(ip) != nil {
			t.Fatalf("accepted internal literal %q", raw)
		}
	})
}
