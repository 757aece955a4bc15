package console_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/store"
)

const origin = "http://console.test"

var (
	primary   = []byte("0123456789abcdef0123456789abcdef")
	secondary = []byte("fedcba9876543210fedcba9876543210")
)

// fakeNumbers records SetRoute calls (the domain is tested in internal/numbers; here only
// that the console calls it, and only with a valid session and CSRF token).
type fakeNumbers struct {
	mu     sync.Mutex
	routes map[string]string
}

func (f *fakeNumbers) List(context.Context, numbers.ListParams) ([]numbers.Number, error) {
	return nil, nil
}

func (f *fakeNumbers) Get(_ context.Context, n string) (numbers.Number, error) {
	return numbers.Number{E164: numbers.E164(n), Status: numbers.StatePurchased}, nil
}

func (f *fakeNumbers) SetRoute(_ context.Context, n string, r numbers.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[n] = r.String()
	return nil
}

type env struct {
	t     *testing.T
	h     *console.Handler
	db    *store.DB
	nums  *fakeNumbers
	keys  atomic.Pointer[[2][]byte]
	clock atomic.Pointer[time.Time]
}

func newEnv(t *testing.T, mod func(*console.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, nums: &fakeNumbers{routes: map[string]string{}}}
	e.keys.Store(&[2][]byte{primary, secondary})
	now := time.Now()
	e.clock.Store(&now)
	cfg := console.Config{Store: db, Numbers: e.nums, Now: func() time.Time { return *e.clock.Load() },
		Keys: func() ([]byte, []byte) { k := e.keys.Load(); return k[0], k[1] }}
	if mod != nil {
		mod(&cfg)
	}
	if e.h, err = console.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// do serves one request; form, when non-nil, is POSTed from the console's origin.
func (e *env) do(method, target string, form url.Values, cookie *http.Cookie, hdr map[string]string) *http.Response {
	e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, origin+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
	} else {
		req = httptest.NewRequest(method, origin+target, nil)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Result()
}

func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == console.CookieName && c.Value != "" {
			return c
		}
	}
	return nil
}

// signIn signs in with key and returns the session cookie and the page's CSRF token.
func (e *env) signIn(key string) (*http.Cookie, string) {
	e.t.Helper()
	res := e.do("POST", "/console/signin", url.Values{"key": {key}, "next": {"/console/"}}, nil, nil)
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in: %d", res.StatusCode)
	}
	c := sessionCookie(res)
	if c == nil {
		e.t.Fatal("sign in set no session cookie")
	}
	return c, e.csrf(c)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) csrf(c *http.Cookie) string {
	e.t.Helper()
	res := e.do("GET", "/console/numbers", nil, c, nil)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("numbers page: %d", res.StatusCode)
	}
	body, _ := io.ReadAll(res.Body)
	m := csrfRE.FindStringSubmatch(string(body))
	if m == nil {
		e.t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, p := range []string{"/console/", "/console/numbers?areaCode=425", "/console/messages", "/console/calls",
		"/console/trunks", "/console/webhooks", "/console/users", "/console/messages/x", "/console/nope"} {
		res := e.do("GET", p, nil, nil, nil)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/signin?next=") {
			t.Errorf("GET %s: %d %q, want 303 to sign-in", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	res := e.do("POST", "/console/numbers/route", url.Values{"number": {"+14255550100"}, "route": {"sip:x@y"}}, nil, nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST route without session: %d, want 401", res.StatusCode)
	}
	// A made-up cookie is no session.
	res = e.do("GET", "/console/", nil, &http.Cookie{Name: console.CookieName, Value: console.NewSecret()}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("forged cookie: %d, want 303", res.StatusCode)
	}
	// Public: the sign-in pages and static assets.
	for _, p := range []string{"/console/signin", "/console/link", "/console/static/console.css", "/console/static/link.js"} {
		if res := e.do("GET", p, nil, nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, res.StatusCode)
		}
	}
	if len(e.nums.routes) != 0 {
		t.Fatalf("routes changed: %v", e.nums.routes)
	}
}

func TestSignInWrongKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, key := range []string{"", "nope", b64([]byte("0123456789abcdef0123456789abcdeX")), b64(primary[:16])} {
		res := e.do("POST", "/console/signin", url.Values{"key": {key}}, nil, nil)
		if res.StatusCode != http.StatusUnauthorized || sessionCookie(res) != nil {
			t.Errorf("key %q: %d (cookie %v), want 401 and no cookie", key, res.StatusCode, sessionCookie(res))
		}
	}
}

func TestSignInCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, key := range []string{b64(primary), b64(secondary), "endpoint=http://x/;accesskey=" + b64(primary)} {
		res := e.do("POST", "/console/signin", url.Values{"key": {key}, "next": {"/console/calls"}}, nil, nil)
		c := sessionCookie(res)
		if res.StatusCode != http.StatusSeeOther || c == nil {
			t.Fatalf("key %q: %d, cookie %v", key, res.StatusCode, c)
		}
		if res.Header.Get("Location") != "/console/calls" {
			t.Errorf("redirect to %q", res.Header.Get("Location"))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Secure || len(c.Value) < 40 {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, not Secure over http, a long random value", c)
		}
	}
	// An open redirect is not: next stays inside the console.
	res := e.do("POST", "/console/signin", url.Values{"key": {b64(primary)}, "next": {"//evil.example/"}}, nil, nil)
	if res.Header.Get("Location") != "/console/" {
		t.Errorf("next //evil.example/: redirected to %q", res.Header.Get("Location"))
	}
	// Over HTTPS (a TLS listener, or https public URL behind a proxy) the cookie is Secure.
	e2 := newEnv(t, func(c *console.Config) { c.PublicURL = "https://console.test/" })
	res = e2.do("POST", "/console/signin", url.Values{"key": {b64(primary)}}, nil, map[string]string{"Origin": "https://console.test"})
	if c := sessionCookie(res); c == nil || !c.Secure {
		t.Fatalf("https: %d, cookie %+v, want Secure", res.StatusCode, c)
	}
}

func TestSignInCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, hdr := range map[string]map[string]string{
		"foreign origin":  {"Origin": "http://evil.example"},
		"no origin":       {"Origin": ""},
		"foreign referer": {"Origin": "", "Referer": "http://evil.example/console/signin"},
	} {
		res := e.do("POST", "/console/signin", url.Values{"key": {b64(primary)}}, nil, hdr)
		if res.StatusCode != http.StatusForbidden || sessionCookie(res) != nil {
			t.Errorf("%s: %d, want 403 and no session", name, res.StatusCode)
		}
	}
	res := e.do("POST", "/console/signin", url.Values{"key": {b64(primary)}}, nil, map[string]string{"Origin": "", "Referer": origin + "/console/signin"})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin Referer: %d, want 303", res.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, token := e.signIn(b64(primary))
	form := func(csrf string) url.Values {
		return url.Values{"number": {"+14255550100"}, "route": {"sip:+14255550100@pbx.test"}, "csrf": {csrf}}
	}
	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no token":       {url.Values{"number": {"+14255550100"}, "route": {"sip:x@y"}}, nil},
		"wrong token":    {form(console.NewSecret()), nil},
		"foreign origin": {form(token), map[string]string{"Origin": "http://evil.example"}},
		"no origin":      {form(token), map[string]string{"Origin": ""}},
	} {
		if res := e.do("POST", "/console/numbers/route", tc.form, c, tc.hdr); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if len(e.nums.routes) != 0 {
		t.Fatalf("a refused POST changed a route: %v", e.nums.routes)
	}
	// Another session's token is no good either.
	c2, token2 := e.signIn(b64(secondary))
	if token2 == token {
		t.Fatal("two sessions share a CSRF token")
	}
	if res := e.do("POST", "/console/numbers/route", form(token2), c, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("other session's token: %d, want 403", res.StatusCode)
	}
	res := e.do("POST", "/console/numbers/route", form(token), c, nil)
	if res.StatusCode != http.StatusSeeOther || e.nums.routes["+14255550100"] != "sip:+14255550100@pbx.test" {
		t.Fatalf("valid POST: %d, routes %v", res.StatusCode, e.nums.routes)
	}
	_ = c2
}

func TestLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	fp := console.KeyFingerprint(primary)
	secret, err := console.IssueLink(ctx, e.db, fp, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := e.do("POST", "/console/link", url.Values{"token": {secret}}, nil, nil)
	c := sessionCookie(res)
	if res.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("first use: %d, cookie %v", res.StatusCode, c)
	}
	if res := e.do("GET", "/console/", nil, c, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("overview with the link's session: %d", res.StatusCode)
	}
	if res := e.do("POST", "/console/link", url.Values{"token": {secret}}, nil, nil); res.StatusCode != http.StatusUnauthorized || sessionCookie(res) != nil {
		t.Fatalf("second use: %d, want 401", res.StatusCode)
	}
	// Expired: issued 11 minutes ago with the default 10-minute lifetime.
	old, err := console.IssueLink(ctx, e.db, fp, 0, time.Now().Add(-11*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res := e.do("POST", "/console/link", url.Values{"token": {old}}, nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired link: %d, want 401", res.StatusCode)
	}
	// Issued under a key rotated since.
	stale, err := console.IssueLink(ctx, e.db, console.KeyFingerprint([]byte("an old key")), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := e.do("POST", "/console/link", url.Values{"token": {stale}}, nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("link of a rotated key: %d, want 401", res.StatusCode)
	}
	// Cross-origin posts of a (stolen) link are refused before it is spent.
	fresh, _ := console.IssueLink(ctx, e.db, fp, 0, time.Now())
	if res := e.do("POST", "/console/link", url.Values{"token": {fresh}}, nil, map[string]string{"Origin": "http://evil.example"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin link: %d, want 403", res.StatusCode)
	}
	if res := e.do("POST", "/console/link", url.Values{"token": {fresh}}, nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("link after a refused cross-origin try: %d, want 303", res.StatusCode)
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, token := e.signIn(b64(primary))
	if res := e.do("POST", "/console/signout", url.Values{}, c, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without CSRF token: %d, want 403", res.StatusCode)
	}
	res := e.do("POST", "/console/signout", url.Values{"csrf": {token}}, c, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
	cleared := false
	for _, ck := range res.Cookies() {
		cleared = cleared || (ck.Name == console.CookieName && ck.MaxAge < 0)
	}
	if !cleared {
		t.Error("sign-out did not clear the cookie")
	}
	// The old cookie, replayed, is dead server-side.
	if res := e.do("GET", "/console/", nil, c, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("replayed cookie after sign-out: %d, want 303", res.StatusCode)
	}
}

func TestSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.SessionTTL = time.Hour })
	c, _ := e.signIn(b64(secondary))
	later := time.Now().Add(time.Hour + time.Second)
	e.clock.Store(&later)
	if res := e.do("GET", "/console/", nil, c, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("expired session: %d, want 303", res.StatusCode)
	}
	now := time.Now()
	e.clock.Store(&now)
	c, _ = e.signIn(b64(secondary))
	e.keys.Store(&[2][]byte{primary, []byte("a rotated secondary key.........")})
	if res := e.do("GET", "/console/", nil, c, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("session of a rotated key: %d, want 303", res.StatusCode)
	}
}

func TestSignInRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.MaxFailures = 3 })
	for range 3 {
		e.do("POST", "/console/signin", url.Values{"key": {"wrong"}}, nil, nil)
	}
	res := e.do("POST", "/console/signin", url.Values{"key": {b64(primary)}}, nil, nil)
	if res.StatusCode != http.StatusTooManyRequests || sessionCookie(res) != nil {
		t.Fatalf("after 3 failures: %d, want 429 even with the right key", res.StatusCode)
	}
	res = e.do("POST", "/console/link", url.Values{"token": {"x"}}, nil, nil)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("link after 3 failures: %d, want 429", res.StatusCode)
	}
	later := time.Now().Add(console.DefaultFailureWindow + time.Second)
	e.clock.Store(&later)
	if res := e.do("POST", "/console/signin", url.Values{"key": {b64(primary)}}, nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d, want 303", res.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do("GET", "/console/signin", nil, nil, nil)
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q", res.Header.Get("Content-Security-Policy"))
	}
}
