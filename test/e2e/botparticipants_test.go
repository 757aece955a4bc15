package e2e

import (
	"bufio"
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
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
)

// TestBotParticipantsSDK: a bot written with the npm @azure/communication-call-automation
// 1.6.0 SDK (test/peers/callautomation_participants.mjs) controls carrier calls (SIPp) on a
// real telgw serve: it adds a participant who rings and cancels it (CANCEL to a SIPp callee),
// adds one who answers (SIPp echoing RTP: the two people's media is relayed through telgw),
// lists and gets participants, mutes the caller (telgw drops its audio), removes the
// participant (BYE), fails to add a number no route reaches; on a second call it fails to
// transfer to such a number and then transfers the caller to the participant's number: the
// app's connection ends (404) while caller and target keep talking. Callback field names are
// checked by the SDK's own parser; CDRs show each leg. Both stores.
func TestBotParticipantsSDK(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) { botParticipantsSDK(t, pg) })
	}
}

func botParticipantsSDK(t *testing.T, postgres bool) {
	sippBin(t)
	peers := requireNodePeers(t)
	const (
		botNumber  = "+14252000143"
		farNumber  = "+12025550142"
		ringNumber = "+12025550143"
	)
	farPort, ringPort := freePortOn(t, carrierIP), freePortOn(t, carrierIP)
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n"+
		"    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n"+
		"    - name: carrier2\n      address: %s:%d\n", carrierIP, farPort, carrierIP, carrierIP, ringPort)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Postgres: postgres, Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	routes := map[string]any{"routes": []map[string]any{
		{"name": "ring", "numberPattern": `\+12025550143`, "trunks": []string{"carrier2"}},
		{"name": "us", "numberPattern": `\+1[2-9]\d{9}`, "trunks": []string{"carrier1"}},
	}}
	if r := c.Do(t, "PATCH", "/sip?"+sipRoutingV, routes, func(req *http.Request) {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}); r.Status != http.StatusOK {
		t.Fatalf("sip routes: %d %s", r.Status, r.Body)
	}

	// The app.
	app := startNodeApp(t, peers, "callautomation_participants.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString,
		"CALLER_NUMBER="+pstnNumber, "FAR_NUMBER="+farNumber, "RING_NUMBER="+ringNumber)
	appURL := app.wait(t, "APP_URL=")
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + appURL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": appURL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}

	// The far side: one SIPp callee answering twice (the added participant, then the
	// transfer's target) and echoing RTP, one that only rings.
	sc := scenarioCopy(t)
	far := sippRunFor(t, sc, 120*time.Second, "-sf", "uas.xml", "-i", carrierIP, "-p", strconv.Itoa(farPort), "-m", "2", "-rtp_echo",
		"-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	ring := sippRunFor(t, sc, 120*time.Second, "-sf", "uas_ring.xml", "-i", carrierIP, "-p", strconv.Itoa(ringPort), "-m", "1")
	time.Sleep(200 * time.Millisecond)

	// Call 1: participants. The caller talks (RTP) for 14 s.
	caller1 := sippRunFor(t, sc, 90*time.Second, tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-d", "14000", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	app.wait(t, "MUTED")
	if n := labeledMetric(t, tg.Endpoint, "telgw_callautomation_media_packets_total", `result="relayed"`); n < 50 {
		t.Errorf("RTP relayed between caller and participant: %v packets", n)
	}
	if n := labeledMetric(t, tg.Endpoint, "telgw_callautomation_media_packets_total", `result="muted"`); n < 10 {
		t.Errorf("RTP of the muted caller dropped: %v packets", n)
	}
	app.wait(t, "CALL1 OK")
	caller1(30 * time.Second)
	ring(30 * time.Second)

	// Call 2: transfer.
	caller2 := sippRunFor(t, sc, 90*time.Second, tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-d", "9000", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	app.wait(t, "CALL2 OK")
	before := labeledMetric(t, tg.Endpoint, "telgw_callautomation_media_packets_total", `result="relayed"`)
	deadline := time.Now().Add(10 * time.Second)
	for labeledMetric(t, tg.Endpoint, "telgw_callautomation_media_packets_total", `result="relayed"`) < before+50 {
		if time.Now().After(deadline) {
			t.Fatal("no RTP relayed between the transferred caller and the target")
		}
		time.Sleep(100 * time.Millisecond)
	}
	caller2(30 * time.Second)
	far(30 * time.Second) // both its calls ended with a BYE from telgw
	app.exit(t)

	checkCDR(t, c, "inbound", pstnNumber, botNumber, "caller")
	checkCDR(t, c, "outbound", botNumber, farNumber, "caller")
	for _, op := range []string{"addParticipant", "removeParticipant", "mute", "cancelAddParticipant", "getParticipants", "getParticipant", "transferToParticipant"} {
		if n := labeledMetric(t, tg.Endpoint, "telgw_callautomation_operations_total", `operation="`+op+`",result="ok"`); n < 1 {
			t.Errorf("telgw_callautomation_operations_total{operation=%q,result=\"ok\"} = %v", op, n)
		}
	}
}

// nodeApp is a node program in test/peers running alongside the test; its stdout lines are
// collected so the test can wait for markers.
type nodeApp struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	line chan string
	done chan error
}

func startNodeApp(t *testing.T, dir, file string, env ...string) *nodeApp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "node", file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	a := &nodeApp{cmd: cmd, line: make(chan string, 1000), done: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{a: a}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			a.mu.Lock()
			a.out.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			a.line <- sc.Text()
		}
		a.done <- cmd.Wait()
		close(a.line)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	return a
}

type lockedWriter struct{ a *nodeApp }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.a.mu.Lock()
	defer w.a.mu.Unlock()
	return w.a.out.Write(p)
}

func (a *nodeApp) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// wait waits for a line starting with prefix and returns the rest of it.
func (a *nodeApp) wait(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-a.line:
			if !ok {
				t.Fatalf("node app exited before %q:\n%s", prefix, a.output())
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-timeout:
			t.Fatalf("node app: no %q within a minute:\n%s", prefix, a.output())
		}
	}
}

// exit waits for the app to end and fails the test unless it succeeded.
func (a *nodeApp) exit(t *testing.T) {
	t.Helper()
	for range a.line {
	}
	if err := <-a.done; err != nil {
		t.Fatalf("node app: %v\n%s", err, a.output())
	}
}

// sippRunFor starts SIPp in dir, giving up after d (-timeout); the wait function it returns
// fails the test unless SIPp reports success.
func sippRunFor(t *testing.T, dir string, d time.Duration, args ...string) func(time.Duration) {
	t.Helper()
	cmd := exec.Command(sippBin(t), append(args, "-nostdin", "-timeout", fmt.Sprintf("%ds", int(d.Seconds())), "-timeout_error", "-trace_err")...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func(w time.Duration) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
				var errs []string
				for _, l := range logs {
					b, _ := os.ReadFile(l)
					errs = append(errs, string(b))
				}
				t.Fatalf("sipp %v: %v\n%s\n%s", args, err, out.String(), strings.Join(errs, "\n"))
			}
		case <-time.After(w):
			t.Fatalf("sipp %v still running\n%s", args, out.String())
		}
	}
}

// labeledMetric sums the series of a metric whose labels contain sel (e.g. `result="ok"`).
func labeledMetric(t *testing.T, endpoint, name, sel string) float64 {
	t.Helper()
	res, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") || !strings.Contains(l, sel) {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			f, _ := strconv.ParseFloat(l[i+1:], 64)
			sum += f
		}
	}
	return sum
}
