package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/test/browser"
)

// The carrier (SIPp) lives on its own loopback address so telgw tells it apart by source.
const (
	carrierIP   = "127.0.0.12" // its own loopback address: SIPp ports probed here cannot collide with other packages
	userNumber  = "+14155552671"
	pstnNumber  = "+12125550199"
	sipRoutingV = "api-version=2023-03-01"
	numbersV    = "api-version=2025-06-01"
)

// sippBin finds SIPp (Debian sip-tester).
func sippBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	requirePeer(t, err == nil, "sipp (apt-get install -y sip-tester)")
	return p
}

func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// poll follows an ACS long-running operation (Operation-Location) until it ends.
func poll(t testing.TB, c *Client, res *Response) map[string]any {
	t.Helper()
	loc := res.Header.Get("Operation-Location")
	if res.Status != http.StatusAccepted || loc == "" {
		t.Fatalf("want 202 with Operation-Location, got %d %s", res.Status, res.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := c.Do(t, "GET", u.RequestURI(), nil)
		var op map[string]any
		r.JSON(t, &op)
		switch op["status"] {
		case "succeeded":
			return op
		case "failed", "cancelled":
			t.Fatalf("operation %s: %s", loc, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("operation %s did not finish", loc)
	return nil
}

// buyNumber stocks e164 and purchases it over the ACS phone numbers API, as an app would.
func buyNumber(t testing.TB, c *Client, e164 string) {
	t.Helper()
	if r := c.Do(t, "POST", "/telgw/numbers:import", map[string]string{"range": e164 + ":" + e164, "carrier": "carrier1"}); r.Status/100 != 2 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	r := c.Do(t, "POST", "/availablePhoneNumbers/countries/US/:search?"+numbersV, map[string]any{
		"phoneNumberType": "geographic", "assignmentType": "person", "areaCode": e164[2:5], "quantity": 1,
		"capabilities": map[string]string{"calling": "inbound+outbound", "sms": "none"},
	})
	searchID := r.Header.Get("search-id")
	poll(t, c, r)
	if searchID == "" {
		t.Fatalf("no search-id header: %v", r.Header)
	}
	poll(t, c, c.Do(t, "POST", "/availablePhoneNumbers/:purchase?"+numbersV, map[string]string{"searchId": searchID}))
}

// webrtcGateway runs telgw with a carrier trunk to SIPp on carrierIP:carrierPort and an
// outbound route for +1 numbers, a voip user with userNumber assigned, and returns the user's
// token.
func webrtcGateway(t *testing.T, carrierPort int, extraYAML ...string) (*Telgw, *Client, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("sip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n", carrierIP, carrierPort, carrierIP)
	cfg += strings.Join(extraYAML, "")
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	sipAddr := tg.Addrs.SIP
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, userNumber)
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
	routes := map[string]any{"routes": []map[string]any{{"name": "us", "numberPattern": `\+1[2-9]\d{9}`, "trunks": []string{"carrier1"}}}}
	if r := c.Do(t, "PATCH", "/sip?"+sipRoutingV, routes, func(req *http.Request) {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}); r.Status != http.StatusOK {
		t.Fatalf("sip routes: %d %s", r.Status, r.Body)
	}
	return tg, c, id.AccessToken.Token, sipAddr
}

// sippRun starts SIPp in dir with a copy of the scenarios; it returns a wait function that
// fails the test unless SIPp reports success. SIPp gives up after 40 s (sippRunFor).
func sippRun(t *testing.T, dir string, args ...string) func(time.Duration) {
	t.Helper()
	return sippRunFor(t, dir, 40*time.Second, args...)
}

// scenarioCopy copies test/sipp into a temp dir, applying replacements (old, new, …).
func scenarioCopy(t *testing.T, repl ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "sipp")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.NewReplacer(repl...).Replace(string(b)))
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The μ-law audio uac.xml streams (raw payload).
	if err := os.WriteFile(filepath.Join(dir, "tone.ul"), bytes.Repeat([]byte{0xff, 0x7f}, 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// metric reads one unlabelled gauge or counter from /metrics.
func metric(t *testing.T, endpoint, name string) float64 {
	t.Helper()
	res, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestWebRTCBrowserCallsPSTN: the softphone in headless Chromium, registered with a user access
// token, dials a PSTN number; telgw bridges its WebRTC leg to the carrier trunk (SIPp echoing
// RTP) with the user's number as caller ID; RTP flows both ways; either side hangs up.
func TestWebRTCBrowserCallsPSTN(t *testing.T) {
	for _, tc := range []struct{ name, scenario, hangup, endedBy string }{
		{"browser hangs up", "uas.xml", "local", "caller"},
		{"carrier hangs up", "uas_bye.xml", "remote", "callee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser.Require(t)
			sippBin(t)
			carrierPort := freePortOn(t, carrierIP)
			tg, c, token, _ := webrtcGateway(t, carrierPort)
			dir := scenarioCopy(t, `<pause milliseconds="1000"/>`, `<pause milliseconds="4500"/>`)
			wait := sippRun(t, dir, "-sf", tc.scenario, "-i", carrierIP, "-p", strconv.Itoa(carrierPort), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
			time.Sleep(200 * time.Millisecond)
			res := browser.Run(t, browser.Options{URL: tg.Endpoint + "phone/", Token: token, Mode: "call", Number: pstnNumber, DTMF: "19#", Talk: 3 * time.Second, Hangup: tc.hangup})
			if !res.Registered || !strings.HasPrefix(res.CallStatus, "ended") || res.Stats == nil {
				t.Fatalf("browser: %+v", res)
			}
			checkStats(t, res.Stats)
			wait(20 * time.Second)
			checkCDR(t, c, "outbound", userNumber, pstnNumber, tc.endedBy)
		})
	}
}

// TestWebRTCPSTNCallsBrowser: a carrier call (SIPp with RTP) to the number assigned to the
// user rings the registered softphone, which answers; RTP flows both ways; either side hangs
// up.
func TestWebRTCPSTNCallsBrowser(t *testing.T) {
	for _, tc := range []struct{ name, scenario, hangup, endedBy string }{
		{"carrier hangs up", "uac.xml", "remote", "caller"},
		{"browser hangs up", "uac_callee_bye.xml", "local", "callee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chromium := browser.Require(t)
			sippBin(t)
			carrierPort := freePortOn(t, carrierIP)
			tg, c, token, sipAddr := webrtcGateway(t, carrierPort)
			dir := scenarioCopy(t)
			type out struct {
				res browser.Result
				err error
			}
			done := make(chan out, 1)
			before := metric(t, tg.Endpoint, "telgw_registrations")
			go func() {
				res, err := browser.RunContext(context.Background(), chromium, browser.Options{URL: tg.Endpoint + "phone/", Token: token,
					Mode: "answer", Hangup: tc.hangup, Talk: 3 * time.Second, Timeout: 40 * time.Second})
				done <- out{res, err}
			}()
			deadline := time.Now().Add(30 * time.Second)
			for metric(t, tg.Endpoint, "telgw_registrations") <= before {
				if time.Now().After(deadline) {
					t.Fatal("the softphone never registered")
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The carrier sends the number in national form and streams RTP from a file; it
			// hangs up after 4.5 s, or waits for the browser's BYE.
			wait := sippRun(t, dir, sipAddr, "-sf", tc.scenario, "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
				"-s", strings.TrimPrefix(userNumber, "+1"), "-key", "caller", pstnNumber, "-m", "1", "-d", "4500", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
			wait(40 * time.Second)
			o := <-done
			if o.err != nil {
				t.Fatalf("%v\n%+v", o.err, o.res)
			}
			if o.res.Stats == nil {
				t.Fatalf("browser: %+v", o.res)
			}
			checkStats(t, o.res.Stats)
			checkCDR(t, c, "inbound", pstnNumber, userNumber, tc.endedBy)
		})
	}
}

func checkStats(t *testing.T, st *browser.Stats) {
	t.Helper()
	t.Logf("browser stats %+v", *st)
	if st.PacketsSent < 50 || st.PacketsReceived < 50 {
		t.Fatalf("RTP sent %d received %d, want ≥ 50 each way", st.PacketsSent, st.PacketsReceived)
	}
	if st.Codec != "audio/PCMU" && st.Codec != "audio/PCMA" {
		t.Errorf("codec %q: G.711 end to end without transcoding", st.Codec)
	}
}

func checkCDR(t *testing.T, c *Client, direction, from, to, endedBy string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.Do(t, "GET", "/telgw/calls", nil)
		var page struct {
			Value []map[string]any `json:"value"`
		}
		r.JSON(t, &page)
		for _, cdr := range page.Value {
			if cdr["direction"] == direction && cdr["from"] == from && cdr["to"] == to && cdr["disposition"] == "answered" && cdr["endedBy"] == endedBy {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answered %s CDR %s → %s ended by %s in %s", direction, from, to, endedBy, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
