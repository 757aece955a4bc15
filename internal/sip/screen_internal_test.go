package sip

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/telgw/telgw/internal/sip/screen"
)

// replayConn is a PacketConn whose every read returns the same datagram.
type replayConn struct {
	net.PacketConn
	msg  []byte
	from net.Addr
}

func (c *replayConn) ReadFrom(b []byte) (int, net.Addr, error)  { return copy(b, c.msg), c.from, nil }
func (c *replayConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (c *replayConn) SetDeadline(time.Time) error               { return nil }

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

// BenchmarkScreen measures what the UDP screen adds per datagram: ReadFrom through the wrapper
// on a valid INVITE (the good path: one extra parse), against a plain read and against the
// parse sipgo does anyway (screen.BenchmarkDatagram has the parts).
func BenchmarkScreen(b *testing.B) {
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060}
	buf := make([]byte, sip.TransportBufferReadSize)
	if v := screen.Datagram(sip.NewParser(), []byte(benchInvite)); v.Action() != screen.Pass {
		b.Fatalf("bench INVITE screened: %s", v.Why())
	}
	b.Run("plain-read", func(b *testing.B) {
		c := &replayConn{msg: []byte(benchInvite), from: from}
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = c.ReadFrom(buf)
		}
	})
	b.Run("screened-read", func(b *testing.B) {
		c := &screenedPacketConn{PacketConn: &replayConn{msg: []byte(benchInvite), from: from}, parser: sip.NewParser()}
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = c.ReadFrom(buf)
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

// screenStreamInvite is benchInvite over TCP, with the Content-Length of its body.
func screenStreamInvite() string {
	head, body, _ := strings.Cut(strings.Replace(benchInvite, "UDP", "TCP", 1), "\r\n\r\n")
	head = head[:strings.LastIndex(head, "Content-Length:")]
	return head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// replayStream is a connection whose every read returns the same message.
type replayStream struct {
	net.Conn
	msg []byte
}

func (c *replayStream) Read(b []byte) (int, error) { return copy(b, c.msg), nil }

// BenchmarkStreamScreen measures what the stream screen adds per message on TCP: a read
// through the wrapper of a valid INVITE (framing plus one parse), against a plain read and
// against the stream parse sipgo does anyway.
func BenchmarkStreamScreen(b *testing.B) {
	msg := []byte(screenStreamInvite())
	buf := make([]byte, sip.TransportBufferReadSize)
	b.Run("plain-read", func(b *testing.B) {
		c := &replayStream{msg: msg}
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			_, _ = c.Read(buf)
		}
	})
	b.Run("screened-read", func(b *testing.B) {
		l := &screenedListener{transport: "tcp", parser: sip.NewParser()}
		c := &screenedConn{Conn: &replayStream{msg: msg}, l: l, f: screen.NewFramer(l.parser)}
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if n, err := c.Read(buf); err != nil || n != len(msg) {
				b.Fatalf("read %d, %v", n, err)
			}
		}
	})
	b.Run("sipgo-stream-parse", func(b *testing.B) {
		ps := sip.NewParser().NewSIPStream()
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			_ = ps.ParseSIPStream(msg, func(sip.Message) {})
		}
	})
}
