package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, tc := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"/phone", "", "", http.StatusMovedPermanently},
		{"/phone/", "text/html", `<script src="phone.js">`, 200},
		{"/phone/index.html", "text/html", "jssip-3.13.8.min.js", 200},
		{"/phone/phone.js", "text/javascript", "authorization_jwt: 'Bearer ' + token", 200},
		{"/phone/phone.css", "text/css", ".pad", 200},
		{"/phone/jssip-3.13.8.min.js", "text/javascript", `version:"3.13.8"`, 200},
		{"/phone/config.json", "application/json", `"wsPath":"/sip/ws"`, 200},
		{"/phone/static/index.html", "", "", 404},
		{"/phone/../go.mod", "", "", 404},
		{"/other", "", "", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := get(t, h, tc.path)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if tc.status == http.StatusMovedPermanently && r.Header.Get("Location") != "/phone/" {
				t.Fatalf("Location %q", r.Header.Get("Location"))
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
			}
			if b := body(t, r); !strings.Contains(b, tc.contains) {
				t.Fatalf("body lacks %q", tc.contains)
			}
		})
	}
	if csp := get(t, h, "/phone/").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self' ws: wss:") {
		t.Fatalf("CSP %q", csp)
	}
	req := httptest.NewRequest(http.MethodPost, "/phone/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestPageConfig(t *testing.T) {
	t.Parallel()
	h := NewHandler(Config{Prefix: "/softphone/", WSPath: "/ws", TokenURL: "https://app.example/token", Domain: "sip.example"})
	var cfg map[string]string
	if err := json.Unmarshal([]byte(body(t, get(t, h, "/softphone/config.json"))), &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"wsPath": "/ws", "icePath": "/softphone/ice", "tokenURL": "https://app.example/token", "domain": "sip.example"}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if csp := get(t, h, "/softphone/").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "https://app.example/token") {
		t.Fatalf("CSP does not allow the token URL: %q", csp)
	}
}

type fakeVerifier map[string]identity.Claims

func (f fakeVerifier) Verify(_ context.Context, token string) (identity.Claims, error) {
	if token == "broken-store" {
		return identity.Claims{}, errors.New("database is down")
	}
	c, ok := f[token]
	if !ok {
		return identity.Claims{}, problem.Unauthorized("invalid token")
	}
	return c, nil
}

func TestICEHandler(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	v := fakeVerifier{
		"voip": {Identity: "8:acs:r_1", Scopes: []identity.Scope{identity.ScopeVoIP}},
		"chat": {Identity: "8:acs:r_2", Scopes: []identity.Scope{identity.ScopeChat}},
	}
	var gotUser string
	src := func(_ context.Context, user string) ([]ICEServer, time.Time, error) {
		gotUser = user
		return []ICEServer{{URLs: []string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"}, Username: "1:" + user, Credential: "pw"}}, exp, nil
	}
	h := ICEHandler(v, src, nil)
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"basic", "Basic dXNlcjpwdw==", 401},
		{"bad token", "Bearer nope", 401},
		{"chat scope", "Bearer chat", 403},
		{"store down", "Bearer broken-store", 500},
		{"ok", "Bearer voip", 200},
	} {
		r := get(t, h, "/phone/ice", "Authorization", tc.auth)
		if r.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, r.StatusCode, tc.status)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.name, r.Header.Get("Cache-Control"))
		}
		if tc.status != 200 {
			continue
		}
		var resp ICEResponse
		if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.ICEServers) != 1 || resp.ICEServers[0].Username != "1:8:acs:r_1" || resp.ExpiresOn == nil || !resp.ExpiresOn.Equal(exp) || gotUser != "8:acs:r_1" {
			t.Fatalf("response %+v (user %q)", resp, gotUser)
		}
	}
	// Without a source (no TURN configured) the page gets an empty list: host candidates only.
	r := get(t, ICEHandler(v, nil, nil), "/phone/ice", "Authorization", "Bearer voip")
	if b := body(t, r); r.StatusCode != 200 || !strings.Contains(b, `"iceServers":[]`) {
		t.Fatalf("no source: %d %s", r.StatusCode, b)
	}
}

// TestStatusHandler: the user's status needs its voip token like the ICE servers, names the
// user from the token (not from the request) and always carries a problems list.
func TestStatusHandler(t *testing.T) {
	t.Parallel()
	v := fakeVerifier{
		"voip": {Identity: "8:acs:r_1", Scopes: []identity.Scope{identity.ScopeVoIP}},
		"chat": {Identity: "8:acs:r_2", Scopes: []identity.Scope{identity.ScopeChat}},
	}
	src := func(_ context.Context, user string) (Status, error) {
		if user != "8:acs:r_1" {
			return Status{}, errors.New("wrong user")
		}
		return Status{Problems: []StatusProblem{{Code: "NoNumberAssigned", Message: "no phone number is assigned"}}}, nil
	}
	h := StatusHandler(v, src, nil)
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"bad token", "Bearer nope", 401},
		{"chat scope", "Bearer chat", 403},
		{"store down", "Bearer broken-store", 500},
		{"ok", "Bearer voip", 200},
	} {
		r := get(t, h, "/phone/status", "Authorization", tc.auth)
		if r.StatusCode != tc.status || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: status %d, Cache-Control %q; want %d", tc.name, r.StatusCode, r.Header.Get("Cache-Control"), tc.status)
		}
	}
	var st Status
	if err := json.NewDecoder(get(t, h, "/phone/status", "Authorization", "Bearer voip").Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Identity != "8:acs:r_1" || len(st.Problems) != 1 || st.Problems[0].Code != "NoNumberAssigned" {
		t.Fatalf("status %+v", st)
	}
	ok := StatusHandler(v, func(context.Context, string) (Status, error) { return Status{Number: "+14252000100"}, nil }, nil)
	if b := body(t, get(t, ok, "/phone/status", "Authorization", "Bearer voip")); !strings.Contains(b, `"problems":[]`) || !strings.Contains(b, `"number":"+14252000100"`) {
		t.Fatalf("no problems: %s", b)
	}
	if cfg := body(t, get(t, NewHandler(Config{}), "/phone/config.json")); !strings.Contains(cfg, `"statusPath":"/phone/status"`) {
		t.Fatalf("config.json lacks statusPath: %s", cfg)
	}
}
