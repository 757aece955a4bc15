// Package browser runs telgw's softphone page in Debian's headless Chromium (driven by
// playwright-core from test/peers, see phone.mjs) against a telgw URL, and reports what the
// browser saw: registration, call status and getStats() RTP counters. Tests in other packages
// (test/e2e) call Run; missing peers skip the test, or fail it when CI=true.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Options describes one softphone run.
type Options struct {
	// URL is the page, e.g. tg.Endpoint + "phone/".
	URL string
	// Token is a user access token with the voip scope.
	Token string
	// Mode is "call" (dial Number) or "answer" (wait for an incoming call). Default "call".
	Mode string
	// Number is dialled in call mode.
	Number string
	// DTMF digits are sent as RFC 4733 events once the call is up.
	DTMF string
	// Talk is how long the call stays up. Default 3s.
	Talk time.Duration
	// Hangup is "local" (the page hangs up, default) or "remote" (wait for the far end's BYE).
	Hangup string
	// Timeout bounds each wait inside the page. Default 20s.
	Timeout time.Duration
}

// Stats are the page's getStats() audio counters (W3C webrtc-stats inbound-rtp/outbound-rtp).
type Stats struct {
	PacketsReceived int64  `json:"packetsReceived"`
	PacketsSent     int64  `json:"packetsSent"`
	BytesReceived   int64  `json:"bytesReceived"`
	BytesSent       int64  `json:"bytesSent"`
	Codec           string `json:"codec"`
}

// Result is phone.mjs's JSON report.
type Result struct {
	Mode         string   `json:"mode"`
	Registered   bool     `json:"registered"`
	Registration string   `json:"registration"`
	CallStatus   string   `json:"callStatus"`
	Cause        string   `json:"cause"`
	Stats        *Stats   `json:"stats"`
	Log          []string `json:"log"`
	Error        string   `json:"error"`
}

// Dir is this package's directory (phone.mjs lives there).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Require skips the test (or fails it when CI=true) unless node, Chromium and
// test/peers/node_modules with playwright-core are present; it returns the chromium path.
func Require(t testing.TB) string {
	t.Helper()
	missing := ""
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	} else if _, err := os.Stat(chromium); err != nil {
		missing = "chromium (apt-get install -y chromium)"
	} else if _, err := os.Stat(filepath.Join(Dir(), "..", "peers", "node_modules", "playwright-core")); err != nil {
		missing = "test/peers/node_modules/playwright-core (npm ci in test/peers)"
	}
	if missing == "" {
		return chromium
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true: browser peers are required)", missing)
	}
	t.Skipf("%s is missing", missing)
	return ""
}

// Run drives the softphone once and returns the browser's report; it fails the test when the
// script cannot run or reports an error.
func Run(t testing.TB, o Options) Result {
	t.Helper()
	chromium := Require(t)
	res, err := RunContext(context.Background(), chromium, o)
	if err != nil {
		t.Fatalf("softphone run: %v\nresult: %+v", err, res)
	}
	return res
}

// RunContext runs phone.mjs with chromium and returns its report; err is set when the script
// failed (the report then says why in Error and Log).
func RunContext(ctx context.Context, chromium string, o Options) (Result, error) {
	if o.Talk == 0 {
		o.Talk = 3 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "phone.mjs"))
	cmd.Env = append(os.Environ(),
		"PHONE_URL="+o.URL, "PHONE_TOKEN="+o.Token, "PHONE_MODE="+o.Mode, "PHONE_NUMBER="+o.Number,
		"PHONE_DTMF="+o.DTMF, "PHONE_DEBUG="+os.Getenv("PHONE_DEBUG"), "PHONE_HANGUP="+o.Hangup, "CHROMIUM="+chromium,
		"PHONE_TALK_MS="+strconv.FormatInt(o.Talk.Milliseconds(), 10),
		"PHONE_TIMEOUT_MS="+strconv.FormatInt(o.Timeout.Milliseconds(), 10))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res Result
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		return res, &scriptError{err: runErr, stderr: stderr.String(), stdout: stdout.String()}
	}
	if runErr != nil || res.Error != "" {
		return res, &scriptError{err: runErr, msg: res.Error, stderr: stderr.String()}
	}
	return res, nil
}

type scriptError struct {
	err                 error
	msg, stderr, stdout string
}

func (e *scriptError) Error() string {
	s := "phone.mjs"
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.stdout != "" {
		s += "\nstdout: " + e.stdout
	}
	if e.stderr != "" {
		s += "\nstderr: " + tail(e.stderr, 2000)
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
