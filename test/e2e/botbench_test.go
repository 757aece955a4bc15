package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/events"
)

// TestBenchBotCalls is the Call Automation benchmark of the closing notes (issue "Call
// Automation, part 1"), on a real `telgw serve` with SIPp as the carrier and an app server
// that answers every IncomingCall at once over the signed REST API:
//
//   - IncomingCall latency: the event's eventTime (telgw stamps the INVITE's arrival) to the
//     app's webhook receiving it, p50/p99, over BENCH_BOT_CALLS calls placed one at a time
//     from many callers (SIPp at BENCH_BOT_RATE calls/s, each held 1 s).
//   - answerCall latency: the app's POST :answer to its 200, which telgw sends once the caller
//     has the 200 and acknowledged it (the answer reached the carrier), p50/p99.
//   - BENCH_BOT_CONCURRENT bot-answered calls held BENCH_BOT_HOLD (100 and 30 s): failures.
//
// Run: TELGW_BENCH_BOT=1 go test ./test/e2e -run TestBenchBotCalls -v -timeout 20m
// (BENCH_BOT_STORES=sqlite,postgres picks the stores).
func TestBenchBotCalls(t *testing.T) {
	if os.Getenv("TELGW_BENCH_BOT") == "" {
		t.Skip("benchmark: set TELGW_BENCH_BOT=1")
	}
	sippBin(t)
	stores := envOr("BENCH_BOT_STORES", "sqlite,postgres")
	for _, st := range []string{"sqlite", "postgres"} {
		if !bytes.Contains([]byte(","+stores+","), []byte(","+st+",")) {
			continue
		}
		t.Run(st, func(t *testing.T) { benchBot(t, st == "postgres") })
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// answeringApp is an app that answers every IncomingCall as soon as its webhook receives it,
// recording the event latency and the answer's round trip.
type answeringApp struct {
	url     string
	c       *Client
	hc      *http.Client
	mu      sync.Mutex
	evLat   []time.Duration
	ansLat  []time.Duration
	failed  []string
	connect int
	discon  int
	wg      sync.WaitGroup
}

func newAnsweringApp(t *testing.T, c *Client) *answeringApp {
	t.Helper()
	a := &answeringApp{c: c, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 60 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.url = "http://" + ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(a.serve)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { a.wg.Wait(); _ = srv.Close() })
	return a
}

func (a *answeringApp) serve(w http.ResponseWriter, r *http.Request) {
	got := time.Now()
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/events":
		if events.AnswerValidation(w, body) {
			return
		}
		var evs []struct {
			EventType string    `json:"eventType"`
			EventTime time.Time `json:"eventTime"`
			Data      struct {
				IncomingCallContext string `json:"incomingCallContext"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &evs)
		for _, ev := range evs {
			if ev.EventType != events.TypeIncomingCall {
				continue
			}
			a.mu.Lock()
			a.evLat = append(a.evLat, got.Sub(ev.EventTime))
			a.mu.Unlock()
			a.wg.Add(1)
			go a.answer(ev.Data.IncomingCallContext)
		}
	case "/callbacks":
		var evs []struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &evs)
		a.mu.Lock()
		for _, ev := range evs {
			switch ev.Type {
			case "Microsoft.Communication.CallConnected":
				a.connect++
			case "Microsoft.Communication.CallDisconnected":
				a.discon++
			}
		}
		a.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (a *answeringApp) answer(ctxToken string) {
	defer a.wg.Done()
	b, _ := json.Marshal(map[string]string{"incomingCallContext": ctxToken, "callbackUri": a.url + "/callbacks"})
	req, _ := http.NewRequest("POST", a.c.Base.String()+"calling/callConnections:answer?api-version=2025-05-15", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	api.Sign(a.c.Key, "POST", req.URL.RequestURI(), req.URL.Host, b, time.Now(), req.Header)
	start := time.Now()
	resp, err := a.hc.Do(req)
	d := time.Since(start)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed = append(a.failed, err.Error())
		return
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.failed = append(a.failed, fmt.Sprintf("answer %d %s", resp.StatusCode, rb))
		return
	}
	a.ansLat = append(a.ansLat, d)
}

func (a *answeringApp) reset() {
	a.mu.Lock()
	a.evLat, a.ansLat, a.failed, a.connect, a.discon = nil, nil, nil, 0, 0
	a.mu.Unlock()
}

func quantile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

func benchBot(t *testing.T, pg bool) {
	const botNumber = "+14252000199"
	dir := t.TempDir()
	carrierPort := freePortOn(t, carrierIP)
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n    - name: carrier1\n      address: %s:%d\n      cps: 1000\n      inbound: {allow: [\"%s/32\"]}\n",
		carrierIP, carrierPort, carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Postgres: pg, Env: []string{"TELGW_CONFIG=" + cfgPath, "TELGW_LOG_LEVEL=warn"}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	app := newAnsweringApp(t, c)
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + app.url + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": app.url + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	run := func(calls, rate, limit, holdMS int) {
		t.Helper()
		app.reset()
		wait := sippRun(t, scenarioCopy(t), tg.Addrs.SIP, "-sf", "uac.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
			"-s", botNumber, "-key", "caller", pstnNumber, "-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(limit),
			"-d", strconv.Itoa(holdMS), "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
		wait(time.Duration(calls/rate+holdMS/1000+120) * time.Second)
		deadline := time.Now().Add(20 * time.Second)
		for {
			app.mu.Lock()
			done := app.discon >= calls
			app.mu.Unlock()
			if done || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Latency: one call at a time from many callers (SIPp's call numbers), held 1 s.
	calls := envInt("BENCH_BOT_CALLS", 200)
	run(calls, envInt("BENCH_BOT_RATE", 10), calls, 1000)
	app.mu.Lock()
	t.Logf("latency, %d calls at %d/s: IncomingCall p50 %v p99 %v; answerCall p50 %v p99 %v; answered %d, CallConnected %d, CallDisconnected %d, failed %d %v",
		calls, envInt("BENCH_BOT_RATE", 10), quantile(app.evLat, .5), quantile(app.evLat, .99), quantile(app.ansLat, .5), quantile(app.ansLat, .99),
		len(app.ansLat), app.connect, app.discon, len(app.failed), app.failed[:min(len(app.failed), 3)])
	if len(app.failed) > 0 || app.discon < calls {
		t.Errorf("latency run: %d failed answers, %d/%d CallDisconnected", len(app.failed), app.discon, calls)
	}
	app.mu.Unlock()

	// Concurrency: BENCH_BOT_CONCURRENT calls up at once, held BENCH_BOT_HOLD seconds.
	n, hold := envInt("BENCH_BOT_CONCURRENT", 100), envInt("BENCH_BOT_HOLD", 30)
	run(n, 50, n, hold*1000)
	app.mu.Lock()
	t.Logf("concurrency: %d calls held %d s: answered %d, CallConnected %d, CallDisconnected %d, failed %d %v; answerCall p99 %v",
		n, hold, len(app.ansLat), app.connect, app.discon, len(app.failed), app.failed[:min(len(app.failed), 3)], quantile(app.ansLat, .99))
	if len(app.failed) > 0 || app.discon < n {
		t.Errorf("concurrency run: %d failed answers, %d/%d CallDisconnected", len(app.failed), app.discon, n)
	}
	app.mu.Unlock()
}
