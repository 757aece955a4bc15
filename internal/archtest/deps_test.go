// Package archtest holds the dependency rules of the package map (docs/DEVELOPING.md) as
// tests: domain packages import no transport, no SQL driver and no config; the store imports
// domains, never a transport.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists every package pkg depends on (go list -deps), the way the linker sees it.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// forbidden reports the dependencies of pkg matching any of the rules (a rule ending in "/" is
// a prefix, otherwise an exact package path).
func forbidden(t *testing.T, pkg string, rules []string) []string {
	var bad []string
	for _, d := range deps(t, pkg) {
		for _, r := range rules {
			if d == r || (strings.HasSuffix(r, "/") && strings.HasPrefix(d, r)) {
				bad = append(bad, d)
			}
		}
	}
	return bad
}

var (
	transports = []string{"github.com/emiago/", "github.com/pion/", "github.com/linxGnu/", "github.com/go-chi/",
		"github.com/telgw/telgw/internal/sip", "github.com/telgw/telgw/internal/sip/", "github.com/telgw/telgw/internal/bridge",
		"github.com/telgw/telgw/internal/bridge/", "github.com/telgw/telgw/internal/api", "github.com/telgw/telgw/internal/sipws",
		"github.com/telgw/telgw/internal/turn", "github.com/telgw/telgw/internal/media/"}
	drivers = []string{"github.com/jackc/", "modernc.org/sqlite", "github.com/lib/pq", "github.com/telgw/telgw/internal/store"}
	cfg     = []string{"github.com/telgw/telgw/config"}
)

func TestDomainsImportNoTransport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pkg   string
		rules [][]string
	}{
		// The call domain: no SIP, media, HTTP, SQL or config.
		{"github.com/telgw/telgw/internal/calls", [][]string{transports, drivers, cfg, {"net/http"}}},
		{"github.com/telgw/telgw/internal/e164", [][]string{transports, drivers, cfg, {"net/http"}}},
		{"github.com/telgw/telgw/internal/identity", [][]string{transports, drivers, cfg}},
		{"github.com/telgw/telgw/internal/numbers", [][]string{transports, drivers, cfg}},
		// The SMS core and events: no SIP, SMPP, REST edge, SQL or config (events delivers
		// webhooks with an HTTP client, so net/http is theirs).
		{"github.com/telgw/telgw/internal/sms", [][]string{transports, drivers, cfg}},
		{"github.com/telgw/telgw/internal/events", [][]string{transports, drivers, cfg}},
		// The cluster (node registry, shared locations, leases): no SIP, REST edge, SQL or
		// config (its metrics bring net/http).
		{"github.com/telgw/telgw/internal/cluster", [][]string{transports, drivers, cfg}},
		// The store links domains only: `telgw migrate` and the conformance suite carry no
		// SIP stack, WebRTC, ICE, DTLS or TURN.
		{"github.com/telgw/telgw/internal/store", [][]string{transports, cfg}},
		{"github.com/telgw/telgw/internal/store/storetest", [][]string{transports, cfg}},
		// Edges call services: the REST edge reaches the store only through the domains.
		{"github.com/telgw/telgw/internal/api", [][]string{drivers}},
		// The console too (its session table is behind console.Store, which the app passes
		// in); it renders HTML without the SIP stack, media or config.
		{"github.com/telgw/telgw/internal/console", [][]string{drivers, transports, cfg}},
	} {
		var rules []string
		for _, r := range tc.rules {
			rules = append(rules, r...)
		}
		if bad := forbidden(t, tc.pkg, rules); len(bad) > 0 {
			t.Errorf("%s depends on %v", tc.pkg, bad)
		}
	}
}

// TestSIPScreenIsPure: the malformed-message screen works on bytes. It may use sipgo's parser
// (to know what sipgo accepts) but no other part of telgw, no media stack and no config.
func TestSIPScreenIsPure(t *testing.T) {
	t.Parallel()
	const pkg = "github.com/telgw/telgw/internal/sip/screen"
	rules := []string{"github.com/pion/", "github.com/telgw/telgw/", "github.com/emiago/sipgo",
		"github.com/telgw/telgw/config"}
	var bad []string
	for _, d := range forbidden(t, pkg, rules) {
		if d != pkg {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s depends on %v", pkg, bad)
	}
}

// TestMediaIsSelfContained: the media building blocks (internal/media/...) depend on no other
// part of telgw and no config, so the call engine wires them, never the reverse. The
// sample-level packages (codecs, DTMF, mixer, recorder, speech) use neither pion nor net/http;
// only rtpmedia speaks RTP (pion/rtp) and only playsrc HTTP (a client the app hands it).
func TestMediaIsSelfContained(t *testing.T) {
	t.Parallel()
	const media = "github.com/telgw/telgw/internal/media/"
	pure := []string{"github.com/pion/", "net/http"}
	for _, tc := range []struct {
		pkg   string
		extra []string
	}{
		{"audio", pure}, {"dtmf", pure}, {"mixer", pure}, {"record", pure}, {"speech", pure},
		{"rtpmedia", []string{"net/http"}},
		{"playsrc", []string{"github.com/pion/"}},
	} {
		pkg := media + tc.pkg
		var bad []string
		for _, d := range forbidden(t, pkg, append([]string{"github.com/telgw/telgw/", "github.com/emiago/"}, tc.extra...)) {
			if !strings.HasPrefix(d, media) {
				bad = append(bad, d)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %v", pkg, bad)
		}
	}
}
