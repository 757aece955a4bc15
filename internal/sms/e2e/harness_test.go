// Package e2e runs the SMS gateway as users do: the real `telgw serve` binary, the npm smpp
// SMSC, a signature-checking webhook receiver and signed ACS REST calls.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/store/storetest"
)

const peers = "../../../test/peers"

var telgwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telgw-sms-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	telgwBin = filepath.Join(dir, "telgw")
	if out, err := exec.Command("go", "build", "-o", telgwBin, "../../../cmd/telgw").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build telgw: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// node is a running telgw.
type node struct {
	t        testing.TB
	endpoint string
	key      []byte
	cmd      *exec.Cmd
	done     chan error
	mu       sync.Mutex
	logs     bytes.Buffer
	http     *http.Client
}

type nodeOpts struct {
	dataDir, dbURL, smsc string
	webhooks             []string // receiver URLs, secret "a-secret"
	window               int
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNode writes a config and runs `telgw serve` until ready.
func startNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	if o.window == 0 {
		o.window = 10
	}
	cfg := fmt.Sprintf("sms:\n  carriers:\n    - name: smsc1\n      smpp: {address: %q, systemId: telgw, password: secret, window: %d, systemType: telgw}\n", o.smsc, o.window)
	if len(o.webhooks) > 0 {
		cfg += "webhooks:\n"
		for _, u := range o.webhooks {
			cfg += fmt.Sprintf("  - url: %q\n    secret: a-secret\n", u)
		}
	}
	cfgPath := filepath.Join(o.dataDir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	_ = os.Remove(filepath.Join(o.dataDir, "connection-string"))
	cmd := exec.Command(telgwBin, "serve")
	cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+o.dataDir, "TELGW_HTTP_ADDR="+addr, "TELGW_DATABASE_URL="+o.dbURL,
		"TELGW_SIP_ADDR="+freeAddr(t), "TELGW_TURN_ADDR=127.0.0.1:0", "TELGW_CONFIG="+cfgPath, "TELGW_LOG_LEVEL=warn")
	n := &node{t: t, cmd: cmd, done: make(chan error, 1), http: &http.Client{Timeout: 30 * time.Second}}
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.mu.Lock()
			n.logs.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
		}
		n.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.mu.Lock()
			t.Logf("telgw output:\n%s", n.logs.String())
			n.mu.Unlock()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(o.dataDir, "connection-string"))
		if err == nil && strings.Contains(string(b), addr) {
			for _, part := range strings.Split(strings.TrimSpace(string(b)), ";") {
				k, v, _ := strings.Cut(part, "=")
				switch k {
				case "endpoint":
					n.endpoint = v
				case "accesskey":
					n.key, _ = base64.StdEncoding.DecodeString(v)
				}
			}
			if resp, err := n.http.Get(n.endpoint + "readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return n
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t.Fatalf("telgw not ready:\n%s", n.logs.String())
	return nil
}

// keyB64 is the access key as the connection string carries it.
func (n *node) keyB64() string { return base64.StdEncoding.EncodeToString(n.key) }

// kill sends SIGKILL and waits.
func (n *node) kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.done <- nil
}

// do sends a signed request and decodes a JSON reply into out (if non-nil).
func (n *node) do(method, path string, body, out any) int {
	n.t.Helper()
	st, ok := n.tryDo(method, path, body, out)
	if !ok {
		n.t.Fatalf("%s %s: no response", method, path)
	}
	return st
}

// tryDo is do without failing on transport errors (a killed node).
func (n *node) tryDo(method, path string, body, out any) (int, bool) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, n.endpoint+strings.TrimPrefix(path, "/"), bytes.NewReader(b))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	api.Sign(n.key, method, req.URL.RequestURI(), req.URL.Host, b, time.Now(), req.Header)
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	if out != nil && len(rb) > 0 {
		if err := json.Unmarshal(rb, out); err != nil {
			return resp.StatusCode, false
		}
	}
	return resp.StatusCode, true
}

// receiver is a webhook subscriber that checks Standard Webhooks signatures.
type receiver struct {
	mu     sync.Mutex
	events []events.Event
	down   bool
	status int // answered when down (default 503)
	bad    int // deliveries with bad signatures
	notify chan struct{}
}

func newReceiver(t testing.TB) (*receiver, string) {
	r := &receiver{notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, "http://" + ln.Addr().String() + "/events"
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		st := r.status
		if st == 0 {
			st = http.StatusServiceUnavailable
		}
		w.WriteHeader(st)
		return
	}
	if err := events.Verify("a-secret", req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var evs []events.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.events = append(r.events, evs...)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *receiver) setDown(down bool, status int) {
	r.mu.Lock()
	r.down, r.status = down, status
	r.mu.Unlock()
}

// wait returns the first event of type typ whose data satisfies pred.
func (r *receiver) wait(t testing.TB, typ string, pred func(data map[string]any) bool, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.EventType != typ {
				continue
			}
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			if pred == nil || pred(d) {
				r.mu.Unlock()
				return d
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s event within %v (got %d events, %d badly signed)", typ, timeout, len(r.events), r.bad)
		}
	}
}

// postgres returns a fresh PostgreSQL database URL (skip, or fail in CI, when unreachable).
func postgres(t testing.TB) string { return storetest.NewPostgresDatabase(t) }

var _ = context.Background
