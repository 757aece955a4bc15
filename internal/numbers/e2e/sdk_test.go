// Package e2e runs the official @azure/communication-phone-numbers SDK (test/peers) against a
// real `telgw serve` on SQLite and on PostgreSQL, with inventory loaded by `telgw numbers import`.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/store/storetest"
	"github.com/telgw/telgw/internal/testnode"
)

var telgwBin string

func TestMain(m *testing.M) {
	var err error
	if telgwBin, err = testnode.Bin(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// goleak fails the run when a goroutine outlives the tests, then Cleanup removes the build.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testnode.Cleanup()
		os.Exit(code)
	}))
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

func TestSDK(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { runSDK(t, "") })
	t.Run("postgres", func(t *testing.T) { runSDK(t, storetest.NewPostgresDatabase(t)) })
}

func runSDK(t *testing.T, dbURL string) {
	peers := peersDir(t)
	dataDir := t.TempDir()
	env := append(os.Environ(), "TELGW_DATA_DIR="+dataDir, "TELGW_HTTP_ADDR=127.0.0.1:0", "TELGW_DATABASE_URL="+dbURL,
		"TELGW_SIP_ADDR=127.0.0.1:0", "TELGW_TURN_ADDR=127.0.0.1:0", "TELGW_LOG_LEVEL=warn")
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
	cs := testnode.Start(t, testnode.Options{Bin: telgwBin, DataDir: dataDir, DatabaseURL: dbURL}).ConnString
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

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
