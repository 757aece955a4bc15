package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsConfig configures the APNs provider (token-based authentication).
type APNsConfig struct {
	// TeamID and KeyID identify the signing key (.p8) in the Apple developer account.
	TeamID, KeyID string
	// KeyPEM is the .p8 file's content (PKCS#8 EC P-256).
	KeyPEM []byte
	// Topic is the app's bundle id; VoIP pushes go to Topic + ".voip".
	Topic string
	// Endpoint is the APNs base URL. Default https://api.push.apple.com.
	Endpoint string
	// Client is the HTTP client (APNs needs HTTP/2, which Go negotiates over TLS).
	Client *http.Client
}

// APNsProvider sends VoIP pushes (PushKit) through APNs' HTTP/2 provider API.
type APNsProvider struct {
	cfg  APNsConfig
	key  *ecdsa.PrivateKey
	http *http.Client
	mu   sync.Mutex
	jwt  string
	iat  time.Time
}

// NewAPNs parses the key and returns the provider.
func NewAPNs(cfg APNsConfig) (*APNsProvider, error) {
	p := &APNsProvider{cfg: cfg, http: cfg.Client}
	if p.http == nil {
		p.http = &http.Client{Timeout: 10 * time.Second}
	}
	if p.cfg.Endpoint == "" {
		p.cfg.Endpoint = "https://api.push.apple.com"
	}
	blk, _ := pem.Decode(cfg.KeyPEM)
	if blk == nil {
		return nil, errors.New("apns key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apns key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("apns key: not EC")
	}
	p.key = ek
	return p, nil
}

// providerToken returns the ES256 provider JWT, refreshed every 50 minutes (APNs rejects
// tokens older than an hour and refreshes more often than every 20 minutes).
func (p *APNsProvider) providerToken() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jwt != "" && time.Since(p.iat) < 50*time.Minute {
		return p.jwt, nil
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": p.cfg.TeamID, "iat": now.Unix()})
	t.Header["kid"] = p.cfg.KeyID
	s, err := t.SignedString(p.key)
	if err != nil {
		return "", err
	}
	p.jwt, p.iat = s, now
	return s, nil
}

// Send implements Provider.
func (p *APNsProvider) Send(ctx context.Context, token string, n Notification) error {
	pt, err := p.providerToken()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"aps": map[string]any{}, "type": "incomingCall",
		"callId": n.CallID, "from": n.From, "to": n.To})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.Endpoint+"/3/device/"+token, bytes.NewReader(body))
	req.Header.Set("authorization", "bearer "+pt)
	req.Header.Set("apns-topic", p.cfg.Topic+".voip")
	req.Header.Set("apns-push-type", "voip")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-expiration", strconv.FormatInt(time.Now().Add(n.TTL).Unix(), 10))
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("apns send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var reason struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(b, &reason)
	if resp.StatusCode == http.StatusGone || reason.Reason == "BadDeviceToken" || reason.Reason == "Unregistered" {
		return ErrUnregistered
	}
	return fmt.Errorf("apns send: %s: %s", resp.Status, reason.Reason)
}
