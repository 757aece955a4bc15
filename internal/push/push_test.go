package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/telgw/telgw/internal/problem"
)

type memStore struct {
	mu   sync.Mutex
	devs map[string]Device // platform/token → device
}

func (m *memStore) PushDeviceUpsert(_ context.Context, d Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devs[string(d.Platform)+"/"+d.Token] = d
	return nil
}

func (m *memStore) PushDeviceDelete(_ context.Context, id string, p Platform, tok string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := string(p) + "/" + tok
	if d, ok := m.devs[k]; !ok || d.Identity != id {
		return problem.ErrNotFound
	}
	delete(m.devs, k)
	return nil
}

func (m *memStore) PushDevicesFor(_ context.Context, id string) ([]Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Device
	for _, d := range m.devs {
		if d.Identity == id {
			out = append(out, d)
		}
	}
	return out, nil
}

// fcmStandIn plays Google's OAuth token endpoint and the FCM v1 send endpoint.
func fcmStandIn(t *testing.T, pub *rsa.PublicKey, got *[]map[string]any, mu *sync.Mutex) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			http.Error(w, "grant", http.StatusBadRequest)
			return
		}
		if _, err := jwt.Parse(r.Form.Get("assertion"), func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
			http.Error(w, "assertion", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "ya29.test", "expires_in": 3600})
	})
	mux.HandleFunc("POST /v1/projects/proj/messages:send", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ya29.test" {
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		msg := m["message"].(map[string]any)
		if msg["token"] == "dead" {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"status":"NOT_FOUND","details":[{"errorCode":"UNREGISTERED"}]}}`)
			return
		}
		mu.Lock()
		*got = append(*got, msg)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"name":"projects/proj/messages/1"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestNotifyFCMAndAPNs(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var fcmGot []map[string]any
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(rk)
	fsrv := fcmStandIn(t, &rk.PublicKey, &fcmGot, &mu)
	sa, _ := json.Marshal(map[string]string{"client_email": "svc@proj.iam", "token_uri": fsrv.URL + "/token",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	fcm, err := NewFCM(FCMConfig{ProjectID: "proj", ServiceAccountJSON: sa, Endpoint: fsrv.URL})
	if err != nil {
		t.Fatal(err)
	}

	// APNs stand-in over HTTP/2 + TLS, as Apple requires.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eder, _ := x509.MarshalPKCS8PrivateKey(ek)
	var apnsGot []http.Header
	asrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "http/2 required", http.StatusHTTPVersionNotSupported)
			return
		}
		tok := strings.TrimPrefix(r.Header.Get("authorization"), "bearer ")
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &ek.PublicKey, nil }); err != nil {
			w.WriteHeader(403)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(410)
			_, _ = io.WriteString(w, `{"reason":"Unregistered"}`)
			return
		}
		mu.Lock()
		apnsGot = append(apnsGot, r.Header.Clone())
		mu.Unlock()
	}))
	asrv.EnableHTTP2 = true
	asrv.StartTLS()
	t.Cleanup(asrv.Close)
	apns, err := NewAPNs(APNsConfig{TeamID: "TEAM", KeyID: "KID", Topic: "com.example.phone",
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: eder}), Endpoint: asrv.URL, Client: asrv.Client()})
	if err != nil {
		t.Fatal(err)
	}

	st := &memStore{devs: map[string]Device{}}
	svc := New(st, map[Platform]Provider{FCM: fcm, APNs: apns}, slog.New(slog.DiscardHandler), nil)
	for _, d := range []struct {
		p   Platform
		tok string
	}{{FCM, "android-1"}, {FCM, "dead"}, {APNs, "ios-1"}, {APNs, "gone"}} {
		if err := svc.Register(ctx, "8:acs:u", d.p, d.tok); err != nil {
			t.Fatal(err)
		}
	}
	n, err := svc.Notify(ctx, "8:acs:u", Notification{CallID: "c1", From: "+14155550123", To: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("delivered to %d devices, want 2", n)
	}
	if len(fcmGot) != 1 || fcmGot[0]["data"].(map[string]any)["callId"] != "c1" {
		t.Fatalf("fcm got %v", fcmGot)
	}
	if len(apnsGot) != 1 || apnsGot[0].Get("apns-push-type") != "voip" || apnsGot[0].Get("apns-topic") != "com.example.phone.voip" {
		t.Fatalf("apns got %v", apnsGot)
	}
	devs, _ := svc.Devices(ctx, "8:acs:u")
	if len(devs) != 2 {
		t.Fatalf("dead tokens not removed: %v", devs)
	}
	if _, err := ParsePlatform("blackberry"); problem.KindOf(err) != problem.KindInvalid {
		t.Fatal("bad platform accepted")
	}
	if err := svc.Unregister(ctx, "8:acs:other", FCM, "android-1"); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("another identity removed a token: %v", err)
	}
}
