// Package testnode runs a real `telgw serve` for end-to-end tests and benchmarks: it builds the
// binary once per test process, starts it on ports the kernel picks (port 0 for HTTP, SIP and
// TURN, read back from the data directory's listeners.json), waits until /readyz answers and
// stops it when the test ends. It is the one harness the test trees share, so no test probes for
// a free port and binds it later (a race with every other package running in parallel).
package testnode

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// moduleRoot is the repository root, found from this file's location (tests run with the
// package directory as working directory, which differs per package).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Bin builds cmd/telgw once per process (into a temp dir removed at exit by Cleanup) and
// returns its path.
func Bin() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "telgw-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "telgw")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/telgw")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build telgw: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

// Options configures Start.
type Options struct {
	// Bin is the telgw binary; default Bin().
	Bin string
	// DataDir is reused across restarts; default a new temp dir.
	DataDir string
	// DatabaseURL selects PostgreSQL; empty is SQLite.
	DatabaseURL string
	// Config is YAML written to DataDir/telgw.yaml and passed as TELGW_CONFIG (none when empty).
	Config string
	// Env adds environment variables (they override the defaults Start sets).
	Env []string
	// Args replaces the command's arguments (default "serve").
	Args []string
	// KillAtEnd stops the node with SIGKILL when the test ends instead of SIGTERM and a
	// clean-exit check (tests that kill nodes on purpose).
	KillAtEnd bool
}

// Listeners are the addresses the node bound (internal/app.Listeners).
type Listeners struct {
	HTTP string `json:"http"`
	SIP  string `json:"sip"`
	TURN string `json:"turn"`
	// Metrics is set when metrics.addr is.
	Metrics string `json:"metrics"`
}

// Node is a running `telgw serve`.
type Node struct {
	// Endpoint is the ACS endpoint ("http://127.0.0.1:PORT/").
	Endpoint string
	// ConnString is the ACS connection string with the primary key.
	ConnString string
	// Key is the access key.
	Key []byte
	// DataDir is the node's data directory.
	DataDir string
	// Addrs are the bound listeners.
	Addrs Listeners

	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	logs bytes.Buffer
}

// Start runs `telgw serve` with HTTP, SIP and TURN on 127.0.0.1 port 0 (unless opts.Env says
// otherwise) and waits until it is ready; the node is stopped (SIGTERM) when the test ends.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	if o.Bin == "" {
		var err error
		if o.Bin, err = Bin(); err != nil {
			t.Fatal(err)
		}
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	// Files of a previous run in the same data dir (restart tests) must not be read as ours.
	_ = os.Remove(filepath.Join(o.DataDir, "connection-string"))
	_ = os.Remove(filepath.Join(o.DataDir, "listeners.json"))
	env := append(os.Environ(), "TELGW_DATA_DIR="+o.DataDir, "TELGW_HTTP_ADDR=127.0.0.1:0",
		"TELGW_DATABASE_URL="+o.DatabaseURL, "TELGW_SIP_ADDR=127.0.0.1:0", "TELGW_TURN_ADDR=127.0.0.1:0",
		"TELGW_LOG_LEVEL=warn")
	if o.Config != "" {
		p := filepath.Join(o.DataDir, "telgw.yaml")
		if err := os.WriteFile(p, []byte(o.Config), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "TELGW_CONFIG="+p)
	}
	env = append(env, o.Env...)
	args := o.Args
	if len(args) == 0 {
		args = []string{"serve"}
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = env
	n := &Node{DataDir: o.DataDir, cmd: cmd, done: make(chan error, 1)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n.mu.Lock()
			n.logs.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
		}
		n.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if o.KillAtEnd {
			n.Kill()
		} else {
			n.Stop(t)
		}
		if t.Failed() {
			t.Logf("telgw output:\n%s", n.Logs())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n.readFiles() && ready(n.Endpoint) {
			return n
		}
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("telgw exited: %v\n%s", err, n.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("telgw not ready within 60s\n%s", n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readFiles loads listeners.json (written last, atomically) and the connection string.
func (n *Node) readFiles() bool {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "listeners.json"))
	if err != nil || json.Unmarshal(b, &n.Addrs) != nil || n.Addrs.HTTP == "" {
		return false
	}
	cs, err := os.ReadFile(filepath.Join(n.DataDir, "connection-string"))
	if err != nil {
		return false
	}
	n.ConnString = strings.TrimSpace(string(cs))
	for _, part := range strings.Split(n.ConnString, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToLower(k) {
		case "endpoint":
			n.Endpoint = v
		case "accesskey":
			n.Key, _ = base64.StdEncoding.DecodeString(v)
		}
	}
	return n.Endpoint != "" && len(n.Key) > 0
}

var probe = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	TLSClientConfig: insecureTLS(), // readiness probe of a test server with a self-signed cert
}}

func ready(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	resp, err := probe.Get(endpoint + "readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Logs returns what the node printed so far.
func (n *Node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// Stop sends SIGTERM and waits for a clean exit (30 s, then SIGKILL and a test error).
func (n *Node) Stop(t testing.TB) {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-n.done:
		n.done <- err
		if err != nil {
			t.Errorf("telgw did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		t.Errorf("telgw did not stop within 30s of SIGTERM")
	}
}

// Drain sends SIGTERM, which makes telgw drain (no new calls, those in progress run to their
// end for up to http.shutdownTimeout), and waits up to max for a clean exit.
func (n *Node) Drain(t testing.TB, max time.Duration) {
	t.Helper()
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
		if err != nil {
			t.Errorf("telgw did not exit cleanly after draining: %v", err)
		}
	case <-time.After(max):
		_ = n.cmd.Process.Kill()
		t.Errorf("telgw did not stop within %s of SIGTERM", max)
	}
}

// Kill sends SIGKILL and waits (crash tests).
func (n *Node) Kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	err := <-n.done
	n.done <- err
}

// Pid is the process id of `telgw serve` (benchmarks read its CPU time).
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (n *Node) Exited() bool { return n.cmd.ProcessState != nil }

func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness probe of a local test server
}
