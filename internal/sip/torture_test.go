package sip_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sip"
)

// topVia is a message's first Via up to its sent-by (long or compact form, any transport).
var topVia = regexp.MustCompile(`(?mi)^(via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*[0-9.]+[ \t]*/[ \t]*[a-z]+[ \t]+[^;\s]+`)

// exchange sends msg over UDP from a fresh socket and returns the status codes answered within
// wait (several for an INVITE: 100 then a final). The first Via's sent-by is pointed at the
// socket, as responses go there (RFC 3261 §18.2.2), not to the message's source.
func exchange(t *testing.T, to string, msg []byte, wait time.Duration) []string {
	t.Helper()
	var codes []string
	for _, res := range exchangeRaw(t, to, msg, wait) {
		if f := strings.Fields(res); len(f) > 1 && f[0] == "SIP/2.0" {
			codes = append(codes, f[1])
		}
	}
	return codes
}

// exchangeRaw is exchange returning the responses whole.
func exchangeRaw(t *testing.T, to string, msg []byte, wait time.Duration) []string {
	t.Helper()
	c, err := net.ListenPacket("udp", strangerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if loc := topVia.FindIndex(msg); loc != nil {
		msg = append(append(append([]byte{}, msg[:loc[0]]...), "Via: SIP/2.0/UDP "+c.LocalAddr().String()...), msg[loc[1]:]...)
	}
	ua, _ := net.ResolveUDPAddr("udp", to)
	if _, err := c.WriteTo(msg, ua); err != nil {
		t.Fatal(err)
	}
	var out []string
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return out
		}
		out = append(out, string(buf[:n]))
	}
}

// TestTorture sends the RFC 4475 messages: the ones with a defined answer must get it
// (RFC 4475 §3.1.2.*, §3.3.*), none may crash or stall the stack, which must still answer
// OPTIONS afterwards. The requests sipgo's parser refuses are answered by the UDP screen
// (malformed.go); "-" marks the messages that get no answer at all.
func TestTorture(t *testing.T) {
	e := newEnv(t, envOpts{})
	want := map[string]string{
		"unkscm.dat":  "416", // §3.3.2: unknown Request-URI scheme
		"novelsc.dat": "416", // §3.3.3: known but atypical scheme (sipgo refuses it: the screen answers)
		"bext01.dat":  "420", // §3.3.5: unsupported Require
		"invut.dat":   "415", // §3.3.6: unknown Content-Type
		"zeromf.dat":  "483", // §3.3.11: Max-Forwards: 0 to OPTIONS
		// Refused by sipgo's parser, answered by the screen.
		"badinv01.dat": "400", // §3.1.2.1 extraneous header field separators
		"clerr.dat":    "400", // §3.1.2.2 Content-Length larger than the message
		"ncl.dat":      "400", // §3.1.2.3 negative Content-Length
		"scalar02.dat": "400", // §3.1.2.4 overlarge scalar fields
		"quotbal.dat":  "400", // §3.1.2.6 unterminated quoted string
		"ltgtruri.dat": "400", // §3.1.2.7 <> around the Request-URI
		"lwsruri.dat":  "400", // §3.1.2.8 LWS in the Request-URI
		"lwsstart.dat": "400", // §3.1.2.9 multiple SP in the Request-Line
		"trws.dat":     "400", // §3.1.2.10 SP at the end of the Request-Line
		"badaspec.dat": "400", // §3.1.2.14 spaces within addr-spec
		"baddn.dat":    "400", // §3.1.2.15 (this copy also lacks the empty line)
		"badvers.dat":  "505", // §3.1.2.16 SIP/7.0: the screen answers with a SIP/2.0 status line
		// Responses are never answered (§3.1.2.5, §3.1.2.19), nor is a message without a
		// SIP-Version (sipgo's test.dat).
		"scalarlg.dat": "-",
		"bigcode.dat":  "-",
		"test.dat":     "-",
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "torture", "*", "*.dat"))
	if len(files) < 40 {
		t.Fatalf("torture messages missing: %d", len(files))
	}
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		codes := exchange(t, e.addr, msg, 200*time.Millisecond)
		name := filepath.Base(f)
		t.Logf("%s/%s: %v", filepath.Base(filepath.Dir(f)), name, codes)
		switch w, ok := want[name]; {
		case !ok:
		case w == "-" && len(codes) > 0:
			t.Errorf("%s: answered %v, want no answer", name, codes)
		case w != "-" && (len(codes) == 0 || codes[len(codes)-1] != w):
			t.Errorf("%s: answered %v, want %s", name, codes, w)
		}
		for _, c := range codes {
			if c == "500" {
				t.Errorf("%s: 500 (a handler failed)", name)
			}
		}
	}
	opt := "OPTIONS sip:telgw@" + e.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + strangerIP + ":5999;branch=z9hG4bK-opt1\r\n" +
		"From: <sip:t@" + strangerIP + ">;tag=1\r\nTo: <sip:telgw@" + e.addr + ">\r\nCall-ID: torture-after\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if codes := exchange(t, e.addr, []byte(opt), 2*time.Second); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("OPTIONS after torture: %v", codes)
	}
}

// TestFloodFromOneSource: out-of-dialog requests beyond the per-source rate are dropped (no
// answer), others still get through.
func TestFloodFromOneSource(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(c *sip.Config) { c.SourceRate, c.SourceBurst = 1, 5 }})
	answered := 0
	for i := range 20 {
		opt := fmt.Sprintf("OPTIONS sip:telgw@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5999;branch=z9hG4bK-flood%d\r\n"+
			"From: <sip:t@%s>;tag=1\r\nTo: <sip:telgw@%s>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			e.addr, strangerIP, i, strangerIP, e.addr, i)
		if codes := exchange(t, e.addr, []byte(opt), 100*time.Millisecond); len(codes) > 0 {
			answered++
		}
	}
	if answered < 5 || answered > 8 {
		t.Fatalf("%d of 20 answered, want the burst of 5 (and a refill or two)", answered)
	}
	if n := e.counter("telgw_sip_requests_dropped_total", map[string]string{"reason": "rate"}); n < 12 {
		t.Fatalf("dropped %v", n)
	}
}
