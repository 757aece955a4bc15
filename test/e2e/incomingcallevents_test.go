package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
)

// TestIncomingCallEvents: with calls.incomingCallEvents on, a carrier's call to one of the
// resource's numbers that has no route reaches the apps like a bot: route (IncomingCall to
// the Event Grid webhook; the app answers over REST; the CDR, read back from the store,
// shows the carrier's leg and the app's, kind bot with its callback host). Off (the default):
// 480 and no event. SQLite and PostgreSQL.
func TestIncomingCallEvents(t *testing.T) {
	sippBin(t)
	const number = "+14252000188"
	for _, tc := range []struct {
		name   string
		on, pg bool
	}{{"off", false, false}, {"on sqlite", true, false}, {"on postgres", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			carrierPort := freePortOn(t, carrierIP)
			app := newBotApp(t)
			cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n",
				carrierIP, carrierPort, carrierIP)
			cfgPath := filepath.Join(t.TempDir(), "telgw.yaml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			tg := StartTelgw(t, Options{Postgres: tc.pg, Env: []string{"TELGW_CONFIG=" + cfgPath, "TELGW_CALLS_INCOMING_CALL_EVENTS=" + strconv.FormatBool(tc.on)}})
			c := NewClient(t, tg.ConnString)
			buyNumber(t, c, number)
			if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": app.URL + "/events", "secret": "s",
				"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
				t.Fatalf("webhook: %d %s", r.Status, r.Body)
			}
			if !tc.on {
				wait := sippRun(t, scenarioCopy(t, "EXPECT_CODE", "480"), tg.Addrs.SIP, "-sf", "uac_reject.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
					"-s", number, "-key", "caller", pstnNumber, "-m", "1")
				wait(40 * time.Second)
				time.Sleep(300 * time.Millisecond)
				app.mu.Lock()
				n := len(app.incoming)
				app.mu.Unlock()
				if n != 0 {
					t.Fatalf("%d IncomingCall events with incomingCallEvents off", n)
				}
				return
			}
			wait := sippRun(t, scenarioCopy(t), tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
				"-s", number, "-key", "caller", pstnNumber, "-m", "1", "-d", "1500", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
			app.waitFor(t, "IncomingCall", func() bool { return len(app.incoming) > 0 })
			app.mu.Lock()
			data, _ := app.incoming[0]["data"].(map[string]any)
			app.mu.Unlock()
			ctxToken, _ := data["incomingCallContext"].(string)
			if r := c.Do(t, "POST", "/calling/callConnections:answer?api-version=2025-05-15", map[string]any{
				"incomingCallContext": ctxToken, "callbackUri": app.URL + "/callbacks"}); r.Status != http.StatusOK {
				t.Fatalf("answer: %d %s", r.Status, r.Body)
			}
			wait(40 * time.Second)
			legs := cdrLegs(t, c, number)
			if len(legs) != 2 || legs[0]["kind"] != "carrier" || legs[0]["trunk"] != "carrier1" || legs[1]["kind"] != "bot" ||
				legs[1]["participant"] != strings.TrimPrefix(app.URL, "http://") {
				t.Fatalf("legs %v", legs)
			}
			if r := c.Do(t, "GET", "/telgw/calls?number="+url.QueryEscape(number), nil); r.Status != http.StatusOK {
				t.Fatalf("calls: %d", r.Status)
			}
		})
	}
}
