package events

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

// CallbackTokenLifetime is the lifetime of a callback's Authorization JWT, as ACS's.
const CallbackTokenLifetime = 5 * time.Minute

// SigningKey is what signs callback JWTs: the RSA key and its kid, and the audience the
// tokens name (the ACS resource id).
type SigningKey struct {
	Key      *rsa.PrivateKey
	KeyID    string
	Audience string
}

// CallbacksConfig configures Callbacks.
type CallbacksConfig struct {
	// Jobs enqueues deliveries outside any transaction (internal/store's *DB; required).
	Jobs JobInserter
	// Key returns the signing key in force (required; keys are shared by the nodes and may be
	// reloaded).
	Key func() SigningKey
	// Issuer returns the tokens' iss: telgw's endpoint without its trailing slash, the issuer
	// of the OpenID configuration served at {endpoint}calling/.well-known/acsopenidconfiguration
	// (required).
	Issuer func() string
	// Guard keeps callback URLs off internal addresses at Send and at dial time. Nil refuses
	// internal addresses.
	Guard *Guard
	// Client posts callbacks. Default: Guard.Client with a 5s timeout (a slow app holds a
	// worker no longer). A Client given here bypasses the dial-time check (tests only).
	Client *http.Client
	// Logger receives delivery failures. Default discards.
	Logger *slog.Logger
	// MaxAttempts bounds deliveries of one batch. Default 10 (with MaxBackoff 30s: about
	// three minutes of retries; mid-call events are stale after that).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts, which doubles from 1s. Default 30s.
	MaxBackoff time.Duration
	// Registerer receives the delivery metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Callbacks delivers mid-call events to apps' callbackUri as CloudEvents 1.0 JSON arrays,
// each POST carrying Authorization: Bearer with an RS256 JWT (aud the resource id, iss
// telgw's endpoint, 5 minutes), queued durably on QueueCallbacks and retried with backoff. It
// implements calls.Callbacks.
type Callbacks struct {
	cfg        CallbacksConfig
	log        *slog.Logger
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
}

var _ calls.Callbacks = (*Callbacks)(nil)

// NewCallbacks builds Callbacks; call Register to work its jobs.
func NewCallbacks(cfg CallbacksConfig) *Callbacks {
	if cfg.Guard == nil {
		cfg.Guard = &Guard{}
	}
	if cfg.Client == nil {
		cfg.Client = cfg.Guard.Client(5 * time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	c := &Callbacks{cfg: cfg, log: cfg.Logger,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_callback_deliveries_total",
			Help: "Call Automation callback delivery attempts by result: ok, retry, blocked (internal address refused)."}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telgw_callback_delivery_seconds",
			Help: "Call Automation callback POST latency.", Buckets: prometheus.DefBuckets}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.deliveries, c.latency)
	}
	return c
}

// Register adds the callback worker to workers.
func (c *Callbacks) Register(workers *river.Workers) {
	river.AddWorker(workers, &callbackWorker{c: c})
}

// CloudEvent is a CloudEvents 1.0 event in JSON (structured mode), the shape of ACS's
// mid-call events that the SDKs' parseCallAutomationEvent reads.
type CloudEvent struct {
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	SpecVersion     string          `json:"specversion"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// CloudEvents renders evs as ACS sends them: source and subject are the event's subject
// ("calling/callConnections/{id}"), an empty ID gets a fresh one.
func CloudEvents(evs ...calls.CallbackEvent) ([]CloudEvent, error) {
	out := make([]CloudEvent, 0, len(evs))
	for _, ev := range evs {
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return nil, fmt.Errorf("callback %s data: %w", ev.Type, err)
		}
		id, at := ev.ID, ev.Time
		if id == "" {
			id = uuid.NewString()
		}
		if at.IsZero() {
			at = time.Now()
		}
		out = append(out, CloudEvent{ID: id, Source: ev.Subject, Type: ev.Type, Subject: ev.Subject, Time: at.UTC(),
			SpecVersion: "1.0", DataContentType: "application/json", Data: data})
	}
	return out, nil
}

// CallbackArgs is the River job of one batch of mid-call events for one callback URL.
type CallbackArgs struct {
	// URL is the app's callbackUri.
	URL string `json:"url"`
	// Events is the JSON array of CloudEvents, as posted.
	Events json.RawMessage `json:"events"`
}

// Kind implements river.JobArgs.
func (CallbackArgs) Kind() string { return "telgw.callback" }

// CheckURI validates a callbackUri when an app hands it over (answerCall, createCall): http
// or https, no credentials, no internal address unless the webhook address policy allows
// it (resolving the host now). Errors are problem.Invalid naming field.
func (c *Callbacks) CheckURI(ctx context.Context, field, uri string) error {
	return c.cfg.Guard.CheckURL(ctx, field, uri)
}

// Send queues evs for callbackURI as one delivery and returns; nothing is dialled here. A
// URL that is not http(s) or names an internal address literally is refused
// (problem.Invalid "callbackUri"); names are checked when dialled.
func (c *Callbacks) Send(ctx context.Context, callbackURI string, evs ...calls.CallbackEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if err := c.cfg.Guard.checkURL(ctx, "callbackUri", callbackURI, false); err != nil {
		return err
	}
	ces, err := CloudEvents(evs...)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ces)
	if err != nil {
		return err
	}
	if err := c.cfg.Jobs.InsertJob(ctx, CallbackArgs{URL: callbackURI, Events: body},
		&river.InsertOpts{Queue: QueueCallbacks, MaxAttempts: c.cfg.MaxAttempts}); err != nil {
		return fmt.Errorf("enqueue callback: %w", err)
	}
	return nil
}

// CallbackClaims are the claims of a callback's JWT.
type CallbackClaims = jwt.RegisteredClaims

// Token signs a callback JWT valid from now for CallbackTokenLifetime.
func (c *Callbacks) Token(now time.Time) (string, error) {
	k := c.cfg.Key()
	if k.Key == nil {
		return "", errors.New("no callback signing key")
	}
	claims := CallbackClaims{
		Issuer:    c.cfg.Issuer(),
		Audience:  jwt.ClaimStrings{k.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(CallbackTokenLifetime)),
		ID:        uuid.NewString(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.KeyID
	return t.SignedString(k.Key)
}

// Deliver posts a batch (a JSON array of CloudEvents) to url in order, each event alone in a
// one-element array as ACS posts them (the SDKs' parseCallAutomationEvent reads only an
// array's first element), each request with a fresh JWT. A 2xx is success; anything else,
// or no answer, is an error, and a retry starts the batch again (at-least-once: events keep
// their ids, so an app can drop repeats).
func (c *Callbacks) Deliver(ctx context.Context, url string, batch []byte) error {
	var evs []json.RawMessage
	if err := json.Unmarshal(batch, &evs); err != nil {
		return fmt.Errorf("callback batch: %w", err)
	}
	for i, ev := range evs {
		body := make([]byte, 0, len(ev)+2)
		body = append(append(append(body, '['), ev...), ']')
		if err := c.post(ctx, url, body); err != nil {
			if len(evs) > 1 {
				return fmt.Errorf("event %d of %d: %w", i+1, len(evs), err)
			}
			return err
		}
	}
	return nil
}

// post sends one request of a delivery.
func (c *Callbacks) post(ctx context.Context, url string, body []byte) error {
	tok, err := c.Token(time.Now())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "telgw-callbacks")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fmt.Errorf("callback answered %s to %q (redirects are not followed)", resp.Status, resp.Header.Get("Location"))
	}
	return fmt.Errorf("callback answered %s", resp.Status)
}

type callbackWorker struct {
	river.WorkerDefaults[CallbackArgs]
	c *Callbacks
}

// NextRetry doubles the wait from 1s up to MaxBackoff.
func (w *callbackWorker) NextRetry(job *river.Job[CallbackArgs]) time.Time {
	return time.Now().Add(min(time.Second<<min(job.Attempt-1, 20), w.c.cfg.MaxBackoff))
}

// Timeout bounds one attempt a little past the client's own timeout.
func (w *callbackWorker) Timeout(*river.Job[CallbackArgs]) time.Duration {
	return w.c.cfg.Client.Timeout + 5*time.Second
}

// Work delivers one batch; an address the guard refuses is not retried.
func (w *callbackWorker) Work(ctx context.Context, job *river.Job[CallbackArgs]) error {
	c := w.c
	start := time.Now()
	err := c.Deliver(ctx, job.Args.URL, job.Args.Events)
	c.latency.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		c.deliveries.WithLabelValues("ok").Inc()
		return nil
	case errors.Is(err, ErrBlockedAddress):
		c.deliveries.WithLabelValues("blocked").Inc()
		c.log.Warn("callback URL refused by the webhook address policy; dropping", "url", job.Args.URL, "err", err)
		return river.JobCancel(err)
	}
	c.deliveries.WithLabelValues("retry").Inc()
	c.log.Warn("callback delivery failed; will retry", "url", job.Args.URL, "attempt", job.Attempt, "err", err)
	return err
}

// OpenIDConfiguration is the document at {endpoint}calling/.well-known/acsopenidconfiguration
// that apps read to verify callback JWTs, as ACS serves it.
type OpenIDConfiguration struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

// OpenIDConfiguration returns the document for the current issuer; the keys are at
// {issuer}/calling/keys, as ACS's.
func (c *Callbacks) OpenIDConfiguration() OpenIDConfiguration {
	iss := c.cfg.Issuer()
	return OpenIDConfiguration{Issuer: iss, JWKSURI: strings.TrimSuffix(iss, "/") + "/calling/keys",
		ResponseTypesSupported: []string{"id_token"}, SubjectTypesSupported: []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{"RS256"}}
}

// JWK is one RSA public key in a JWKS (RFC 7517 §4, RFC 7518 §6.3.1).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKSet is a JSON Web Key Set (RFC 7517 §5).
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public key that signs callbacks now.
func (c *Callbacks) JWKS() JWKSet {
	k := c.cfg.Key()
	if k.Key == nil {
		return JWKSet{Keys: []JWK{}}
	}
	pub := k.Key.PublicKey
	return JWKSet{Keys: []JWK{{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.KeyID,
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}}}
}

// PublicKey returns the RSA key of kid in set, for verifiers (telgw's tests, Go apps).
func (set JWKSet) PublicKey(kid string) (*rsa.PublicKey, error) {
	for _, k := range set.Keys {
		if k.Kid != kid || k.Kty != "RSA" {
			continue
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil {
			return nil, fmt.Errorf("jwk %s n: %w", kid, err)
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil {
			return nil, fmt.Errorf("jwk %s e: %w", kid, err)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, problem.NotFound("kid", "no RSA key %q in the key set", kid)
}
