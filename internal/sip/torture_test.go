package sip_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sip"
)

// topVia is a message's first Via up to its sent-by (long or compact form, any transport,
// folded over lines as in RFC 4475 §3.1.1.1).
var topVia = regexp.MustCompile(`(?mi)^(via|v)[ \t]*:\s*SIP\s*/\s*[0-9.]+\s*/\s*[a-z]+\s+[^;\s]+`)

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
	msg = pointVia(msg, "UDP", c.LocalAddr().String())
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

// pointVia points the first Via of msg at transport and sent-by.
func pointVia(msg []byte, transport, sentBy string) []byte {
	if loc := topVia.FindIndex(msg); loc != nil {
		return append(append(append([]byte{}, msg[:loc[0]]...), "Via: SIP/2.0/"+transport+" "+sentBy...), msg[loc[1]:]...)
	}
	return msg
}

// exchangeTCP sends msg on a fresh TCP connection from strangerIP and returns the status codes
// answered within wait.
func exchangeTCP(t *testing.T, to string, msg []byte, wait time.Duration) []string {
	t.Helper()
	p := dialStream(t, "TCP", to, nil)
	defer p.Close()
	p.send(string(pointVia(msg, "TCP", p.LocalAddr().String())))
	_ = p.SetReadDeadline(time.Now().Add(wait))
	var codes []string
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return codes
		}
		if f := strings.Fields(line); len(f) > 1 && f[0] == "SIP/2.0" {
			codes = append(codes, f[1])
		}
	}
}

// TestTortureValid: each valid request of RFC 4475 §3.1.1 gets an answer, and no 400, over UDP
// and over TCP (the screens unfold header lines and read whitespace as RFC 3261 §7.3.1 and
// §25.1 mean it, §3.1.1.1 "wsinv" being the hardest); the invalid ones of §3.1.2 that sipgo's
// parser refuses still get 400 over TCP as they do over UDP (TestTorture), but for §3.1.2.2
// (a Content-Length past the end is, on a stream, a message still arriving).
func TestTortureValid(t *testing.T) {
	e := newEnv(t, envOpts{})
	files, _ := filepath.Glob(filepath.Join("testdata", "torture", "valid", "*.dat"))
	if len(files) != 13 {
		t.Fatalf("want the 13 messages of RFC 4475 §3.1.1, have %d", len(files))
	}
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if strings.HasPrefix(string(msg), "SIP/2.0 ") {
			continue // §3.1.1.12, §3.1.1.13: responses, never answered
		}
		for _, tp := range []string{"UDP", "TCP"} {
			var codes []string
			if tp == "UDP" {
				codes = exchange(t, e.addr, msg, 300*time.Millisecond)
			} else {
				codes = exchangeTCP(t, e.addr, msg, 500*time.Millisecond)
			}
			t.Logf("%s over %s: %v", name, tp, codes)
			if len(codes) == 0 && !(name == "longreq.dat" && tp == "UDP") {
				// sipgo does not send a UDP message over 1300 bytes (it applies RFC 3261
				// §18.1.1's rule for requests to responses too): longreq's answers are that long.
				t.Errorf("%s over %s: no answer", name, tp)
			}
			for _, c := range codes {
				if c == "400" || c == "500" {
					t.Errorf("%s over %s: answered %v", name, tp, codes)
				}
			}
		}
	}
	for _, name := range []string{"badinv01", "ncl", "scalar02", "quotbal", "ltgtruri", "lwsruri", "lwsstart", "trws", "badaspec"} {
		msg, err := os.ReadFile(filepath.Join("testdata", "torture", "invalid", name+".dat"))
		if err != nil {
			t.Fatal(err)
		}
		if codes := exchangeTCP(t, e.addr, msg, 500*time.Millisecond); len(codes) != 1 || codes[0] != "400" {
			t.Errorf("%s over TCP: answered %v, want 400", name, codes)
		}
	}
}

// TestTorture sends the RFC 4475 messages: the ones with a defined answer must get it
// (RFC 4475 §3.1.2.*, §3.3.*), none may crash or stall the stack, which must still answer
// OPTIONS afterwards. The requests sipgo's parser refuses are answered by the UDP screen
// (internal/sip/screen); "-" marks the messages that get no answer at all.
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

// burst sends n INVITEs for number at once, each from its own UDP socket on ip, and returns
// the final responses (status line and Retry-After) they got within wait; "" for none.
func burst(t *testing.T, to, ip, number string, n int, wait time.Duration) []string {
	t.Helper()
	conns := make([]net.PacketConn, n)
	ua, _ := net.ResolveUDPAddr("udp", to)
	for i := range conns {
		c, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		local := c.LocalAddr().String()
		body := "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		inv := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-burst%d\r\n"+
			"From: <sip:+14155550100@%s>;tag=b%d\r\nTo: <sip:%s@%s>\r\nCall-ID: burst-%s-%d\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:c@%s>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			number, to, local, i, ip, i, number, to, ip, i, local, len(body), body)
		if _, err := c.WriteTo([]byte(inv), ua); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]string, n)
	deadline := time.Now().Add(wait)
	buf := make([]byte, 65535)
	for i, c := range conns {
		for {
			_ = c.SetReadDeadline(deadline)
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			res := string(buf[:k])
			if code := status(res); code != "100" {
				out[i] = strings.SplitN(res, "\r\n", 2)[0]
				if ra := header(res, "Retry-After"); ra != "" {
					out[i] += " Retry-After: " + ra
				}
				break
			}
		}
	}
	return out
}

// TestTrunkRateNotSourceRate: a trunk's calls are limited by the trunk's cps (503 with
// Retry-After beyond it, RFC 3261 §21.5.4), not dropped by the per-source flood limit, which
// still holds for other sources.
func TestTrunkRateNotSourceRate(t *testing.T) {
	trunk := sip.TrunkConfig{Name: "carrier1", Address: carrierIP + ":5060", CPS: 20,
		Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}
	e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{trunk}, tweak: func(c *sip.Config) { c.SourceRate, c.SourceBurst = 5, 5 }})
	got := burst(t, e.addr, carrierIP, "+14155550199", 40, 3*time.Second)
	limited := 0
	for i, r := range got {
		switch {
		case r == "":
			t.Errorf("INVITE %d from the trunk got no answer (dropped)", i)
		case strings.HasPrefix(r, "SIP/2.0 503"):
			if !strings.Contains(r, "Retry-After") {
				t.Errorf("INVITE %d: %q, want Retry-After", i, r)
			}
			limited++
		}
	}
	// The trunk's bucket holds 20 calls; 40 at once are beyond it, 5 (sourceRate) far below.
	if limited == 0 || limited > 40-15 {
		t.Errorf("%d of 40 limited by the trunk's cps of 20: %q", limited, got)
	}
	if n := e.counter("telgw_sip_requests_dropped_total", map[string]string{"reason": "rate"}); n != 0 {
		t.Errorf("%v of the trunk's requests dropped by sourceRate", n)
	}
	answered := 0
	for _, r := range burst(t, e.addr, strangerIP, "+14155550199", 20, time.Second) {
		if r != "" {
			answered++
		}
	}
	if answered > 6 {
		t.Errorf("%d of 20 INVITEs from a stranger answered, want sourceRate's burst of 5", answered)
	}
}

// TestStrayInDialogRequestsAreRateLimited: requests with a To tag whose Call-ID is no call's
// count against sip.sourceRate like new ones, so a flood of them (from a forged UDP source,
// whom telgw's 481s would hit) gets at most the burst answered; before, they bypassed the limit.
func TestStrayInDialogRequestsAreRateLimited(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(c *sip.Config) { c.SourceRate, c.SourceBurst = 5, 5 }})
	conn, err := net.ListenPacket("udp", net.JoinHostPort(strangerIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	for i := range 30 {
		msg := fmt.Sprintf("BYE sip:telgw@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-stray-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:a@%s>;tag=a%d\r\nTo: <sip:b@%s>;tag=b%d\r\nCall-ID: stray-%d@%s\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
			e.addr, local, i, strangerIP, i, telgwIP, i, i, strangerIP)
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	answered := 0
	buf := make([]byte, 4096)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		if strings.HasPrefix(string(buf[:n]), "SIP/2.0 481") {
			answered++
		}
	}
	if answered == 0 || answered > 6 {
		t.Errorf("%d of 30 stray BYEs answered 481, want sourceRate's burst of 5", answered)
	}
	if n := e.counter("telgw_sip_requests_dropped_total", map[string]string{"reason": "rate"}); n < 20 {
		t.Errorf("%v stray BYEs dropped by sourceRate, want the rest (≥ 20)", n)
	}
}
