package e2e

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/test/browser"
)

// TestWebRTCPolicyAndEmergency: a JsSIP user (the softphone in headless Chromium) whose number
// is killed by the operator cannot call a PSTN number or a blocked premium number (403, with
// the refusal on the CDR), yet its 911 call reaches the emergency trunk (SIPp) with the user's
// number as callback number in P-Asserted-Identity.
func TestWebRTCPolicyAndEmergency(t *testing.T) {
	browser.Require(t)
	sippBin(t)
	carrierPort := freePortOn(t, carrierIP)
	tg, c, token, _ := webrtcGateway(t, carrierPort, "  emergency: {trunk: carrier1}\n")
	if r := c.Do(t, "PUT", "/telgw/policy/numbers/"+url.PathEscape(userNumber), `{"disabled":true}`); r.Status != 200 {
		t.Fatalf("kill switch: %d %s", r.Status, r.Body)
	}
	for _, number := range []string{pstnNumber, "+19005550100"} {
		res := browser.Run(t, browser.Options{URL: tg.Endpoint + "phone/", Token: token, Mode: "call", Number: number, Talk: time.Second})
		if !res.Registered || !strings.HasPrefix(res.CallStatus, "failed") {
			t.Fatalf("call to %s: %+v", number, res)
		}
	}
	check := `<recv request="INVITE" crlf="true"><action><ereg regexp="^\s*&lt;sip:\` + userNumber + `@" search_in="hdr" header="P-Asserted-Identity:" check_it="true" assign_to="pai"/></action></recv>`
	dir := scenarioCopy(t, `<recv request="INVITE" crlf="true"/>`, check, "</scenario>", `<Reference variables="pai"/></scenario>`)
	wait := sippRun(t, dir, "-sf", "uas.xml", "-i", carrierIP, "-p", strconv.Itoa(carrierPort), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	time.Sleep(200 * time.Millisecond)
	res := browser.Run(t, browser.Options{URL: tg.Endpoint + "phone/", Token: token, Mode: "call", Number: "911", Talk: 2 * time.Second})
	if !res.Registered || !strings.HasPrefix(res.CallStatus, "ended") {
		t.Fatalf("911: %+v", res)
	}
	wait(20 * time.Second)
	r := c.Do(t, "GET", "/telgw/calls", nil)
	var page struct {
		Value []map[string]any `json:"value"`
	}
	r.JSON(t, &page)
	codes := map[string]float64{}
	for _, cdr := range page.Value {
		codes[cdr["to"].(string)] = cdr["sipCode"].(float64)
	}
	if codes[pstnNumber] != 403 || codes["+19005550100"] != 403 || codes["911"] != 200 {
		t.Fatalf("cdrs %s", r.Body)
	}
}
