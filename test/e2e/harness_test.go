// Package e2e runs telgw as users do — the real binary, `telgw serve` — against real peers:
// the official ACS SDKs from npm, SIPp, an SMSC, PostgreSQL. Shared helpers live here.
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var telgwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telgw-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	telgwBin = filepath.Join(dir, "telgw")
	out, err := exec.Command("go", "build", "-o", telgwBin, "../../cmd/telgw").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build telgw: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether missing peers must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// requirePeer skips (or, in CI, fails) when a peer program is missing.
func requirePeer(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if inCI() {
		t.Fatalf("%s is missing (CI=true: peers are required; run .ci/run)", what)
	}
	t.Skipf("%s is missing; run .ci/run to install test peers", what)
}

// requireNodePeers checks node and test/peers/node_modules.
func requireNodePeers(t testing.TB) string {
	t.Helper()
	_, err := exec.LookPath("node")
	requirePeer(t, err == nil, "node")
	dir, _ := filepath.Abs("../peers")
	_, err = os.Stat(filepath.Join(dir, "node_modules"))
	requirePeer(t, err == nil, "test/peers/node_modules (npm ci in test/peers)")
	return dir
}

// PostgresURL creates a fresh database for this test and drops it afterwards.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TELGW_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	db, err := sql.Open("pgx", admin)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if inCI() {
			t.Fatalf("PostgreSQL unreachable at %s (CI=true): %v", admin, err)
		}
		t.Skipf("PostgreSQL unreachable at %s: %v", admin, err)
	}
	name := fmt.Sprintf("telgw_e2e_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = db.Close()
	})
	i := strings.LastIndex(admin, "/")
	return admin[:i+1] + name
}

// Telgw is a running `telgw serve`.
type Telgw struct {
	Endpoint, ConnString, DataDir string
	cmd                           *exec.Cmd
	logs                          *logBuf
	done                          chan error
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Options configures StartTelgw.
type Options struct {
	// Postgres selects a fresh PostgreSQL database instead of SQLite.
	Postgres bool
	// DataDir reuses a data directory (restart tests); default a new temp dir.
	DataDir string
	// DatabaseURL reuses a database (restart tests).
	DatabaseURL string
	// Env adds TELGW_* variables.
	Env []string
}

// StartTelgw runs `telgw serve` on a free port and waits until /readyz answers.
func StartTelgw(t testing.TB, o Options) *Telgw {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Postgres && o.DatabaseURL == "" {
		o.DatabaseURL = PostgresURL(t)
	}
	addr := freeAddr(t)
	cmd := exec.Command(telgwBin, "serve")
	cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+o.DataDir, "TELGW_HTTP_ADDR="+addr,
		"TELGW_DATABASE_URL="+o.DatabaseURL, "TELGW_SIP_ADDR="+freeAddr(t), "TELGW_TURN_ADDR=127.0.0.1:0",
		"TELGW_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, o.Env...)
	tg := &Telgw{DataDir: o.DataDir, cmd: cmd, logs: &logBuf{}, done: make(chan error, 1)}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		tg.logs.mu.Lock()
		defer tg.logs.mu.Unlock()
		return tg.logs.b.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			tg.logs.mu.Lock()
			tg.logs.b.WriteString(sc.Text() + "\n")
			tg.logs.mu.Unlock()
		}
	}()
	go func() { tg.done <- cmd.Wait() }()
	t.Cleanup(func() {
		tg.Stop(t)
		if t.Failed() {
			t.Logf("telgw output:\n%s", tg.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(o.DataDir, "connection-string")); err == nil && strings.Contains(string(b), addr) {
			cs := strings.TrimSpace(string(b))
			endpoint := strings.TrimPrefix(strings.SplitN(cs, ";", 2)[0], "endpoint=")
			if ready(endpoint) {
				tg.ConnString, tg.Endpoint = cs, endpoint
				return tg
			}
		}
		select {
		case err := <-tg.done:
			tg.done <- err
			t.Fatalf("telgw exited: %v\n%s", err, tg.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("telgw not ready\n%s", tg.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (tg *Telgw) Stop(t testing.TB) {
	if tg.cmd.ProcessState != nil {
		return
	}
	_ = tg.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-tg.done:
		tg.done <- err
		if err != nil {
			t.Errorf("telgw did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = tg.cmd.Process.Kill()
		t.Errorf("telgw did not stop within 30s of SIGTERM")
	}
}

// Kill sends SIGKILL (crash tests).
func (tg *Telgw) Kill() {
	_ = tg.cmd.Process.Kill()
	err := <-tg.done
	tg.done <- err
}

// Logs returns what telgw printed so far.
func (tg *Telgw) Logs() string { return tg.logs.String() }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var probe = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of a test server
}}

func ready(endpoint string) bool {
	resp, err := probe.Get(endpoint + "readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// RunNode runs a node test file in test/peers with env, failing the test on failure.
func RunNode(t testing.TB, file string, env ...string) string {
	t.Helper()
	dir := requireNodePeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	return string(out)
}
