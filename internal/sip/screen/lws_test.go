package screen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCanonicalLWS: folded lines are unfolded and the whitespace of structured header fields
// made canonical (RFC 3261 §7.3.1, §25.1); quoted strings, <…>, free-text fields and the body
// are kept; a canonical message is not copied.
func TestCanonicalLWS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: a  ;  b\r\nContent-Length: 2\r\n\r\nx ", ""},
		{"OPTIONS sip:a@b SIP/2.0\r\nTO :\r\n sip:a@b ;   tag    = 1918181833n\r\nl: 0\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nTO: sip:a@b;tag=1918181833n\r\nl: 0\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nfrom   : \"J Rosenberg \\\\\\\"\"       <sip:j@e.com>\r\n  ;\r\n  tag = 98asjd8\r\nl: 0\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nfrom: \"J Rosenberg \\\\\\\"\" <sip:j@e.com>;tag=98asjd8\r\nl: 0\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\nX:  a\r\n  b\r\nl: 1\r\n\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=390skdjuw\r\nX:  a b\r\nl: 1\r\n\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nm:\"Q \\\"\\\"\" < sip:j@e.com > ; q = 0.33 , <sip:k@e.com>\r\nl: 0\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nm: \"Q \\\"\\\"\" < sip:j@e.com >;q=0.33,<sip:k@e.com>\r\nl: 0\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nAllow: INVITE, ACK\r\nVia: SIP/2.0/UDP h ;branch=1\r\nl: 0\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nAllow: INVITE, ACK\r\nVia: SIP/2.0/UDP h;branch=1\r\nl: 0\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nAllow: INVITE, ACK\r\nUser-Agent: x/1 (a; b)\r\nVia: SIP/2.0/UDP h;branch=1\r\nl: 0\r\n\r\n", ""},
		{"OPTIONS sip:a@b SIP/2.0\r\nCSeq:\t1 OPTIONS\r\nl: 0\r\n\r\n", ""}, // whitespace at the ends is sipgo's to trim
		{"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1\tOPTIONS\r\nl: 0\r\n\r\n", "OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", ""}, // no end of the header section
	} {
		got, ok := CanonicalLWS([]byte(tc.in))
		if want := tc.want; want == "" {
			if ok || string(got) != tc.in {
				t.Errorf("%q: rewritten to %q", tc.in, got)
			}
		} else if !ok || string(got) != want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, want)
		}
	}
}

// FuzzCanonicalLWS: the rewrite keeps the start-line and the body, and is stable: a rewritten
// message needs no further rewriting.
func FuzzCanonicalLWS(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "torture", "*", "*.dat"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\nv: SIP / 2.0 / UDP h ; branch = 1\r\n , SIP/2.0/TCP \"x\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok := CanonicalLWS(data)
		if !ok {
			if !bytes.Equal(out, data) {
				t.Fatal("changed without saying so")
			}
			return
		}
		end, _ := headerEnd(data, 0)
		oend, _ := headerEnd(out, 0)
		if oend < 0 || !bytes.Equal(out[oend:], data[end:]) {
			t.Fatalf("body changed: %q → %q", data, out)
		}
		if !bytes.Equal(firstLine(out), firstLine(data)) {
			t.Fatalf("start-line changed: %q → %q", data, out)
		}
		if again, ok := CanonicalLWS(out); ok {
			t.Fatalf("not stable: %q → %q → %q", data, out, again)
		}
	})
}
