package browser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/testnode"
)

// The SIP parties of the console test sit on loopback addresses of their own, so telgw tells
// them apart by source (as on a real network) and their probed ports collide with no other
// package's.
const (
	consoleCarrierIP = "127.0.0.31"
	consolePBXIP     = "127.0.0.32"
	// rejectedDest is refused by the SMSC (ESME_RINVDSTADR).
	rejectedDest = "+12065550199"
)

// consoleResult is console.mjs's JSON report.
type consoleResult struct {
	Number       string   `json:"number"`
	Route        string   `json:"route"`
	Steps        []string `json:"steps"`
	MessageID    string   `json:"messageId"`
	MessageError string   `json:"messageError"`
	Timeline     string   `json:"timeline"`
	Delivery     string   `json:"delivery"`
	Error        string   `json:"error"`
}

// TestConsole drives the operator console in headless Chromium against a real `telgw serve`
// with an SMPP carrier (the npm smpp SMSC, refusing one destination) and a SIP trunk:
// sign-in is refused with a wrong key and works with the access key and, once, with the link
// `telgw console link` prints; a number bought through the ACS SDK appears on the numbers
// page; its route, edited in the page, takes effect on the next call (a SIPp carrier calls the
// number and a SIPp PBX at the new route URI answers); an SMS the SMSC refuses shows as failed
// with the carrier's error on the messages page and in the message's timeline, and its
// delivery report's webhook, refused by the subscriber, on the webhooks page with "Retry now".
func TestConsole(t *testing.T) {
	chromium := Require(t)
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp is missing (apt-get install -y sip-tester)")
		}
		t.Skip("sipp is missing (apt-get install -y sip-tester)")
	}
	smsc := smsctest.Start(t, filepath.Join(Dir(), "..", "peers"), map[string]any{"rejectDest": []string{strings.TrimPrefix(rejectedDest, "+")}})
	// A webhook subscriber that is down (503): its deliveries fail and wait for a retry.
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer hook.Close()
	trunkPort, callerPort, pbxPort := freeUDPPort(t, consoleCarrierIP), freeUDPPort(t, consoleCarrierIP), freeUDPPort(t, consolePBXIP)
	cfg := fmt.Sprintf(`sip:
  trunks:
    - name: carrier1
      address: %s:%d
      inbound: {allow: ["%s/32"]}
sms:
  carriers:
    - name: smsc1
      smpp: {address: %q, systemId: telgw, password: secret}
webhooks:
  subscribers:
    - url: %q
      secret: a-secret
`, consoleCarrierIP, trunkPort, consoleCarrierIP, smsc.Addr(), hook.URL)
	n := testnode.Start(t, testnode.Options{Config: cfg, Env: []string{"TELGW_WEBHOOKS_ALLOW_PRIVATE=true"}})
	smsc.Wait("bind", nil, 10*time.Second)

	// Stock the inventory the SDK buys from (operator API, signed with the access key).
	var csv strings.Builder
	csv.WriteString("phoneNumber,phoneNumberType,calling,sms,locality,administrativeDivision,carrier,monthlyCost\n")
	for i := range 5 {
		fmt.Fprintf(&csv, "+1425200000%d,geographic,inbound+outbound,inbound+outbound,Bellevue,WA,smsc1,1\n", i)
	}
	if st := signed(t, n, "POST", "/telgw/numbers:import", "text/csv", []byte(csv.String())); st/100 != 2 {
		t.Fatalf("import: HTTP %d", st)
	}

	// A single-use link from the CLI, against the node's store.
	bin, _ := testnode.Bin()
	cmd := exec.Command(bin, "console", "link", "-url", n.Endpoint)
	cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+n.DataDir, "TELGW_DATABASE_URL=", "TELGW_LOG_LEVEL=warn")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("telgw console link: %v", err)
	}
	link := strings.TrimSpace(string(out))
	if !strings.HasPrefix(link, n.Endpoint+"console/link#") {
		t.Fatalf("link %q", link)
	}

	node := exec.Command("node", filepath.Join(Dir(), "console.mjs"))
	node.Env = append(os.Environ(), "CHROMIUM="+chromium, "CONSOLE_URL="+n.Endpoint, "CONSOLE_CS="+n.ConnString,
		"CONSOLE_KEY="+base64.StdEncoding.EncodeToString(n.Key), "CONSOLE_LINK="+link, "CONSOLE_AREA=425",
		"CONSOLE_PBX="+net.JoinHostPort(consolePBXIP, strconv.Itoa(pbxPort)), "CONSOLE_REJECTED="+rejectedDest, "CONSOLE_WEBHOOK=1")
	var stdout, stderr bytes.Buffer
	node.Stdout, node.Stderr = &stdout, &stderr
	runErr := node.Run()
	var res consoleResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil || runErr != nil || res.Error != "" {
		t.Fatalf("console.mjs: %v %v\nresult: %s\nstderr: %s\nnode log: %s", runErr, err, stdout.String(), tail(stderr.String(), 2000), tail(n.Logs(), 3000))
	}
	for _, s := range res.Steps {
		t.Log("browser: " + s)
	}
	if !strings.Contains(res.MessageError, "0x0000000b") && !strings.Contains(res.MessageError, "RINVDSTADR") {
		t.Errorf("messages page shows error %q, want the SMSC's ESME_RINVDSTADR (0x0000000b)", res.MessageError)
	}
	if !strings.Contains(res.Delivery, "503") || hits.Load() == 0 {
		t.Errorf("webhooks page shows delivery %q (subscriber hit %d times), want the subscriber's 503", res.Delivery, hits.Load())
	}
	if !strings.Contains(res.Timeline, "queued") || !strings.Contains(res.Timeline, "failed") || !strings.Contains(res.Timeline, res.MessageError) {
		t.Errorf("timeline %q, want queued → failed with %q", res.Timeline, res.MessageError)
	}

	// The route edited in the page takes effect on the next call: the carrier calls the
	// number and the PBX at the new route URI answers.
	dir := sippScenarios(t)
	pbx := startSIPp(t, sipp, dir, "-sf", "uas.xml", "-i", consolePBXIP, "-p", strconv.Itoa(pbxPort), "-m", "1",
		"-rtp_echo", "-mp", strconv.Itoa(freeUDPPort(t, consolePBXIP)))
	caller := startSIPp(t, sipp, dir, n.Addrs.SIP, "-sf", "uac.xml", "-i", consoleCarrierIP, "-p", strconv.Itoa(callerPort),
		"-s", res.Number, "-key", "caller", "+12065550100", "-m", "1", "-d", "1000", "-mp", strconv.Itoa(freeUDPPort(t, consoleCarrierIP)))
	caller(t, 30*time.Second)
	pbx(t, 30*time.Second)
}

// signed sends an ACS HMAC-signed request to the node and returns the status.
func signed(t *testing.T, n *testnode.Node, method, path, contentType string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, n.Endpoint+strings.TrimPrefix(path, "/"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	api.Sign(n.Key, method, req.URL.RequestURI(), req.URL.Host, body, time.Now(), req.Header)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// freeUDPPort returns a UDP port on ip that was free a moment ago (SIPp cannot listen on
// port 0 and report it; ip is this test's own loopback address).
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippScenarios copies the SIPp scenarios (test/sipp) and the μ-law audio uac.xml streams into
// a temp dir.
func sippScenarios(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"uac.xml", "uas.xml"} {
		b, err := os.ReadFile(filepath.Join(Dir(), "..", "sipp", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tone.ul"), bytes.Repeat([]byte{0xff, 0x7f}, 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startSIPp runs SIPp in dir; the returned wait fails the test unless SIPp exits 0 in time.
func startSIPp(t *testing.T, sipp, dir string, args ...string) func(*testing.T, time.Duration) {
	t.Helper()
	cmd := exec.Command(sipp, append(args, "-nostdin", "-timeout", "40s", "-timeout_error", "-trace_err")...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return func(t *testing.T, d time.Duration) {
		t.Helper()
		select {
		case err := <-done:
			done <- err // for the cleanup
			if err != nil {
				logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
				var errs []string
				for _, l := range logs {
					b, _ := os.ReadFile(l)
					errs = append(errs, string(b))
				}
				t.Fatalf("sipp %v: %v\n%s\n%s", args, err, tail(out.String(), 3000), strings.Join(errs, "\n"))
			}
		case <-time.After(d):
			t.Fatalf("sipp %v still running\n%s", args, tail(out.String(), 3000))
		}
	}
}
