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
	var codes []string
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return codes
		}
		if f := strings.Fields(string(buf[:n])); len(f) > 1 && f[0] == "SIP/2.0" {
			codes = append(codes, f[1])
		}
	}
}

// TestTorture sends the RFC 4475 messages: the ones with a defined answer must get it
// (RFC 4475 §3.1.2.*, §3.3.*), none may crash or stall the stack, which must still answer
// OPTIONS afterwards.
func TestTorture(t *testing.T) {
	e := newEnv(t, envOpts{})
	want := map[string]string{
		// badvers.dat (§3.3.15, SIP/7.0) would get 505 from check(), but sipgo 1.7.3 drops it
		// before any handler sees it; like the unparsable ones it gets no answer.
		"unkscm.dat": "416", // §3.3.11: unknown Request-URI scheme
		"bext01.dat": "420", // §3.3.13: unsupported Require
		"invut.dat":  "415", // §3.3.14: unknown Content-Type
		"zeromf.dat": "483", // §3.1.2.7 … Max-Forwards: 0 to OPTIONS
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
		if w, ok := want[name]; ok && (len(codes) == 0 || codes[len(codes)-1] != w) {
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
