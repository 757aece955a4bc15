package webrtc

import (
	"errors"
	"strings"
	"testing"
)

const minimalOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 8 0 126\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=sendonly\r\n"

func TestInspect(t *testing.T) {
	t.Parallel()
	ad, err := inspect(minimalOffer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefs []string
		want  Media
	}{
		{nil, Media{Codec: PCMA, PayloadType: 8, DTMFPayloadType: 126, Direction: SendOnly}},
		{[]string{"pcmu"}, Media{Codec: PCMU, PayloadType: 0, DTMFPayloadType: 126, Direction: SendOnly}},
	} {
		if m, ok := ad.pick(tc.prefs); !ok || m != tc.want {
			t.Errorf("pick(%v) = %+v, %v; want %+v", tc.prefs, m, ok, tc.want)
		}
	}
	noICE := strings.Replace(minimalOffer, "a=ice-pwd:p\r\n", "", 1)
	if _, err := inspect(noICE); !errors.Is(err, ErrNoICE) || !errors.Is(err, ErrNotAcceptable) {
		t.Errorf("no ice-pwd: %v", err)
	}
}

func TestRewriteDirection(t *testing.T) {
	t.Parallel()
	out := rewriteDirection(minimalOffer, Inactive)
	if strings.Contains(out, "a=sendonly") || strings.Count(out, "a=inactive") != 1 {
		t.Fatalf("rewrite:\n%s", out)
	}
	noDir := strings.Replace(minimalOffer, "a=sendonly\r\n", "", 1)
	if out := rewriteDirection(noDir, SendOnly); strings.Count(out, "a=sendonly") != 1 {
		t.Fatalf("added:\n%s", out)
	}
	for d, want := range map[Direction]Direction{SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive, SendRecv: SendRecv} {
		if got := d.answerTo(); got != want {
			t.Errorf("answerTo(%s) = %s", d, got)
		}
	}
}

func TestDTMFRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range "0123456789*#ABCD" {
		ev, ok := DTMFEvent(r)
		if !ok {
			t.Fatalf("no event for %c", r)
		}
		d := DTMF{Event: ev, End: true, Volume: 10, Duration: 800}
		got, err := ParseDTMF(d.Marshal())
		if err != nil || got != d || got.Digit() != string(r) {
			t.Fatalf("%c: %+v %v", r, got, err)
		}
	}
	if _, ok := DTMFEvent('x'); ok {
		t.Fatal("x is not a DTMF digit")
	}
	if _, err := ParseDTMF([]byte{1, 2}); !errors.Is(err, ErrShortDTMF) {
		t.Fatal(err)
	}
}

// FuzzInspect feeds arbitrary descriptions to the offer checks: they must return an error
// matching ErrNotAcceptable or a usable G.711 stream, never panic.
func FuzzInspect(f *testing.F) {
	f.Add(minimalOffer)
	f.Add(strings.ReplaceAll(minimalOffer, "SAVPF", "AVP"))
	f.Add("v=0\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		ad, err := inspect(s)
		if err != nil {
			if !errors.Is(err, ErrNotAcceptable) {
				t.Fatalf("error %v does not match ErrNotAcceptable", err)
			}
			return
		}
		if m, ok := ad.pick(nil); !ok || (m.Codec != PCMU && m.Codec != PCMA) {
			t.Fatalf("accepted without G.711: %+v", m)
		}
		_ = rewriteDirection(s, Inactive)
	})
}

// FuzzParseDTMF checks that any 4-byte prefix round-trips (the R bit aside).
func FuzzParseDTMF(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x03, 0x20})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDTMF(b)
		if err != nil {
			return
		}
		if got, _ := ParseDTMF(d.Marshal()); got != d {
			t.Fatalf("round trip %+v -> %+v", d, got)
		}
	})
}
