package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestBotNumberWithoutSubscriber: a number routed to an app that no Event Grid webhook listens
// to (for IncomingCall) refuses its callers at once with 480 instead of ringing for nobody.
func TestBotNumberWithoutSubscriber(t *testing.T) {
	t.Parallel()
	sippBin(t)
	const botNumber = "+14252000171"
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n",
		carrierIP, freePortOn(t, carrierIP), carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:http://127.0.0.1:9/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	start := time.Now()
	wait := sippRun(t, scenarioCopy(t, "EXPECT_CODE", "480"), tg.Addrs.SIP, "-sf", "uac_reject.xml", "-i", carrierIP,
		"-p", strconv.Itoa(freePortOn(t, carrierIP)), "-s", botNumber, "-key", "caller", pstnNumber, "-m", "1",
		"-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	wait(30 * time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("480 after %v: the caller rang for nobody", d)
	}
}
