package api

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// vector is a request captured from the official npm @azure/communication-identity 1.3.1
// (CommunicationIdentityClient.createUser) signing with the key below.
var vector = struct {
	key, method, uri, host, date, hash, auth string
}{
	key:    "dGVsZ3ctdGVzdC12ZWN0b3Ita2V5LTAxMjM0NTY3ODk=",
	method: "POST",
	uri:    "/identities?api-version=2023-10-01",
	host:   "127.0.0.1:18999",
	date:   "Sat, 28 Nov 2026 06:10:38 GMT",
	hash:   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	auth:   "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=O1QaEQWrNL6WWV/spNsJzroEbbJNlBYZUe69B9M6Q7k=",
}

func vectorVerifier(t testing.TB, extra ...[]byte) *Verifier {
	k, err := base64.StdEncoding.DecodeString(vector.key)
	if err != nil {
		t.Fatal(err)
	}
	vt, _ := http.ParseTime(vector.date)
	return &Verifier{
		Keys: func() [][]byte { return append(extra, k) },
		Skew: 15 * time.Minute,
		Now:  func() time.Time { return vt.Add(time.Minute) },
	}
}

func vectorHeader() http.Header {
	h := http.Header{}
	h.Set("x-ms-date", vector.date)
	h.Set("x-ms-content-sha256", vector.hash)
	h.Set("Authorization", vector.auth)
	return h
}

func TestVerifySDKVector(t *testing.T) {
	t.Parallel()
	v := vectorVerifier(t)
	if err := v.Verify(vector.method, vector.uri, vector.host, vectorHeader(), nil); err != nil {
		t.Fatalf("SDK vector rejected: %v", err)
	}
	// The secondary key position must work too.
	v2 := vectorVerifier(t, []byte("some-other-primary-key-000000000"))
	if err := v2.Verify(vector.method, vector.uri, vector.host, vectorHeader(), nil); err != nil {
		t.Fatalf("vector with key in second position rejected: %v", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	vt, _ := http.ParseTime(vector.date)
	cases := []struct {
		name              string
		method, uri, host string
		body              []byte
		mutate            func(h http.Header)
		now               time.Time
		wrongKey          bool
	}{
		{name: "method", method: "PUT"},
		{name: "path", uri: "/identities/x?api-version=2023-10-01"},
		{name: "query", uri: "/identities?api-version=2022-06-01"},
		{name: "host", host: "127.0.0.2:18999"},
		{name: "port", host: "127.0.0.1:19000"},
		{name: "body", body: []byte(`{"createTokenWithScopes":["voip"]}`)},
		{name: "body hash header", mutate: func(h http.Header) {
			h.Set("x-ms-content-sha256", "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=")
		}},
		{name: "date header", mutate: func(h http.Header) { h.Set("x-ms-date", "Sat, 28 Nov 2026 06:10:39 GMT") }},
		{name: "stale", now: vt.Add(16 * time.Minute)},
		{name: "future", now: vt.Add(-16 * time.Minute)},
		{name: "no auth", mutate: func(h http.Header) { h.Del("Authorization") }},
		{name: "no date", mutate: func(h http.Header) { h.Del("x-ms-date") }},
		{name: "bad date", mutate: func(h http.Header) { h.Set("x-ms-date", "yesterday") }},
		{name: "no hash", mutate: func(h http.Header) { h.Del("x-ms-content-sha256") }},
		{name: "scheme", mutate: func(h http.Header) { h.Set("Authorization", "Bearer abc") }},
		{name: "missing signed header", mutate: func(h http.Header) {
			h.Set("Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature=O1QaEQWrNL6WWV/spNsJzroEbbJNlBYZUe69B9M6Q7k=")
		}},
		{name: "forged signature", mutate: func(h http.Header) {
			h.Set("Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAAEQWrNL6WWV/spNsJzroEbbJNlBYZUe69B9M6Q7k=")
		}},
		{name: "wrong key", wrongKey: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := vectorVerifier(t)
			if tc.wrongKey {
				v.Keys = func() [][]byte { return [][]byte{[]byte("not-the-key-0000000000000000000")} }
			}
			if !tc.now.IsZero() {
				now := tc.now
				v.Now = func() time.Time { return now }
			}
			method, uri, host := vector.method, vector.uri, vector.host
			if tc.method != "" {
				method = tc.method
			}
			if tc.uri != "" {
				uri = tc.uri
			}
			if tc.host != "" {
				host = tc.host
			}
			h := vectorHeader()
			if tc.mutate != nil {
				tc.mutate(h)
			}
			if err := v.Verify(method, uri, host, h, tc.body); err == nil {
				t.Fatal("tampered request verified")
			} else if Status(err) != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (%v)", Status(err), err)
			}
		})
	}
}

func TestVerifyHostWithoutPort(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Now()
	v := &Verifier{Keys: func() [][]byte { return [][]byte{key} }, Skew: 15 * time.Minute}
	for _, signedHost := range []string{"gw.example.com:8443", "gw.example.com"} {
		h := http.Header{}
		body := []byte(`{"a":1}`)
		Sign(key, "POST", "/sms?api-version=2021-03-07", signedHost, body, now, h)
		if err := v.Verify("POST", "/sms?api-version=2021-03-07", "gw.example.com:8443", h, body); err != nil {
			t.Errorf("signed host %q: %v", signedHost, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(vector.auth)
	f.Add("HMAC-SHA256 SignedHeaders=&Signature=")
	f.Add("HMAC-SHA256 Signature=abc&SignedHeaders=host")
	f.Add("hmac-sha256 SignedHeaders=x-ms-date;;host&Signature===")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorization(s)
		if err == nil && (len(a.SignedHeaders) == 0 || len(a.Signature) != 32) {
			t.Fatalf("accepted incomplete header %q", s)
		}
		// Verify must never panic on any header.
		v := vectorVerifier(t)
		h := vectorHeader()
		h.Set("Authorization", s)
		_ = v.Verify("GET", "/", "h", h, nil)
	})
}

func BenchmarkVerify(b *testing.B) {
	v := vectorVerifier(b)
	h := vectorHeader()
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(vector.method, vector.uri, vector.host, h, nil); err != nil {
			b.Fatal(err)
		}
	}
}
