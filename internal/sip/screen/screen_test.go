package screen

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestScreenTorture: what the UDP screen does with each RFC 4475 message sipgo's parser refuses
// (RFC 4475 §3.1.2.x expects a 400 for the requests, silence for the responses), and that it
// passes everything sipgo accepts.
func TestScreenTorture(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		code int    // 0: dropped
		why  string // substring of the Warning
	}{
		"badinv01.dat": {400, "Via header"},                    // §3.1.2.1 extraneous header field separators
		"clerr.dat":    {400, "Content-Length larger"},         // §3.1.2.2
		"ncl.dat":      {400, "Content-Length header"},         // §3.1.2.3 negative Content-Length
		"scalar02.dat": {400, "CSeq header"},                   // §3.1.2.4 overlarge scalar fields
		"scalarlg.dat": {0, "malformed response"},              // §3.1.2.5 response: never answered
		"quotbal.dat":  {400, "To header"},                     // §3.1.2.6 unterminated quoted string
		"ltgtruri.dat": {400, "Request-URI"},                   // §3.1.2.7 <> around the Request-URI
		"lwsruri.dat":  {400, "whitespace in the Request-URI"}, // §3.1.2.8
		"lwsstart.dat": {400, "extra whitespace"},              // §3.1.2.9 multiple SP in the Request-Line
		"trws.dat":     {400, "extra whitespace"},              // §3.1.2.10 SP at the end of the Request-Line
		"badaspec.dat": {400, "To header"},                     // §3.1.2.14 spaces within addr-spec
		"baddn.dat":    {400, "empty line"},                    // §3.1.2.15 (this copy also lacks the empty line)
		"badvers.dat":  {505, "SIP/7.0"},                       // §3.1.2.16 unknown protocol version
		"bigcode.dat":  {0, "malformed response"},              // §3.1.2.19 overlarge response code
		"novelsc.dat":  {416, "soap.beep"},                     // §3.3.3 known but atypical scheme
		"test.dat":     {0, "not a SIP message"},               // sipgo's own: no SIP-Version
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "torture", "*", "*.dat"))
	if len(files) < 40 {
		t.Fatalf("torture messages missing: %d", len(files))
	}
	p := sip.NewParser()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		v := Datagram(p, data)
		w, ok := want[name]
		switch {
		case !ok && v.action != Pass:
			t.Errorf("%s: screened (%d %s), want passed to sipgo", name, v.code, v.why)
		case !ok:
		case w.code == 0 && v.action != Drop:
			t.Errorf("%s: action %d, want dropped", name, v.action)
		case w.code != 0 && (v.action != Respond || v.code != w.code):
			t.Errorf("%s: action %d code %d (%s), want %d", name, v.action, v.code, v.why, w.code)
		case !strings.Contains(v.why, w.why):
			t.Errorf("%s: why %q, want it to mention %q", name, v.why, w.why)
		}
	}
}

func TestScreenHandMade(t *testing.T) {
	t.Parallel()
	const (
		via  = "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-hm\r\n"
		rest = "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: hm-1\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n"
	)
	for _, tc := range []struct {
		name, msg string
		action    Action
		code      int
		why       string
	}{
		{"valid", "OPTIONS sip:b@example.com SIP/2.0\r\n" + via + rest + "Content-Length: 0\r\n\r\n", Pass, 0, ""},
		{"keep-alive CRLF", "\r\n\r\n", Pass, 0, ""},
		{"keep-alive CRLF single", "\r\n", Pass, 0, ""},
		{"garbled header", "OPTIONS sip:b@example.com SIP/2.0\r\n" + via + rest + "this line has no colon\r\nContent-Length: 0\r\n\r\n", Respond, 400, "without a colon"},
		{"bad Content-Length", "OPTIONS sip:b@example.com SIP/2.0\r\n" + via + rest + "Content-Length: ten\r\n\r\n", Respond, 400, "Content-Length header"},
		{"bad Max-Forwards", "OPTIONS sip:b@example.com SIP/2.0\r\n" + via + strings.Replace(rest, "70", "seventy", 1) + "Content-Length: 0\r\n\r\n", Respond, 400, "Max-Forwards header"},
		{"SIP/3.0", "OPTIONS sip:b@example.com SIP/3.0\r\n" + via + rest + "Content-Length: 0\r\n\r\n", Respond, 505, "SIP/3.0"},
		{"bare LF", strings.ReplaceAll("OPTIONS sip:b@example.com SIP/2.0\r\n"+via+rest+"Content-Length: 0\r\n\r\n", "\r\n", "\n"), Respond, 400, "CRLF"},
		{"folded Via", "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP\r\n 192.0.2.1:5062;branch=z9hG4bK-hm\r\n" + rest + "Content-Length: x\r\n\r\n", Respond, 400, "Content-Length"},
		{"no Via", "OPTIONS sip:b@example.com SIP/2.0\r\n" + rest + "Content-Length: ten\r\n\r\n", Drop, 0, "no Via"},
		{"no Call-ID", "OPTIONS sip:b@example.com SIP/2.0\r\n" + via + strings.Replace(rest, "Call-ID: hm-1\r\n", "", 1) + "Content-Length: ten\r\n\r\n", Drop, 0, "no Via"},
		{"ACK", "ACK sip:b@example.com SIP/2.0\r\n" + via + strings.Replace(rest, "OPTIONS", "ACK", 1) + "Content-Length: ten\r\n\r\n", Drop, 0, "ACK"},
		{"garbage", "hello world\r\n", Drop, 0, "not a SIP message"},
		{"STUN-ish binary", "\x00\x01\x00\x00\x21\x12\xa4\x42abcdefghijkl", Drop, 0, "not a SIP message"},
		{"bad response", "SIP/2.0 70000 OK\r\n" + via + rest + "Content-Length: 0\r\n\r\n", Drop, 0, "malformed response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Datagram(sip.NewParser(), []byte(tc.msg))
			if v.action != tc.action || v.code != tc.code || !strings.Contains(v.why, tc.why) {
				t.Fatalf("action %d code %d why %q, want %d %d %q", v.action, v.code, v.why, tc.action, tc.code, tc.why)
			}
		})
	}
}

func TestBuildResponse(t *testing.T) {
	t.Parallel()
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	for _, tc := range []struct {
		name, via, to   string
		wantVia, wantTo string
		dst             string
	}{
		{"sent-by port", "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1", "<sip:b@example.com>",
			"Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1;received=198.51.100.7", "To: <sip:b@example.com>;tag=T", "198.51.100.7:5062"},
		{"default port", "SIP/2.0/UDP host.example.com;branch=z9hG4bK1", "sip:b@example.com;tag=x",
			"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bK1;received=198.51.100.7", "To: sip:b@example.com;tag=x", "198.51.100.7:5060"},
		{"rport", "SIP / 2.0 / UDP 10.0.0.1:5060;rport;branch=z9hG4bK1;received=1.2.3.4, SIP/2.0/UDP 10.0.0.9", "\"B\" <sip:b@example.com;tag=uri-param>",
			"Via: SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK1;received=198.51.100.7, SIP/2.0/UDP 10.0.0.9", "To: \"B\" <sip:b@example.com;tag=uri-param>;tag=T", "198.51.100.7:40000"},
		{"same host", "SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bK1", "<sip:b@example.com>",
			"Via: SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bK1\r\n", "To: <sip:b@example.com>;tag=T", "198.51.100.7:5070"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Verdict{action: Respond, code: 400, reason: "Bad Request", why: `bad "x"`,
				req: recovered{vias: []string{tc.via, "SIP/2.0/UDP 192.0.2.99"}, from: "<sip:a@example.com>;tag=1", to: tc.to, callID: "c1", cseq: "1 OPTIONS"}}
			res, dst := Response(v, src, "T")
			s := string(res)
			for _, want := range []string{"SIP/2.0 400 Bad Request\r\n", tc.wantVia, "\r\nVia: SIP/2.0/UDP 192.0.2.99\r\n", tc.wantTo + "\r\n",
				"Call-ID: c1\r\n", "CSeq: 1 OPTIONS\r\n", `Warning: 399 telgw "bad \"x\""`, "Content-Length: 0\r\n\r\n"} {
				if !strings.Contains(s, want) {
					t.Errorf("response lacks %q:\n%s", want, s)
				}
			}
			if dst.String() != tc.dst {
				t.Errorf("sent to %s, want %s", dst, tc.dst)
			}
			if _, err := sip.ParseMessage(res); err != nil {
				t.Errorf("response does not parse: %v\n%s", err, s)
			}
		})
	}
}

// FuzzMalformed: screening, header recovery and the answer never panic, and an answer is one
// well-framed SIP response whatever the request held.
func FuzzMalformed(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "torture", "*", "*.dat"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("OPTIONS sip:b@example.com SIP/2.0\nVia: SIP/2.0/UDP [::1]:5060;rport\nCall-ID: x\nCSeq: 1 OPTIONS\nl: z\n\n"))
	f.Add([]byte("INVITE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP h\r\n ;branch=z9hG4bK\"\r\ni: \x00\r\nCSeq: 1 INVITE\r\n\r\n"))
	p := sip.NewParser()
	src := netip.MustParseAddrPort("[2001:db8::1]:5060")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := recoverHeaders(data)
		_, _ = parseTopVia(r.vias)
		v := Datagram(p, data)
		if v.action != Respond {
			return
		}
		res, _ := Response(v, src, "T")
		head, body, ok := bytes.Cut(res, []byte("\r\n\r\n"))
		if !ok || len(body) != 0 || !bytes.HasPrefix(head, []byte("SIP/2.0 ")) {
			t.Fatalf("badly framed response:\n%q", res)
		}
		for _, line := range bytes.Split(head, []byte("\r\n")) {
			if len(line) == 0 || bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("bad line %q in response:\n%q", line, res)
			}
		}
		if !bytes.Contains(res, []byte("\r\nCall-ID: "+r.callID+"\r\n")) {
			t.Fatalf("response lacks the Call-ID %q:\n%q", r.callID, res)
		}
	})
}
