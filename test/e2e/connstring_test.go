package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestConnectionStringPrintedOnce: the connection string (it carries the access key) is
// printed when the key is generated, on the first start, and never again on later starts,
// whose output goes to journald or container logs; the file keeps it.
func TestConnectionStringPrintedOnce(t *testing.T) {
	dir := t.TempDir()
	tg := StartTelgw(t, Options{DataDir: dir})
	key := accessKey(t, tg.ConnString)
	if !waitLogs(tg, "listening on") || !strings.Contains(tg.Logs(), key) {
		t.Fatalf("first start did not print the new connection string:\n%s", tg.Logs())
	}
	tg.Stop(t)

	tg2 := StartTelgw(t, Options{DataDir: dir})
	if accessKey(t, tg2.ConnString) != key {
		t.Fatal("access key changed across restart")
	}
	if !waitLogs(tg2, "listening on") {
		t.Fatalf("no start-up line:\n%s", tg2.Logs())
	}
	if strings.Contains(tg2.Logs(), key) {
		t.Fatalf("a later start printed the access key:\n%s", tg2.Logs())
	}
	if !strings.Contains(tg2.Logs(), "connection-string") {
		t.Errorf("a later start does not say where the connection string is:\n%s", tg2.Logs())
	}
}

func accessKey(t *testing.T, conn string) string {
	t.Helper()
	_, key, ok := strings.Cut(conn, "accesskey=")
	if !ok || len(key) < 16 {
		t.Fatalf("no access key in %q", conn)
	}
	return key
}

// waitLogs waits up to 5s for telgw's output to contain s.
func waitLogs(tg *Telgw, s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(tg.Logs(), s) {
			return true
		}
	}
	return false
}
