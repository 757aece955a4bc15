package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBadInput checks that malformed requests get ACS-shaped 4xx errors naming the problem,
// write nothing, and leave the server serving.
func TestBadInput(t *testing.T) {
	tg := StartTelgw(t, Options{})
	c := NewClient(t, tg.ConnString)
	cases := []struct {
		name, method, path string
		body               any
		mutate             func(*http.Request)
		status             int
		code, target       string
	}{
		{name: "malformed json", method: "POST", path: "/identities?api-version=2023-10-01", body: `{"createTokenWithScopes":[`, status: 400, code: "InvalidRequestBody", target: "body"},
		{name: "wrong type", method: "POST", path: "/identities?api-version=2023-10-01", body: `{"createTokenWithScopes":"voip"}`, status: 400, target: "createTokenWithScopes"},
		{name: "wrong type expiry", method: "POST", path: "/identities?api-version=2023-10-01", body: `{"expiresInMinutes":"soon"}`, status: 400, target: "expiresInMinutes"},
		{name: "bad scope", method: "POST", path: "/identities?api-version=2023-10-01", body: `{"createTokenWithScopes":["voip","x"]}`, status: 400, target: "createTokenWithScopes[1]"},
		{name: "missing scopes", method: "POST", path: "/identities/8%3Aacs%3Ax_y/:issueAccessToken?api-version=2023-10-01", body: `{}`, status: 400, target: "scopes"},
		{name: "unknown api-version", method: "POST", path: "/identities?api-version=2099-01-01", body: `{}`, status: 400, code: "UnsupportedApiVersion", target: "api-version"},
		{name: "missing api-version", method: "POST", path: "/identities", body: `{}`, status: 400, code: "MissingApiVersionParameter", target: "api-version"},
		{name: "oversized body", method: "POST", path: "/identities?api-version=2023-10-01", body: `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, status: 413, code: "RequestEntityTooLarge"},
		{name: "no auth", method: "POST", path: "/identities?api-version=2023-10-01", body: `{}`, status: 401, code: "Denied",
			mutate: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "stale date", method: "POST", path: "/identities?api-version=2023-10-01", body: `{}`, status: 401,
			mutate: func(r *http.Request) {
				r.Header.Set("x-ms-date", time.Now().Add(-20*time.Minute).UTC().Format(http.TimeFormat))
			}},
		{name: "forged signature", method: "POST", path: "/identities?api-version=2023-10-01", body: `{}`, status: 401,
			mutate: func(r *http.Request) {
				r.Header.Set("Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=O1QaEQWrNL6WWV/spNsJzroEbbJNlBYZUe69B9M6Q7k=")
			}},
		{name: "unknown identity", method: "DELETE", path: "/identities/8%3Aacs%3Anope?api-version=2023-10-01", status: 404, code: "IdentityNotFound", target: "id"},
		{name: "teams exchange", method: "POST", path: "/teamsUser/:exchangeAccessToken?api-version=2023-10-01", body: `{"token":"a","appId":"b","userId":"c"}`, status: 501, code: "NotSupported"},
		{name: "unknown route", method: "GET", path: "/nothing-here", status: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mut []func(*http.Request)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			r := c.Do(t, tc.method, tc.path, tc.body, mut...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			code, target, _ := r.ErrorCode(t)
			if tc.code != "" && code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			if tc.target != "" && target != tc.target {
				t.Errorf("target %q, want %q", target, tc.target)
			}
		})
	}
	// Still serving, and nothing was created by the failed requests: a fresh identity works.
	r := c.Do(t, "POST", "/identities?api-version=2023-10-01", `{"createTokenWithScopes":["voip"]}`)
	if r.Status != 201 {
		t.Fatalf("server unhealthy after bad input: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(strings.TrimSuffix(tg.Endpoint, "/") + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
}

// TestKeysRotateAndRestart checks that keys persist across restarts and rotate from the CLI
// while the server runs (the secondary key keeps working).
func TestKeysPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	tg := StartTelgw(t, Options{DataDir: dir})
	first := tg.ConnString
	tg.Stop(t)
	tg2 := StartTelgw(t, Options{DataDir: dir})
	if got := tg2.ConnString; strings.SplitN(got, ";", 2)[1] != strings.SplitN(first, ";", 2)[1] {
		t.Fatalf("access key changed across restart: %q vs %q", first, got)
	}
	c := NewClient(t, tg2.ConnString)
	if r := c.Do(t, "POST", "/identities?api-version=2023-10-01", nil); r.Status != 201 {
		t.Fatalf("after restart: %d %s", r.Status, r.Body)
	}
}

// TestKeysRotateWhileRunning rotates the primary key with the CLI against the running server's
// store: the old key stops working once the node reloads, the secondary keeps working.
func TestKeysRotateWhileRunning(t *testing.T) {
	dir := t.TempDir()
	tg := StartTelgw(t, Options{DataDir: dir, Env: []string{"TELGW_KEY_REFRESH=200ms"}})
	oldPrimary := NewClient(t, tg.ConnString)
	cmd := exec.Command(telgwBin, "keys", "show")
	cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+dir)
	shown, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("keys show: %v\n%s", err, shown)
	}
	var secondaryConn string
	for _, line := range strings.Split(string(shown), "\n") {
		if strings.HasPrefix(line, "secondary connection string:") {
			secondaryConn = strings.TrimSpace(strings.TrimPrefix(line, "secondary connection string:"))
		}
	}
	cmd = exec.Command(telgwBin, "keys", "rotate", "primary")
	cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for oldPrimary.Do(t, "POST", "/identities?api-version=2023-10-01", nil).Status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("old primary key still accepted 10s after rotation")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sec := NewClient(t, strings.Replace(secondaryConn, "http://127.0.0.1:8080/", tg.Endpoint, 1))
	if r := sec.Do(t, "POST", "/identities?api-version=2023-10-01", nil); r.Status != http.StatusCreated {
		t.Fatalf("secondary key after primary rotation: %d %s", r.Status, r.Body)
	}
}
