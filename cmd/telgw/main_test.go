package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/testnode"
)

// TestMain fails the package's tests when a goroutine outlives them, then removes the binary
// testnode built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testnode.Cleanup()
		os.Exit(code)
	}))
}

// cli runs one command line in-process with a fresh SQLite data dir unless the caller set
// TELGW_DATA_DIR.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCLI(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	t.Setenv("TELGW_DATABASE_URL", "")
	if code, out, errOut := cli(t, "version"); code != 0 || !strings.HasPrefix(out, "telgw ") {
		t.Fatalf("version: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, out, errOut := cli(t); code != 2 || out != "" || !strings.Contains(errOut, "serve") {
		t.Fatalf("usage: %d %q %q", code, out, errOut)
	}
	t.Setenv("TELGW_HTTP_ADDR", "not-an-address")
	t.Setenv("TELGW_LOG_LEVEL", "chatty")
	if code, _, errOut := cli(t, "keys", "show"); code != 1 ||
		!strings.Contains(errOut, "http.addr") || !strings.Contains(errOut, "log.level") {
		t.Fatalf("bad config should name every key: %d %q", code, errOut)
	}
	// Commands that need no configuration work with a broken one.
	for _, args := range [][]string{{"version"}, {"completion", "bash"}, {"keys", "show", "--help"}, {"help", "numbers"}} {
		if code, out, errOut := cli(t, args...); code != 0 || out == "" || errOut != "" {
			t.Errorf("%v with a bad config: %d %q", args, code, errOut)
		}
	}
}

// walk calls f for every command of the tree, depth first, in help order.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

// TestHelpEveryCommand: --help (and -h) on every command prints its help to stdout, exits 0,
// and touches nothing: the data dir stays empty, so `telgw migrate --help` does not migrate.
func TestHelpEveryCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TELGW_DATA_DIR", dir)
	t.Setenv("TELGW_DATABASE_URL", "")
	var paths [][]string
	walk(newRoot(&cliEnv{}), func(c *cobra.Command) {
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
	})
	if len(paths) < 20 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string{}, p...), h)
			code, out, errOut := cli(t, args...)
			if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") {
				t.Errorf("telgw %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
	if code, out, _ := cli(t, "migrate", "--help"); code != 0 || strings.Contains(out, "migrated") {
		t.Fatalf("migrate --help: %d %q", code, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("--help wrote to the data dir: %v", ents)
	}
}

// TestHelpExamples runs every example in the help text, in tree order, against one fresh
// SQLite store: an example that does not work is a bug. The few that cannot run in a test
// say why.
func TestHelpExamples(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TELGW_DATA_DIR", dir)
	t.Setenv("TELGW_DATABASE_URL", "")
	t.Setenv("TELGW_CONFIG", "")
	skip := map[string]string{
		"serve":                  "runs until stopped (internal/testnode runs it)",
		"healthcheck":            "needs a running node (TestHealthcheck)",
		"messages show":          "needs a message id of this store",
		"numbers assign":         "needs a purchased number and that user (TestNumbersAssign)",
		"numbers route":          "needs a purchased number; numbers are bought over the ACS API (TestNumbersAssign)",
		"numbers unassign":       "needs a purchased number (TestNumbersAssign)",
		"tokens issue 8:acs:":    "needs that user (TestTokensIssue)",
		"sip credentials add":    "needs a purchased number (TestSIPCredentialsRealm)",
		"sip credentials delete": "needs the credential (TestSIPCredentialsRealm)",
	}
	ran := 0
	walk(newRoot(&cliEnv{}), func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			words, err := splitWords(line)
			if err != nil {
				t.Fatalf("example %q: %v", line, err)
			}
			for len(words) > 0 && strings.Contains(words[0], "=") { // VAR=value telgw …
				words = words[1:]
			}
			if len(words) == 0 || words[0] != "telgw" {
				t.Errorf("%s: example %q does not run telgw", c.CommandPath(), line)
				continue
			}
			cmdline := strings.Join(words[1:], " ")
			skipped := false
			for prefix, why := range skip {
				if strings.HasPrefix(cmdline, prefix) {
					t.Logf("skip %q: %s", line, why)
					skipped = true
				}
			}
			if skipped {
				continue
			}
			code, out, errOut := cli(t, words[1:]...)
			if code != 0 {
				t.Errorf("example %q: exit %d\nstdout: %s\nstderr: %s", line, code, out, errOut)
			}
			if strings.HasPrefix(cmdline, "numbers import --range +14252000100") && !strings.Contains(out, "imported 100 numbers, 0 already present, 0 invalid") {
				t.Errorf("example %q: %q", line, out)
			}
			ran++
		}
	})
	if ran < 15 {
		t.Fatalf("ran only %d examples", ran)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	t.Setenv("TELGW_DATABASE_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"numbers"}, "want a subcommand"},
		{[]string{"numbers", "frob"}, `unknown subcommand "frob"`},
		{[]string{"numbers", "list", "--bogus"}, "unknown flag"},
		{[]string{"numbers", "list", "--top", "many"}, "invalid argument"},
		{[]string{"numbers", "import"}, "want FILE.csv or --range"},
		{[]string{"numbers", "import", "a.csv", "--range", "+14252000100:+14252000101"}, "want FILE.csv or --range"},
		{[]string{"numbers", "route", "+14252000100"}, "want E164 ROUTE"},
		{[]string{"keys", "rotate", "tertiary"}, "primary or secondary"},
		{[]string{"tokens", "issue"}, "want USER"},
		{[]string{"tokens", "issue", "--new", "--expires-in", "5"}, "expiresInMinutes"},
		{[]string{"tokens", "issue", "--new", "--scope", "admin"}, "not a valid scope"},
		{[]string{"calls", "list", "--number", "pizza"}, ""},
		{[]string{"version", "extra"}, "no arguments"},
		{[]string{"completion", "tcsh"}, ""},
		{[]string{"healthcheck", "--url", "ftp://x"}, "want an http or https URL"},
	} {
		code, out, errOut := cli(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--help") && !strings.Contains(errOut, "Usage") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q on stderr", tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestSingleDashFlags: Go-flag-style long flags (-limit 5), as the CLI took before cobra, still work.
func TestSingleDashFlags(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	t.Setenv("TELGW_DATABASE_URL", "")
	if code, out, errOut := cli(t, "numbers", "import", "-range", "+14252000100:+14252000101"); code != 0 || !strings.Contains(out, "imported 2") {
		t.Fatalf("import -range: %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{{"calls", "-limit", "3"}, {"messages", "-status", "failed"}, {"numbers", "list", "-top=1", "-json"}} {
		if code, _, errOut := cli(t, args...); code != 0 {
			t.Errorf("%v: %d %q", args, code, errOut)
		}
	}
}

// TestJSONOutput: every list and show command takes --json and prints JSON objects, one a line
// (show prints one indented object).
func TestJSONOutput(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	t.Setenv("TELGW_DATABASE_URL", "")
	if code, _, errOut := cli(t, "numbers", "import", "--range", "+14252000100:+14252000101"); code != 0 {
		t.Fatal(errOut)
	}
	for _, args := range [][]string{
		{"numbers", "list", "--json"}, {"numbers", "show", "+14252000100", "--json"}, {"keys", "show", "--json"},
		{"version", "--json"}, {"tokens", "issue", "--new", "--json"},
		{"messages", "list", "--json"}, {"calls", "list", "--json"}, {"sip", "credentials", "list", "--json"},
	} {
		code, out, errOut := cli(t, args...)
		if code != 0 {
			t.Errorf("%v: %d %q", args, code, errOut)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				t.Errorf("%v: %v in %q", args, err, out)
				break
			}
		}
	}
}

// TestTokensIssue issues a voip token for a new user and for an existing one, both valid
// for the identity service of the same store; an unknown user fails.
func TestTokensIssue(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TELGW_DATA_DIR", dir)
	t.Setenv("TELGW_DATABASE_URL", "")
	code, out, errOut := cli(t, "tokens", "issue", "--new", "--json")
	var got struct{ Identity, Token, ExpiresOn string }
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || !strings.HasPrefix(got.Identity, "8:acs:") {
		t.Fatalf("issue --new: %d %q %q %v", code, out, errOut, err)
	}
	code, out, errOut = cli(t, "tokens", "issue", got.Identity, "--expires-in", "60")
	if code != 0 || !strings.Contains(out, "token:   ey") {
		t.Fatalf("issue USER: %d %q %q", code, out, errOut)
	}
	second := strings.TrimSpace(out[strings.Index(out, "token:")+len("token:"):])

	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := keys.NewRing(ctx, db, "", "")
	if err != nil {
		t.Fatal(err)
	}
	svc := identity.New(db, ring)
	for _, tok := range []string{got.Token, second} {
		c, err := svc.Verify(ctx, tok)
		if err != nil || c.Identity != got.Identity || !c.HasScope(identity.ScopeVoIP) {
			t.Fatalf("verify: %+v %v", c, err)
		}
	}
	ghost := "8:acs:" + ring.Current().ResourceID + "_00000000-0000-4000-8000-0000000000ff"
	if code, _, errOut := cli(t, "tokens", "issue", ghost); code != 1 || !strings.Contains(errOut, ghost) {
		t.Fatalf("unknown user: %d %q", code, errOut)
	}
}

// TestHealthcheck probes a /healthz that answers 200 and one that answers 503, by --url and
// by http.addr.
func TestHealthcheck(t *testing.T) {
	t.Setenv("TELGW_DATA_DIR", t.TempDir())
	t.Setenv("TELGW_DATABASE_URL", "")
	healthy := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	if code, out, errOut := cli(t, "healthcheck", "--url", srv.URL+"/healthz"); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("healthy: %d %q %q", code, out, errOut)
	}
	t.Setenv("TELGW_HTTP_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	if code, out, errOut := cli(t, "healthcheck"); code != 0 || !strings.Contains(out, srv.URL+"/healthz") {
		t.Fatalf("healthy by http.addr: %d %q %q", code, out, errOut)
	}
	healthy = false
	if code, _, errOut := cli(t, "healthcheck"); code != 1 || !strings.Contains(errOut, "503") {
		t.Fatalf("unhealthy: %d %q", code, errOut)
	}
	srv.Close()
	if code, _, errOut := cli(t, "healthcheck", "--timeout", "2s"); code != 1 || !strings.Contains(errOut, "unhealthy") {
		t.Fatalf("down: %d %q", code, errOut)
	}
}

// splitWords splits a shell command line at spaces, honouring single and double quotes (all
// the help examples use).
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
