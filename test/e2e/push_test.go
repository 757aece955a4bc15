package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// TestPushDeviceRegistration registers device tokens with a user access token, on both stores.
func TestPushDeviceRegistration(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			tg := StartTelgw(t, Options{Postgres: pg})
			c := NewClient(t, tg.ConnString)
			newUser := func(scope string) (string, string) {
				r := c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{scope}})
				var out struct {
					Identity    struct{ ID string }
					AccessToken struct{ Token string }
				}
				r.JSON(t, &out)
				return out.Identity.ID, out.AccessToken.Token
			}
			user := func(method, path, token string, body any) (int, []byte) {
				var rd io.Reader
				if body != nil {
					b, _ := json.Marshal(body)
					rd = bytes.NewReader(b)
				}
				req, _ := http.NewRequest(method, tg.Endpoint+path[1:], rd)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b
			}
			id, tok := newUser("voip")
			if s, b := user("POST", "/telgw/push/devices", tok, map[string]string{"platform": "fcm", "token": "dev-1"}); s != 201 {
				t.Fatalf("register: %d %s", s, b)
			}
			if s, b := user("POST", "/telgw/push/devices", tok, map[string]string{"platform": "pager", "token": "x"}); s != 400 {
				t.Fatalf("bad platform: %d %s", s, b)
			}
			if s, b := user("GET", "/telgw/push/devices", tok, nil); s != 200 || !bytes.Contains(b, []byte("dev-1")) {
				t.Fatalf("list: %d %s", s, b)
			}
			if s, _ := user("GET", "/telgw/push/devices", "", nil); s != 401 {
				t.Fatalf("no token: %d", s)
			}
			_, chatTok := newUser("chat")
			if s, _ := user("GET", "/telgw/push/devices", chatTok, nil); s != 403 {
				t.Fatalf("chat-scoped token: %d, want 403", s)
			}
			if s, b := user("DELETE", "/telgw/push/devices/fcm/dev-1", tok, nil); s != 204 {
				t.Fatalf("delete: %d %s", s, b)
			}
			if s, _ := user("DELETE", "/telgw/push/devices/fcm/dev-1", tok, nil); s != 404 {
				t.Fatalf("second delete: %d", s)
			}
			// Revocation and deletion end the token's use here too.
			c.Do(t, "POST", "/identities/"+id+"/:revokeAccessTokens?api-version=2023-10-01", nil)
			if s, _ := user("GET", "/telgw/push/devices", tok, nil); s != 401 {
				t.Fatalf("revoked token: %d, want 401", s)
			}
		})
	}
}
