// Package smsctest runs the npm `smpp` SMSC script (test/peers/smpp/smsc.mjs) for tests: a
// real SMSC that accepts binds, answers submit_sm, sends receipts and inbound deliver_sm.
package smsctest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// SMSC drives test/peers/smpp/smsc.mjs: the npm `smpp` package as a real SMSC.
type SMSC struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// Port is the listening port.
	Port int

	mu     sync.Mutex
	events []map[string]any
	notify chan struct{}
}

// Start runs the node SMSC with opts (see smsc.mjs). peers is the path of test/peers
// relative to the test's package. Without node or the npm packages it skips, unless CI=true,
// where a missing peer fails the run.
func Start(t *testing.T, peers string, opts map[string]any) *SMSC {
	t.Helper()
	root, _ := filepath.Abs(peers)
	script := filepath.Join(root, "smpp", "smsc.mjs")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(root, "node_modules", "smpp")); err != nil {
		missing = "npm package smpp is missing (run `npm ci` in test/peers)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SMSC peer unavailable: %s", missing)
		}
		t.Skipf("skipping: SMSC peer unavailable: %s", missing)
	}
	b, _ := json.Marshal(opts)
	cmd := exec.Command("node", script, string(b))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &SMSC{t: t, cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	ev := s.Wait("listening", nil, 10*time.Second)
	s.Port = int(ev["port"].(float64))
	return s
}

// Addr is the SMSC host:port.
func (s *SMSC) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Send writes one control command.
func (s *SMSC) Send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("smsc command: %v", err)
	}
}

// Events returns every event so far, in arrival order.
func (s *SMSC) Events() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.events...)
}

// All returns the events named ev so far.
func (s *SMSC) All(ev string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, e := range s.events {
		if e["ev"] == ev {
			out = append(out, e)
		}
	}
	return out
}

// Wait returns the first event named ev (matching pred) not consumed yet, failing the test
// after timeout.
func (s *SMSC) Wait(ev string, pred func(map[string]any) bool, timeout time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for i, e := range s.events {
			if e["ev"] == ev && (pred == nil || pred(e)) && e["_seen"] == nil {
				s.events[i]["_seen"] = true
				s.mu.Unlock()
				return e
			}
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			s.mu.Lock()
			b, _ := json.Marshal(s.events)
			s.mu.Unlock()
			s.t.Fatalf("no %q event from the SMSC within %v; events: %s", ev, timeout, b)
		}
	}
}
