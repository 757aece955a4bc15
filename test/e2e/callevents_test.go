package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/store"
)

// hookReceiver is an app's Event Grid endpoint on 127.0.0.1; answer says whether it answers
// the validation handshake.
type hookReceiver struct {
	URL    string
	mu     sync.Mutex
	bodies [][]byte
	header []http.Header
}

func newHookReceiver(t *testing.T, answer bool) *hookReceiver {
	t.Helper()
	r := &hookReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies, r.header = append(r.bodies, body), append(r.header, req.Header.Clone())
		r.mu.Unlock()
		if answer {
			events.AnswerValidation(w, body)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.URL = "http://" + ln.Addr().String() + "/api/events"
	return r
}

// TestWebhookValidationHandshake: POST /telgw/webhooks on a real node runs Event Grid's
// handshake with the endpoint: one that answers is created (201), one that does not (or is
// down) is refused with an ACS 400 naming url and is not stored.
func TestWebhookValidationHandshake(t *testing.T) {
	t.Parallel()
	tg := StartTelgw(t, Options{Env: []string{"TELGW_WEBHOOKS_ALLOW_PRIVATE=true"}})
	c := NewClient(t, tg.ConnString)

	good := newHookReceiver(t, true)
	r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": good.URL, "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}})
	if r.Status != http.StatusCreated {
		t.Fatalf("answering endpoint: %d %s", r.Status, r.Body)
	}
	good.mu.Lock()
	if len(good.bodies) != 1 || good.header[0].Get("aeg-event-type") != "SubscriptionValidation" ||
		!strings.Contains(string(good.bodies[0]), events.TypeSubscriptionValidation) {
		t.Errorf("handshake requests %q", good.bodies)
	}
	good.mu.Unlock()

	silent := newHookReceiver(t, false)
	r = c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": silent.URL, "secret": "s"})
	if r.Status != http.StatusBadRequest {
		t.Fatalf("silent endpoint: %d %s, want 400", r.Status, r.Body)
	}
	if code, target, msg := r.ErrorCode(t); code != "BadRequest" || target != "url" || !strings.Contains(msg, "validation") {
		t.Fatalf("silent endpoint error %s %s %q", code, target, msg)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	downURL := "http://" + ln.Addr().String() + "/hook"
	_ = ln.Close()
	if r = c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": downURL}); r.Status != http.StatusBadRequest {
		t.Fatalf("endpoint down: %d %s, want 400", r.Status, r.Body)
	}

	var list struct {
		Value []events.Subscription `json:"value"`
	}
	c.Do(t, "GET", "/telgw/webhooks", nil).JSON(t, &list)
	if len(list.Value) != 1 || list.Value[0].URL != good.URL {
		t.Fatalf("stored subscriptions %+v, want only the validated one", list.Value)
	}
}

// getJSON fetches url without any authentication into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %s: %v", url, body, err)
	}
}

// TestCallbackOpenIDConfiguration: a real node serves, unauthenticated, the OpenID
// configuration at {endpoint}calling/.well-known/acsopenidconfiguration and the JWKS it
// names; a callback JWT signed with the key in the store (what any node of the deployment
// signs with) verifies against that JWKS with iss the endpoint, aud the resource id and a
// 5-minute life. On PostgreSQL a second node on the same database serves the same key.
func TestCallbackOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := Options{}
			if pg {
				o.DatabaseURL = PostgresURL(t)
			}
			tg := StartTelgw(t, o)
			var oc events.OpenIDConfiguration
			getJSON(t, tg.Endpoint+"calling/.well-known/acsopenidconfiguration", &oc)
			issuer := strings.TrimSuffix(tg.Endpoint, "/")
			if oc.Issuer != issuer || oc.JWKSURI != tg.Endpoint+"calling/keys" ||
				!reflect.DeepEqual(oc.IDTokenSigningAlgValuesSupported, []string{"RS256"}) {
				t.Fatalf("openid configuration %+v (endpoint %s)", oc, tg.Endpoint)
			}
			var set events.JWKSet
			getJSON(t, oc.JWKSURI, &set)
			if len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Alg != "RS256" || set.Keys[0].Use != "sig" {
				t.Fatalf("jwks %+v", set)
			}

			ctx := context.Background()
			db, err := store.Open(ctx, store.Options{URL: o.DatabaseURL, DataDir: tg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ring, err := keys.NewRing(ctx, db, "", "")
			if err != nil {
				t.Fatal(err)
			}
			k := ring.Current()
			cb := events.NewCallbacks(events.CallbacksConfig{Jobs: db, Issuer: func() string { return oc.Issuer },
				Key: func() events.SigningKey {
					return events.SigningKey{Key: k.CallbackKey, KeyID: k.CallbackKeyID, Audience: k.ResourceID}
				}})
			raw, err := cb.Token(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var claims events.CallbackClaims
			if _, err := jwt.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
				kid, _ := tok.Header["kid"].(string)
				return set.PublicKey(kid)
			}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithAudience(k.ResourceID),
				jwt.WithExpirationRequired()); err != nil {
				t.Fatalf("a callback JWT does not verify against the node's JWKS: %v", err)
			}
			if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != 5*time.Minute {
				t.Fatalf("token lifetime %v", life)
			}
			if !pg {
				return
			}
			other := StartTelgw(t, Options{DatabaseURL: o.DatabaseURL})
			var set2 events.JWKSet
			getJSON(t, other.Endpoint+"calling/keys", &set2)
			if !reflect.DeepEqual(set, set2) {
				t.Fatalf("two nodes on one database serve different keys:\n%+v\n%+v", set, set2)
			}
		})
	}
}
