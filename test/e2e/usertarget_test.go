package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/test/browser"
)

const appNumber = "+14252000177" // routed to the app (bot:)

// userAppGateway is a telgw serve with a carrier trunk, a WebRTC user (a number assigned,
// her token returned), a number routed to an app and the app's Event Grid webhook for
// IncomingCall. Callbacks to loopback are allowed.
func userAppGateway(t *testing.T, carrierPort int) (tg *Telgw, c *Client, token, userID string, app *botApp) {
	t.Helper()
	app = newBotApp(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n",
		carrierIP, carrierPort, carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg = StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c = NewClient(t, tg.ConnString)
	buyNumber(t, c, userNumber)
	buyNumber(t, c, appNumber)
	var id struct {
		Identity    struct{ ID string }    `json:"identity"`
		AccessToken struct{ Token string } `json:"accessToken"`
	}
	r := c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("identity: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &id)
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(userNumber)+"/assignment", map[string]string{"communicationUser": id.Identity.ID}); r.Status != http.StatusOK {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(appNumber)+"/route", map[string]string{"route": "bot:" + app.URL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": app.URL + "/events", "secret": "s",
		"eventTypes": []string{"Microsoft.Communication.IncomingCall"}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	return tg, c, id.AccessToken.Token, id.Identity.ID, app
}

// answeringBrowser starts the softphone in Chromium in answer mode (it waits for the far
// end's BYE) and waits until it registered; the returned function waits for its report.
func answeringBrowser(t *testing.T, tg *Telgw, token string, talk time.Duration) func() browser.Result {
	t.Helper()
	chromium := browser.Require(t)
	type out struct {
		res browser.Result
		err error
	}
	done := make(chan out, 1)
	before := metric(t, tg.Endpoint, "telgw_registrations")
	go func() {
		res, err := browser.RunContext(context.Background(), chromium, browser.Options{URL: tg.Endpoint + "phone/", Token: token,
			Mode: "answer", Hangup: "remote", Talk: talk, Timeout: 40 * time.Second})
		done <- out{res, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, tg.Endpoint, "telgw_registrations") <= before {
		if time.Now().After(deadline) {
			t.Fatal("the softphone never registered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return func() browser.Result {
		t.Helper()
		o := <-done
		if o.err != nil {
			t.Fatalf("%v\n%+v", o.err, o.res)
		}
		return o.res
	}
}

// cdrLegs waits for the CDR of an answered call to `to` and returns its legs.
func cdrLegs(t *testing.T, c *Client, to string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.Do(t, "GET", "/telgw/calls", nil)
		var page struct {
			Value []struct {
				To          string           `json:"to"`
				Disposition string           `json:"disposition"`
				Legs        []map[string]any `json:"legs"`
			} `json:"value"`
		}
		r.JSON(t, &page)
		for _, cdr := range page.Value {
			if cdr.To == to && cdr.Disposition == "answered" {
				return cdr.Legs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answered CDR to %s in %s", to, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAppCallsBrowserUser: an app's createCall (REST, HMAC-signed) to a communication user
// rings her softphone in Chromium (JsSIP over WebSocket); she answers; the app gets
// CallConnected, its audio reaches telgw, the app hangs up and the softphone gets BYE. The
// CDR on /telgw/calls shows the app's leg (kind bot, its callback host) and her WebRTC leg.
func TestAppCallsBrowserUser(t *testing.T) {
	browser.Require(t)
	tg, c, token, userID, app := userAppGateway(t, freePortOn(t, carrierIP))
	wait := answeringBrowser(t, tg, token, 3*time.Second)
	r := c.Do(t, "POST", "/calling/callConnections?api-version=2025-05-15", map[string]any{
		"targets":              []map[string]any{{"kind": "communicationUser", "communicationUser": map[string]string{"id": userID}}},
		"sourceCallerIdNumber": map[string]string{"value": appNumber}, "sourceDisplayName": "Support Desk",
		"callbackUri": app.URL + "/callbacks"})
	if r.Status != http.StatusCreated {
		t.Fatalf("createCall: %d %s", r.Status, r.Body)
	}
	var conn struct {
		CallConnectionID string `json:"callConnectionId"`
	}
	r.JSON(t, &conn)
	types := func() string {
		var out []string
		for _, ev := range app.callbacks {
			s, _ := ev["type"].(string)
			out = append(out, s)
		}
		return strings.Join(out, ",")
	}
	app.waitFor(t, "CallConnected", func() bool { return strings.Contains(types(), "CallConnected") })
	time.Sleep(3500 * time.Millisecond) // the softphone talks for 3 s
	if r := c.Do(t, "DELETE", "/calling/callConnections/"+conn.CallConnectionID+"?api-version=2025-05-15", nil); r.Status != http.StatusNoContent {
		t.Fatalf("hang up: %d %s", r.Status, r.Body)
	}
	res := wait()
	if res.Stats == nil || res.Stats.PacketsSent < 50 || !strings.HasPrefix(res.CallStatus, "ended") {
		t.Fatalf("browser: %+v", res)
	}
	app.waitFor(t, "CallDisconnected", func() bool { return strings.Contains(types(), "CallDisconnected") })
	legs := cdrLegs(t, c, userID)
	host := strings.TrimPrefix(app.URL, "http://")
	if len(legs) != 2 || legs[0]["kind"] != "bot" || legs[0]["participant"] != host || legs[1]["kind"] != "webrtc" || legs[1]["participant"] != userID {
		t.Fatalf("legs %v", legs)
	}
}

// TestAppRedirectsToBrowserUser: a carrier's call (SIPp streaming RTP) to the app's number is
// redirected by the app (REST) to a communication user; her softphone rings and answers; RTP
// flows both ways between the carrier and the browser; the carrier hangs up.
func TestAppRedirectsToBrowserUser(t *testing.T) {
	browser.Require(t)
	sippBin(t)
	tg, c, token, userID, app := userAppGateway(t, freePortOn(t, carrierIP))
	wait := answeringBrowser(t, tg, token, 3*time.Second)
	sipp := sippRun(t, scenarioCopy(t), tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", appNumber, "-key", "caller", pstnNumber, "-m", "1", "-d", "4500", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	app.waitFor(t, "IncomingCall", func() bool { return len(app.incoming) > 0 })
	app.mu.Lock()
	data, _ := app.incoming[0]["data"].(map[string]any)
	app.mu.Unlock()
	token2, _ := data["incomingCallContext"].(string)
	if r := c.Do(t, "POST", "/calling/callConnections:redirect?api-version=2025-05-15", map[string]any{"incomingCallContext": token2,
		"target": map[string]any{"kind": "communicationUser", "communicationUser": map[string]string{"id": userID}}}); r.Status != http.StatusNoContent {
		t.Fatalf("redirect: %d %s", r.Status, r.Body)
	}
	sipp(40 * time.Second)
	res := wait()
	if res.Stats == nil {
		t.Fatalf("browser: %+v", res)
	}
	checkStats(t, res.Stats)
	legs := cdrLegs(t, c, userID)
	if len(legs) != 2 || legs[0]["kind"] != "carrier" || legs[1]["kind"] != "webrtc" || legs[1]["participant"] != userID {
		t.Fatalf("legs %v", legs)
	}
}
