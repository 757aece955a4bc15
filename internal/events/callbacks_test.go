package events

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

var (
	testRSAOnce sync.Once
	testRSA     *rsa.PrivateKey
)

// testCallbacks signs with a test key; loopback callback URLs are allowed when loopback is set.
func testCallbacks(t *testing.T, jobs JobInserter, client *http.Client, loopback bool) *Callbacks {
	t.Helper()
	testRSAOnce.Do(func() {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	var g Guard
	if loopback {
		g.Allow, _ = ParseCIDRs([]string{"127.0.0.1"})
	}
	return NewCallbacks(CallbacksConfig{Jobs: jobs, Client: client, Guard: &g,
		Key:    func() SigningKey { return SigningKey{Key: testRSA, KeyID: "kid-1", Audience: "resource-1"} },
		Issuer: func() string { return "http://telgw.test" }})
}

// verifyCallbackToken checks a callback's Authorization header as an app would: RS256 by a
// key of set, issuer iss, audience aud, not expired. It returns the claims.
func verifyCallbackToken(t *testing.T, set JWKSet, authz, iss, aud string) *CallbackClaims {
	t.Helper()
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		t.Fatalf("Authorization %q is not a bearer token", authz)
	}
	var claims CallbackClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return set.PublicKey(kid)
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(iss), jwt.WithAudience(aud), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("callback token does not verify: %v", err)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != CallbackTokenLifetime {
		t.Fatalf("token lifetime %v, want %v", life, CallbackTokenLifetime)
	}
	return &claims
}

// TestCallbackDelivery: Send queues one job on the callbacks queue; working it POSTs the events
// in order, each as a one-element JSON array of a CloudEvent 1.0 (ACS's shape), with a bearer JWT that verifies against
// the served JWKS (after a JSON round trip), with aud the resource id and a 5-minute life.
func TestCallbackDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type got struct {
		authz, ctype string
		body         []byte
	}
	posts := make(chan got, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- got{r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b}
	}))
	t.Cleanup(srv.Close)
	tx := &optsTx{}
	c := testCallbacks(t, tx, srv.Client(), true)
	at := time.Date(2026, 12, 3, 8, 1, 2, 0, time.UTC)
	data := map[string]any{"callConnectionId": "cc-1", "serverCallId": "srv-1", "correlationId": "corr-1", "operationContext": "op"}
	if err := c.Send(ctx, srv.URL+"/cb?x=1", calls.CallbackEvent{ID: "ev-1", Type: "Microsoft.Communication.CallConnected",
		Subject: "calling/callConnections/cc-1", Time: at, Data: data},
		calls.CallbackEvent{Type: "Microsoft.Communication.ParticipantsUpdated", Subject: "calling/callConnections/cc-1", Data: data}); err != nil {
		t.Fatal(err)
	}
	if len(tx.jobs) != 1 || tx.opts[0].Queue != QueueCallbacks {
		t.Fatalf("queued %d jobs, opts %+v; want one on %q", len(tx.jobs), tx.opts, QueueCallbacks)
	}
	args := tx.jobs[0].(CallbackArgs)
	w := &callbackWorker{c: c}
	if err := w.Work(ctx, &river.Job[CallbackArgs]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: args}); err != nil {
		t.Fatal(err)
	}
	// Each event alone in an array, in order: parseCallAutomationEvent reads element 0 only.
	var evs []map[string]any
	var p got
	for range 2 {
		p = <-posts
		if !strings.HasPrefix(p.ctype, "application/json") {
			t.Errorf("Content-Type %q", p.ctype)
		}
		var one []map[string]any
		if err := json.Unmarshal(p.body, &one); err != nil || len(one) != 1 {
			t.Fatalf("body %s: %v", p.body, err)
		}
		evs = append(evs, one[0])
	}
	want := map[string]any{"id": "ev-1", "source": "calling/callConnections/cc-1", "type": "Microsoft.Communication.CallConnected",
		"subject": "calling/callConnections/cc-1", "time": "2026-12-03T08:01:02Z", "specversion": "1.0",
		"datacontenttype": "application/json", "data": data}
	if !reflect.DeepEqual(evs[0], want) {
		t.Fatalf("event\n got %v\nwant %v", evs[0], want)
	}
	if id, _ := evs[1]["id"].(string); id == "" || evs[1]["time"] == nil {
		t.Fatalf("second event lacks id or time: %v", evs[1])
	}
	var set JWKSet
	b, _ := json.Marshal(c.JWKS())
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	claims := verifyCallbackToken(t, set, p.authz, "http://telgw.test", "resource-1")
	if time.Until(claims.ExpiresAt.Time) > CallbackTokenLifetime || claims.ID == "" {
		t.Fatalf("claims %+v", claims)
	}
	if oc := c.OpenIDConfiguration(); oc.Issuer != "http://telgw.test" || oc.JWKSURI != "http://telgw.test/calling/keys" ||
		!reflect.DeepEqual(oc.IDTokenSigningAlgValuesSupported, []string{"RS256"}) {
		t.Fatalf("openid configuration %+v", oc)
	}
}

// TestCallbackReceiverDown: a dead callback URL fails the attempt at once (retried later,
// with a backoff doubling to MaxBackoff); Send itself never dials.
func TestCallbackReceiverDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dead := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	dead.Close()
	tx := &optsTx{}
	c := testCallbacks(t, tx, dead.Client(), true)
	start := time.Now()
	if err := c.Send(ctx, dead.URL, calls.CallbackEvent{Type: "Microsoft.Communication.CallDisconnected", Subject: "calling/callConnections/x"}); err != nil {
		t.Fatal(err)
	}
	w := &callbackWorker{c: c}
	job := &river.Job[CallbackArgs]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: tx.jobs[0].(CallbackArgs)}
	err := w.Work(ctx, job)
	var cancel *river.JobCancelError
	if err == nil || errors.As(err, &cancel) {
		t.Fatalf("dead URL: Work = %v, want an error to retry", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a dead URL took %v", d)
	}
	var prev time.Duration
	for attempt := 1; attempt <= 12; attempt++ {
		job.Attempt = attempt
		wait := time.Until(w.NextRetry(job)).Round(time.Second)
		if wait < prev || wait > 30*time.Second {
			t.Fatalf("attempt %d waits %v after %v", attempt, wait, prev)
		}
		prev = wait
	}
	if prev != 30*time.Second {
		t.Fatalf("backoff tops out at %v, want 30s", prev)
	}
}

// TestCallbackSendRefuses: not http(s), or an internal literal under the default policy:
// refused at Send naming callbackUri, nothing queued.
func TestCallbackSendRefuses(t *testing.T) {
	t.Parallel()
	tx := &optsTx{}
	c := testCallbacks(t, tx, nil, false)
	for _, u := range []string{"ftp://example.com/", "http://169.254.169.254/latest", "http://127.0.0.1:9/cb", "cb"} {
		err := c.Send(context.Background(), u, calls.CallbackEvent{Type: "t"})
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Target != "callbackUri" {
			t.Errorf("Send(%q) = %v, want invalid callbackUri", u, err)
		}
	}
	if len(tx.jobs) != 0 {
		t.Fatalf("queued %d jobs", len(tx.jobs))
	}
}
