package push

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FCMConfig configures the FCM HTTP v1 provider.
type FCMConfig struct {
	// ProjectID is the Firebase project.
	ProjectID string
	// ServiceAccountJSON is the service account key file's content (client_email, private_key,
	// token_uri).
	ServiceAccountJSON []byte
	// Endpoint is the FCM base URL. Default https://fcm.googleapis.com.
	Endpoint string
	// Client is the HTTP client. Default: 10s timeout.
	Client *http.Client
}

type serviceAccount struct {
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

// FCMProvider sends through Firebase Cloud Messaging's HTTP v1 API, authenticating with an
// OAuth 2.0 access token obtained by a service-account JWT grant (RFC 7523 §2.1).
type FCMProvider struct {
	cfg  FCMConfig
	sa   serviceAccount
	key  *rsa.PrivateKey
	mu   sync.Mutex
	tok  string
	exp  time.Time
	http *http.Client
}

// NewFCM parses the service account and returns the provider.
func NewFCM(cfg FCMConfig) (*FCMProvider, error) {
	p := &FCMProvider{cfg: cfg, http: cfg.Client}
	if p.http == nil {
		p.http = &http.Client{Timeout: 10 * time.Second}
	}
	if p.cfg.Endpoint == "" {
		p.cfg.Endpoint = "https://fcm.googleapis.com"
	}
	if err := json.Unmarshal(cfg.ServiceAccountJSON, &p.sa); err != nil {
		return nil, fmt.Errorf("fcm service account: %w", err)
	}
	if p.sa.TokenURI == "" {
		p.sa.TokenURI = "https://oauth2.googleapis.com/token"
	}
	blk, _ := pem.Decode([]byte(p.sa.PrivateKey))
	if blk == nil {
		return nil, errors.New("fcm service account: private_key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("fcm service account key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("fcm service account key: not RSA")
	}
	p.key = rk
	return p, nil
}

func (p *FCMProvider) accessToken(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tok != "" && time.Until(p.exp) > time.Minute {
		return p.tok, nil
	}
	now := time.Now()
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": p.sa.ClientEmail, "scope": "https://www.googleapis.com/auth/firebase.messaging",
		"aud": p.sa.TokenURI, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(p.key)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.sa.TokenURI, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("fcm token: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return "", fmt.Errorf("fcm token: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("fcm token: bad response: %v", err)
	}
	p.tok, p.exp = out.AccessToken, now.Add(time.Duration(out.ExpiresIn)*time.Second)
	return p.tok, nil
}

// Send implements Provider: a high-priority data message the app turns into a call UI.
func (p *FCMProvider) Send(ctx context.Context, token string, n Notification) error {
	at, err := p.accessToken(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"token":   token,
		"data":    map[string]string{"type": "incomingCall", "callId": n.CallID, "from": n.From, "to": n.To},
		"android": map[string]any{"priority": "high", "ttl": fmt.Sprintf("%ds", int(n.TTL.Seconds()))},
	}})
	u := p.cfg.Endpoint + "/v1/projects/" + url.PathEscape(p.cfg.ProjectID) + "/messages:send"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+at)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("fcm send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	// FCM v1 reports dead tokens as 404 NOT_FOUND with errorCode UNREGISTERED.
	if resp.StatusCode == http.StatusNotFound || bytes.Contains(b, []byte("UNREGISTERED")) {
		return ErrUnregistered
	}
	return fmt.Errorf("fcm send: %s: %s", resp.Status, b)
}
