package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
)

// TestBotMediaSDK: a bot written with the npm @azure/communication-call-automation 1.6.0 SDK
// (test/peers/callautomation_media.mjs) answers a SIPp caller on a real telgw serve and
// collects DTMF behind a WAV prompt it serves itself (fetched through the SSRF guard,
// webhooks.allowPrivate for loopback): SIPp presses 1, 2, # as RFC 4733 events from its
// dtmf_2833 pcaps → RecognizeCompleted [one two]; then plays a file and text (espeak-ng),
// sends DTMF, cancels a looped play, and gets 400 for startTranscription. The SDK builds every request and
// parses every callback, so field names are the SDK's.
func TestBotMediaSDK(t *testing.T) {
	sippBin(t)
	peers := requireNodePeers(t)
	const pcaps = "/usr/share/sip-tester"
	if _, err := os.Stat(pcaps + "/dtmf_2833_1.pcap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("SIPp's dtmf_2833 pcaps are not installed")
	}
	const botNumber = "+14252000144"
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n"+
		"    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n", carrierIP, freePortOn(t, carrierIP), carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	app := startNodeApp(t, peers, "callautomation_media.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString, "CALLER_NUMBER="+pstnNumber)
	appURL := app.wait(t, "APP_URL=")
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + appURL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": appURL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	sc := scenarioCopy(t, "PCAP_DIR", pcaps, "WAIT_MS", "3000", "HOLD_MS", "12000")
	caller := sippRunFor(t, sc, 90*time.Second, tg.Addrs.SIP, "-sf", "uac_dtmf.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	app.wait(t, "MEDIA OK")
	caller(40 * time.Second)
	app.exit(t)
	for _, op := range []string{"play", "recognize", "sendDtmfTones", "cancelAllMediaOperations"} {
		if n := labeledMetric(t, tg.Endpoint, "telgw_callautomation_operations_total", `operation="`+op+`",result="ok"`); n < 1 {
			t.Errorf("telgw_callautomation_operations_total{operation=%q,result=\"ok\"} = %v", op, n)
		}
	}
}
