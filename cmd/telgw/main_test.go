package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCLI(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "telgw ") {
		t.Fatalf("version: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "serve") {
		t.Fatalf("usage: %d %q", code, errOut.String())
	}
	errOut.Reset()
	t.Setenv("TELGW_HTTP_ADDR", "not-an-address")
	t.Setenv("TELGW_LOG_LEVEL", "chatty")
	if code := run([]string{"version"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "http.addr") || !strings.Contains(errOut.String(), "log.level") {
		t.Fatalf("bad config should name every key: %d %q", code, errOut.String())
	}
}
