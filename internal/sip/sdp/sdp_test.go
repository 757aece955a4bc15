package sdp

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"empty":        "",
		"no v":         "o=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",
		"v=1":          "v=1\r\n",
		"no origin":    "v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",
		"short origin": "v=0\r\no=- 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",
		"no media":     "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\n",
		"no conn":      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n",
		"bad conn":     "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 host.example\r\nm=audio 1 RTP/AVP 0\r\n",
		"ip6 as ip4":   "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 ::1\r\nm=audio 1 RTP/AVP 0\r\n",
		"bad port":     "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
		"short m":      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP\r\n",
		"garbage":      "v=0\r\nhello\r\n",
		"upper type":   "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nX=1\r\n",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrNotAcceptable) {
			t.Errorf("%s: err = %v, want ErrNotAcceptable", name, err)
		}
	}
}

func TestFilterAndAnchorOffer(t *testing.T) {
	t.Parallel()
	s, err := Parse(mustRead(t, "testdata/offer.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Addr(s.Audio()); got != netip.MustParseAddrPort("192.0.2.10:20000") {
		t.Fatalf("Addr = %v", got)
	}
	if err := FilterOffer(s, DefaultCodecs); err != nil {
		t.Fatal(err)
	}
	if got := s.Audio().Formats; !slices.Equal(got, []string{"0", "8", "101"}) {
		t.Fatalf("formats = %v", got)
	}
	o := &Origin{ID: 42}
	Anchor(s, netip.MustParseAddr("198.51.100.1"), 30000, o)
	out := string(s.Marshal())
	for _, want := range []string{
		"v=0\r\no=telgw 42 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n",
		"m=audio 30000 RTP/AVP 0 8 101\r\n", "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
		"m=video 0 RTP/AVP 96\r\n", "a=sendrecv\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	for _, gone := range []string{"G722", "G729", "annexb", "a=rtcp:", "192.0.2.10"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q left in\n%s", gone, out)
		}
	}
	// The rewritten description parses again, and a second anchor bumps the version.
	s2, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	Anchor(s2, netip.MustParseAddr("198.51.100.1"), 30000, o)
	if s2.Origin[2] != "2" {
		t.Fatalf("version = %s, want 2", s2.Origin[2])
	}
}

func TestFilterOfferNoCommonCodec(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := FilterOffer(s, DefaultCodecs); !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("err = %v", err)
	}
}

func TestFilterAnswer(t *testing.T) {
	t.Parallel()
	offer, _ := Parse(mustRead(t, "testdata/offer.sdp"))
	if err := FilterOffer(offer, DefaultCodecs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, answer string
		formats      []string
		ok           bool
	}{
		{"pcma", "m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\nm=video 0 RTP/AVP 96\r\n", []string{"8", "101"}, true},
		{"extra codec dropped", "m=audio 4000 RTP/AVP 9 0\r\nm=video 0 RTP/AVP 96\r\n", []string{"0"}, true},
		{"only g722", "m=audio 4000 RTP/AVP 9\r\nm=video 0 RTP/AVP 96\r\n", nil, false},
		{"rejected", "m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n", nil, false},
		{"one m line", "m=audio 4000 RTP/AVP 0\r\n", nil, false},
	} {
		a, err := Parse([]byte("v=0\r\no=- 5 5 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" + tc.answer))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = FilterAnswer(a, offer)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if tc.ok && !slices.Equal(a.Audio().Formats, tc.formats) {
			t.Fatalf("%s: formats %v, want %v", tc.name, a.Audio().Formats, tc.formats)
		}
	}
}

func TestDirectionAndHold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{"c=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n", "sendrecv"},
		{"c=IN IP4 1.2.3.4\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\n", "inactive"},
		{"c=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n", "sendonly"},
		{"c=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n", "sendonly"},
	} {
		s, err := Parse([]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n" + tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Direction(s.Audio()); got != tc.want {
			t.Errorf("%q: direction %s, want %s", tc.body, got, tc.want)
		}
		Anchor(s, netip.MustParseAddr("10.9.9.9"), 5000, &Origin{})
		s2, _ := Parse(s.Marshal())
		if got := s2.Direction(s2.Audio()); got != tc.want {
			t.Errorf("%q: direction after anchor %s, want %s", tc.body, got, tc.want)
		}
	}
}

// FuzzParseRewrite checks that no input panics the parser or the rewriter, and that whatever
// telgw sends on (filtered and anchored) parses again to the same audio formats and address.
func FuzzParseRewrite(f *testing.F) {
	f.Add(mustRead(f, "testdata/offer.sdp"))
	f.Add([]byte("v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 ::1\nm=audio 1 RTP/SAVP 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		_ = s.Marshal()
		if err := FilterOffer(s, DefaultCodecs); err != nil {
			return
		}
		addr := netip.MustParseAddr("203.0.113.7")
		Anchor(s, addr, 40000, &Origin{ID: 1})
		out := s.Marshal()
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten description does not parse: %v\n%s", err, out)
		}
		a := s2.Audio()
		if a == nil || s2.Addr(a) != netip.AddrPortFrom(addr, 40000) {
			t.Fatalf("anchor lost:\n%s", out)
		}
		if !slices.Equal(a.Formats, s.Audio().Formats) {
			t.Fatalf("formats %v, want %v", a.Formats, s.Audio().Formats)
		}
	})
}

// BenchmarkRelayOffer is the per-call SDP work of the B2BUA: parse, filter, anchor, marshal.
func BenchmarkRelayOffer(b *testing.B) {
	in := mustRead(b, "testdata/offer.sdp")
	addr := netip.MustParseAddr("198.51.100.1")
	o := &Origin{ID: 1}
	b.ReportAllocs()
	for b.Loop() {
		s, err := Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		if err := FilterOffer(s, DefaultCodecs); err != nil {
			b.Fatal(err)
		}
		Anchor(s, addr, 30000, o)
		_ = s.Marshal()
	}
}
