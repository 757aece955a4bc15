package screen

import (
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const benchInvite = "INVITE sip:+15551230001@telgw.example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-1;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"Carrier\" <sip:+15557654321@192.0.2.10>;tag=abc123\r\n" +
	"To: <sip:+15551230001@telgw.example.com>\r\n" +
	"Call-ID: bench-7f3a9c@192.0.2.10\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:+15557654321@192.0.2.10:5060>\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n" +
	"Supported: timer\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 129\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"

// streamInvite is benchInvite over TCP, with the Content-Length of its body.
func streamInvite() string {
	head, body, _ := strings.Cut(strings.Replace(benchInvite, "UDP", "TCP", 1), "\r\n\r\n")
	head = head[:strings.LastIndex(head, "Content-Length:")]
	return head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// BenchmarkDatagram measures the screen's work on a valid INVITE (the good path: the
// canonical-whitespace check and one extra parse) against the parse sipgo does anyway.
func BenchmarkDatagram(b *testing.B) {
	if v := Datagram(sip.NewParser(), []byte(benchInvite)); v.action != Pass {
		b.Fatalf("bench INVITE screened: %s", v.why)
	}
	b.Run("screen", func(b *testing.B) {
		p := sip.NewParser()
		msg := []byte(benchInvite)
		b.ReportAllocs()
		for b.Loop() {
			_ = Datagram(p, msg)
		}
	})
	b.Run("lws-check", func(b *testing.B) { // the canonical-whitespace check every message gets
		msg := []byte(benchInvite)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := CanonicalLWS(msg); ok {
				b.Fatal("bench INVITE rewritten")
			}
		}
	})
	b.Run("sipgo-parse", func(b *testing.B) {
		p := sip.NewParser()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = p.ParseSIP([]byte(benchInvite))
		}
	})
}
