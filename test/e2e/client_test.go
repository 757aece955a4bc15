package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
)

// Client signs requests with the ACS HMAC scheme, as the SDKs do.
type Client struct {
	Base *url.URL
	Key  []byte
	HTTP *http.Client
}

// NewClient parses an ACS connection string.
func NewClient(t testing.TB, conn string) *Client {
	t.Helper()
	var endpoint, key string
	for _, part := range strings.Split(conn, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToLower(k) {
		case "endpoint":
			endpoint = v
		case "accesskey":
			key = v
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Base: u, Key: kb, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Response is a decoded reply.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorCode returns error.code and error.target of an ACS error body.
func (r *Response) ErrorCode(t testing.TB) (code, target, message string) {
	t.Helper()
	var e api.ErrorBody
	r.JSON(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an ACS error body: %s", r.Body)
	}
	return e.Error.Code, e.Error.Target, e.Error.Message
}

// Do sends a signed request; body may be nil, []byte, string or a value to encode as JSON.
func (c *Client) Do(t testing.TB, method, pathAndQuery string, body any, mutate ...func(*http.Request)) *Response {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.Base.String()+strings.TrimPrefix(pathAndQuery, "/"), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	api.Sign(c.Key, method, req.URL.RequestURI(), req.URL.Host, b, time.Now(), req.Header)
	for _, m := range mutate {
		m(req)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: rb}
}
