package smsctest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/testnode"
)

// BuildTelgw builds cmd/telgw once per process (the shared harness, internal/testnode); root
// and dir are no longer used and kept for callers.
func BuildTelgw(_, _ string) (string, error) { return testnode.Bin() }

// Node is a running `telgw serve` with a signed HTTP client.
type Node struct {
	*testnode.Node
	t    testing.TB
	http *http.Client
}

// NodeOptions configures StartNode.
type NodeOptions struct {
	// Bin is the telgw binary (BuildTelgw).
	Bin string
	// DataDir is reused across restarts; default a temp dir.
	DataDir string
	// DatabaseURL selects PostgreSQL; empty is SQLite.
	DatabaseURL string
	// SMSC is the SMPP carrier's host:port.
	SMSC string
	// Webhooks are subscriber URLs, all with secret "a-secret".
	Webhooks []string
	// Window and Links tune the SMPP carrier (defaults 10 and 1).
	Window, Links int
	// Env adds environment variables.
	Env []string
	// ExtraCarriers is YAML appended to the sms.carriers list (after the SMPP carrier
	// "smsc1"), indented as list items: "    - name: …".
	ExtraCarriers string
}

// FreeAddr returns a loopback host:port that was free a moment ago, for peers that cannot
// listen on port 0 and report it (Kannel). telgw itself never needs it.
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// StartNode writes a config and runs `telgw serve` until ready; the test kills it (SIGKILL) at
// the end.
func StartNode(t testing.TB, o NodeOptions) *Node {
	t.Helper()
	if o.Window == 0 {
		o.Window = 10
	}
	cfg := fmt.Sprintf("sms:\n  carriers:\n    - name: smsc1\n      smpp: {address: %q, systemId: telgw, password: secret, window: %d, links: %d, systemType: telgw}\n", o.SMSC, o.Window, max(o.Links, 1))
	cfg += o.ExtraCarriers
	if len(o.Webhooks) > 0 {
		cfg += "webhooks:\n"
		for _, u := range o.Webhooks {
			cfg += fmt.Sprintf("  - url: %q\n    secret: a-secret\n", u)
		}
	}
	// The test subscribers listen on loopback, which webhooks may not reach by default.
	env := append([]string{"TELGW_WEBHOOKS_ALLOW_PRIVATE=true"}, o.Env...)
	tn := testnode.Start(t, testnode.Options{Bin: o.Bin, DataDir: o.DataDir, DatabaseURL: o.DatabaseURL, Config: cfg, Env: env, KillAtEnd: true})
	return &Node{Node: tn, t: t, http: &http.Client{Timeout: 30 * time.Second}}
}

// KeyB64 is the access key as the connection string carries it.
func (n *Node) KeyB64() string { return base64.StdEncoding.EncodeToString(n.Key) }

// Do sends a signed request and decodes a JSON reply into out (if non-nil).
func (n *Node) Do(method, path string, body, out any) int {
	n.t.Helper()
	st, ok := n.TryDo(method, path, body, out)
	if !ok {
		n.t.Fatalf("%s %s: no response", method, path)
	}
	return st
}

// TryDo is Do without failing on transport errors (a killed node).
func (n *Node) TryDo(method, path string, body, out any) (int, bool) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	st, _, ok := n.raw(method, path, "application/json", b, out)
	return st, ok
}

// raw sends a signed request with a body of the given type.
func (n *Node) raw(method, path, contentType string, b []byte, out any) (int, http.Header, bool) {
	req, err := http.NewRequest(method, n.Endpoint+strings.TrimPrefix(path, "/"), bytes.NewReader(b))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	api.Sign(n.Key, method, req.URL.RequestURI(), req.URL.Host, b, time.Now(), req.Header)
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, false
	}
	if out != nil && len(rb) > 0 {
		if err := json.Unmarshal(rb, out); err != nil {
			return resp.StatusCode, resp.Header, false
		}
	}
	return resp.StatusCode, resp.Header, true
}

// PurchaseNumber imports e164 into the inventory (SMS inbound+outbound, on carrier) and buys
// it through the ACS phone numbers API (search, purchase, wait), so it may send SMS.
func (n *Node) PurchaseNumber(e164, carrier string) {
	n.t.Helper()
	csv := "phoneNumber,phoneNumberType,calling,sms,locality,administrativeDivision,carrier,monthlyCost\n" +
		e164 + ",geographic,none,inbound+outbound,Seattle,WA," + carrier + ",1\n"
	if st, _, _ := n.raw("POST", "/telgw/numbers:import", "text/csv", []byte(csv), nil); st/100 != 2 {
		n.t.Fatalf("import %s: HTTP %d", e164, st)
	}
	const v = "?api-version=2025-06-01"
	b, _ := json.Marshal(map[string]any{"phoneNumberType": "geographic", "assignmentType": "application", "areaCode": e164[2:5],
		"quantity": 1, "capabilities": map[string]string{"calling": "none", "sms": "inbound+outbound"}})
	st, h, _ := n.raw("POST", "/availablePhoneNumbers/countries/US/:search"+v, "application/json", b, nil)
	if st != http.StatusAccepted || h.Get("search-id") == "" {
		n.t.Fatalf("search for %s: HTTP %d", e164, st)
	}
	var se struct {
		PhoneNumbers []string `json:"phoneNumbers"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, _ = n.raw("GET", "/availablePhoneNumbers/searchResults/"+h.Get("search-id")+v, "application/json", nil, &se)
		if st == http.StatusOK && len(se.PhoneNumbers) > 0 {
			break
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("search for %s: HTTP %d %v", e164, st, se)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(se.PhoneNumbers) != 1 || se.PhoneNumbers[0] != e164 {
		n.t.Fatalf("search for %s found %v", e164, se.PhoneNumbers)
	}
	b, _ = json.Marshal(map[string]string{"searchId": h.Get("search-id")})
	if st, _, _ := n.raw("POST", "/availablePhoneNumbers/:purchase"+v, "application/json", b, nil); st != http.StatusAccepted {
		n.t.Fatalf("purchase %s: HTTP %d", e164, st)
	}
	for {
		if st, _, _ := n.raw("GET", "/phoneNumbers/"+url.PathEscape(e164)+v, "application/json", nil, nil); st == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("purchase of %s did not complete", e164)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
