package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
)

// TestBotFlowsSDK runs an ACS-style app written with the official Call Automation SDK
// (test/peers/botflows.test.mjs) against a real `telgw serve` on each store, SIPp being the
// carrier on both sides: a caller the app answers and hangs up on (the caller gets telgw's
// BYE), a caller the app rejects busy (486), a caller the app redirects to a PSTN number (SIPp
// answers it), and a call the app places to a PSTN number and hangs up.
func TestBotFlowsSDK(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { botFlows(t, pg) })
	}
}

func botFlows(t *testing.T, pg bool) {
	sippBin(t)
	peers := requireNodePeers(t)
	const (
		botAnswer   = "+14252000151"
		botReject   = "+14252000152"
		botRedirect = "+14252000153"
		target      = "+12025550160" // reached through the carrier (SIPp UAS)
	)
	dir := t.TempDir()
	carrierPort := freePortOn(t, carrierIP)
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n",
		carrierIP, carrierPort, carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Postgres: pg, Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	for _, n := range []string{botAnswer, botReject, botRedirect} {
		buyNumber(t, c, n)
	}
	routes := map[string]any{"routes": []map[string]any{{"name": "us", "numberPattern": `\+1[2-9]\d{9}`, "trunks": []string{"carrier1"}}}}
	if r := c.Do(t, "PATCH", "/sip?"+sipRoutingV, routes, func(req *http.Request) {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}); r.Status != http.StatusOK {
		t.Fatalf("sip routes: %d %s", r.Status, r.Body)
	}

	// The carrier's callee side answers the redirected call and the app's call (two calls).
	uas := sippRun(t, scenarioCopy(t), "-sf", "uas.xml", "-i", carrierIP, "-p", strconv.Itoa(carrierPort), "-m", "2", "-rtp_echo",
		"-mp", strconv.Itoa(freePortOn(t, carrierIP)))

	// The app, in Node with the SDK.
	urlFile := filepath.Join(dir, "app-url")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "botflows.test.mjs")
	node.Dir = peers
	node.Env = append(os.Environ(), "TELGW_CONNECTION_STRING="+tg.ConnString, "APP_URL_FILE="+urlFile,
		"BOT_ANSWER="+botAnswer, "BOT_REJECT="+botReject, "BOT_REDIRECT="+botRedirect,
		"REDIRECT_TARGET="+target, "CREATE_TARGET="+target, "CALLER_ID="+botAnswer)
	var out bytes.Buffer
	node.Stdout, node.Stderr = &out, &out
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- node.Wait() }()
	var appURL string
	for deadline := time.Now().Add(30 * time.Second); appURL == ""; {
		b, _ := os.ReadFile(urlFile)
		appURL = strings.TrimSpace(string(b))
		if appURL == "" {
			if time.Now().After(deadline) {
				t.Fatalf("the app did not start:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range []string{botAnswer, botReject, botRedirect} {
		if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(n)+"/route", map[string]string{"route": "bot:" + appURL + "/callbacks"}); r.Status/100 != 2 {
			t.Fatalf("route: %d %s", r.Status, r.Body)
		}
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": appURL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}

	caller := func(scenario, called string, extra ...string) func(time.Duration) {
		args := append([]string{"-sf", scenario, "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)), "-s", called,
			"-key", "caller", pstnNumber, "-m", "1", "-mp", strconv.Itoa(freePortOn(t, carrierIP))}, extra...)
		return sippRun(t, scenarioCopy(t, "EXPECT_CODE", "486"), append([]string{tg.Addrs.SIP}, args...)...)
	}
	answered := caller("uac_callee_bye.xml", botAnswer)
	rejected := caller("uac_reject.xml", botReject)
	redirected := caller("uac.xml", botRedirect, "-d", "2000")

	select {
	case err := <-nodeDone:
		if err != nil {
			t.Fatalf("the SDK app failed: %v\n%s", err, out.String())
		}
	case <-time.After(150 * time.Second):
		t.Fatalf("the SDK app did not finish:\n%s", out.String())
	}
	answered(30 * time.Second)
	rejected(30 * time.Second)
	redirected(30 * time.Second)
	uas(30 * time.Second)
	t.Logf("SDK app:\n%s", out.String())
	checkCDR(t, c, "inbound", pstnNumber, botAnswer, "callee")
}
