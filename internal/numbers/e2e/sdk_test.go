// Package e2e runs the official @azure/communication-phone-numbers SDK (test/peers) against a
// real `telgw serve` on SQLite and on PostgreSQL, with inventory loaded by `telgw numbers import`.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/store/storetest"
)

var telgwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telgw-numbers-e2e-")
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

func peersDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../../test/peers")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@azure", "communication-phone-numbers"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or test/peers/node_modules missing (CI=true): %v %v", nodeErr, modErr)
		}
		t.Skipf("node or test/peers/node_modules missing (npm ci in test/peers): %v %v", nodeErr, modErr)
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestSDK(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { runSDK(t, "") })
	t.Run("postgres", func(t *testing.T) { runSDK(t, storetest.NewPostgresDatabase(t)) })
}

func runSDK(t *testing.T, dbURL string) {
	peers := peersDir(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	env := append(os.Environ(), "TELGW_DATA_DIR="+dataDir, "TELGW_HTTP_ADDR="+addr, "TELGW_DATABASE_URL="+dbURL,
		"TELGW_SIP_ADDR="+freeAddr(t), "TELGW_TURN_ADDR=127.0.0.1:0", "TELGW_LOG_LEVEL=warn")
	cli := func(args ...string) string {
		cmd := exec.Command(telgwBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("telgw %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// One block before the server starts, the others while it runs (imports are online).
	cli("numbers", "import", "--range", "+14252000000:+14252000099", "--carrier", "carrier-a")
	srv := exec.Command(telgwBin, "serve")
	srv.Env = env
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
		}
		if t.Failed() {
			t.Logf("telgw output:\n%s", logs.String())
		}
	})
	cs := waitReady(t, dataDir, addr, done)
	cli("numbers", "import", "--range", "+12062000000:+12062000009", "--carrier", "carrier-a")
	csv := filepath.Join(t.TempDir(), "tf.csv")
	var b strings.Builder
	b.WriteString("phoneNumber,carrier\n")
	for i := range 20 {
		fmt.Fprintf(&b, "+1888200%04d,carrier-b\n", i)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli("numbers", "import", csv); !strings.Contains(out, "imported 20") {
		t.Fatalf("csv import: %s", out)
	}
	if out := cli("numbers", "import", csv); !strings.Contains(out, "imported 0 numbers, 20 already present") {
		t.Fatalf("re-import: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "--test", "--test-concurrency=1", "numbers.test.mjs")
	node.Dir = peers
	node.Env = append(os.Environ(), "TELGW_CONNECTION_STRING="+cs)
	out, err := node.CombinedOutput()
	if err != nil {
		t.Fatalf("node numbers.test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", lastLines(string(out), 10))
}

func waitReady(t *testing.T, dataDir, addr string, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("telgw exited: %v", err)
		default:
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "connection-string"))
		if err == nil && strings.Contains(string(b), addr) {
			if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return strings.TrimSpace(string(b))
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("telgw not ready within 60s")
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
