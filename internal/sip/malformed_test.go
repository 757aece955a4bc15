package sip_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// header returns the value of the first header field name (long or compact form) in a message.
func header(msg string, names ...string) string {
	for _, line := range strings.Split(msg, "\r\n")[1:] {
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		for _, n := range names {
			if ok && strings.EqualFold(strings.TrimSpace(k), n) {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

var branchParam = regexp.MustCompile(`(?i);\s*branch\s*=\s*([^;,\s]+)`)

// TestMalformedOverUDP: a running Service answers requests sipgo's parser refuses (RFC 4475
// torture requests and hand-made ones) with a 400 (505, 416) that carries the request's Call-ID,
// CSeq and Via branch, drops what it cannot answer, counts both, and keeps serving.
func TestMalformedOverUDP(t *testing.T) {
	e := newEnv(t, envOpts{})
	type tc struct {
		name, msg string
		code      string // "" when no answer is due
	}
	var cases []tc
	for name, code := range map[string]string{
		"badinv01.dat": "400", "clerr.dat": "400", "ncl.dat": "400", "scalar02.dat": "400", "quotbal.dat": "400",
		"ltgtruri.dat": "400", "lwsruri.dat": "400", "lwsstart.dat": "400", "trws.dat": "400", "badaspec.dat": "400",
		"baddn.dat": "400", "badvers.dat": "505", "novelsc.dat": "416",
		"scalarlg.dat": "", "bigcode.dat": "", "test.dat": "",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "torture", "invalid", name))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{name, string(b), code})
	}
	const (
		via  = "Via: SIP/2.0/UDP 127.0.0.5:5999;branch=z9hG4bK-garbled\r\n"
		tail = "From: <sip:t@127.0.0.5>;tag=1\r\nTo: <sip:telgw@127.0.0.1>\r\nCall-ID: garbled-1\r\nCSeq: 5 OPTIONS\r\nMax-Forwards: 70\r\n"
	)
	cases = append(cases,
		tc{"no colon", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + tail + "Garbage line\r\nContent-Length: 0\r\n\r\n", "400"},
		tc{"bad Content-Length", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + tail + "Content-Length: 1x\r\n\r\n", "400"},
		tc{"Content-Length too large", "INVITE sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + strings.ReplaceAll(tail, "OPTIONS", "INVITE") + "Content-Length: 500\r\n\r\nv=0\r\n", "400"},
		tc{"SIP/3.0", "OPTIONS sip:telgw@127.0.0.1 SIP/3.0\r\n" + via + tail + "Content-Length: 0\r\n\r\n", "505"},
		tc{"bare LF", strings.ReplaceAll("OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n"+via+tail+"Content-Length: 0\r\n\r\n", "\r\n", "\n"), "400"},
		tc{"no Via", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + tail + "Content-Length: x\r\n\r\n", ""},
		tc{"ACK", "ACK sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + strings.ReplaceAll(tail, "OPTIONS", "ACK") + "Content-Length: x\r\n\r\n", ""},
		tc{"keep-alive", "\r\n\r\n", ""},
	)
	answered, dropped := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.msg // exchange points its top Via at the test's socket
			got := exchangeRaw(t, e.addr, []byte(msg), 300*time.Millisecond)
			if c.code == "" {
				if len(got) > 0 {
					t.Fatalf("answered %q, want no answer", got)
				}
				if c.name != "keep-alive" {
					dropped++
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d answers %q, want one %s", len(got), got, c.code)
			}
			answered++
			res := got[0]
			if !strings.HasPrefix(res, "SIP/2.0 "+c.code+" ") {
				t.Fatalf("answer %q, want %s", strings.SplitN(res, "\r\n", 2)[0], c.code)
			}
			reqMsg := strings.ReplaceAll(msg, "\n", "\r\n")
			reqMsg = strings.ReplaceAll(reqMsg, "\r\r\n", "\r\n")
			for _, h := range [][]string{{"Call-ID", "i"}, {"CSeq"}} {
				if want, have := header(reqMsg, h...), header(res, h...); want == "" || have != want {
					t.Errorf("%s: answer has %q, request %q", h[0], have, want)
				}
			}
			if m := branchParam.FindStringSubmatch(header(reqMsg, "Via", "v")); m != nil {
				if b := branchParam.FindStringSubmatch(header(res, "Via")); b == nil || b[1] != m[1] {
					t.Errorf("Via branch: answer %q, want %s", header(res, "Via"), m[1])
				}
			}
			if to := header(res, "To"); !strings.Contains(strings.ToLower(to), "tag=") {
				t.Errorf("To without tag: %q", to)
			}
			if w := header(res, "Warning"); !strings.HasPrefix(w, "399 ") {
				t.Errorf("Warning %q, want a 399 saying what was wrong", w)
			}
		})
	}
	// The stack keeps serving.
	opt := "OPTIONS sip:telgw@" + e.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + strangerIP + ":5999;branch=z9hG4bK-after-garbled\r\n" +
		"From: <sip:t@" + strangerIP + ">;tag=1\r\nTo: <sip:telgw@" + e.addr + ">\r\nCall-ID: after-garbled\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if codes := exchange(t, e.addr, []byte(opt), 2*time.Second); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("OPTIONS after malformed requests: %v", codes)
	}
	lbl := func(action string) map[string]string { return map[string]string{"transport": "udp", "action": action} }
	if n := e.counter("telgw_sip_malformed_messages_total", lbl("responded")); int(n) != answered {
		t.Errorf("responded counter %v, want %d", n, answered)
	}
	if n := e.counter("telgw_sip_malformed_messages_total", lbl("dropped")); int(n) != dropped {
		t.Errorf("dropped counter %v, want %d", n, dropped)
	}
}

// TestMalformedAnswerGoesToRport: with rport the answer goes to the datagram's source port,
// whatever port the Via's sent-by names (RFC 3581 §4), and says so in the Via.
func TestMalformedAnswerGoesToRport(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, err := net.ListenPacket("udp", strangerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg := "OPTIONS sip:telgw@" + e.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:9;rport;branch=z9hG4bK-rport\r\n" +
		"From: <sip:t@example.com>;tag=1\r\nTo: <sip:telgw@example.com>\r\nCall-ID: rport-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: -1\r\n\r\n"
	ua, _ := net.ResolveUDPAddr("udp", e.addr)
	if _, err := c.WriteTo([]byte(msg), ua); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer at the source port: %v", err)
	}
	res := string(buf[:n])
	want := "Via: SIP/2.0/UDP 10.9.9.9:9;rport=" + strconv.Itoa(port) + ";branch=z9hG4bK-rport;received=" + strangerIP + "\r\n"
	if !strings.HasPrefix(res, "SIP/2.0 400 ") || !strings.Contains(res, want) {
		t.Fatalf("answer:\n%s\nwant 400 with %q", res, want)
	}
}
