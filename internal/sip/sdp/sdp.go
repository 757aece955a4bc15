// Package sdp parses, filters and rewrites the session descriptions (RFC 4566) that telgw relays
// between the two legs of a call, so that media flows through telgw's RTP relay (media
// anchoring) and only codecs both sides and the relay understand are offered (RFC 3264).
//
// The parser keeps every line it does not need to change, in order, so a rewritten description
// differs from the original only where telgw anchors media or drops a codec.
package sdp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNotAcceptable matches (errors.Is) every error of this package: the description is
// malformed or has nothing telgw can relay. SIP edges answer 488 Not Acceptable Here
// (RFC 3261 §21.4.26) or, for an answer, end the call.
var ErrNotAcceptable = errors.New("sdp: not acceptable")

// MaxSize bounds the descriptions Parse accepts (bytes).
const MaxSize = 16 << 10

// Session is a parsed session description (RFC 4566 §5).
type Session struct {
	// Origin is the o= line's fields (RFC 4566 §5.2): username, sess-id, sess-version,
	// nettype, addrtype, unicast-address.
	Origin [6]string
	// Conn is the session-level c= address (RFC 4566 §5.7), invalid when absent.
	Conn netip.Addr
	// Lines are the other session-level lines (s=, t=, b=, a=, …) in their original order,
	// without the line ending.
	Lines []string
	// Media are the m= sections in order.
	Media []*Media
}

// Media is one m= section (RFC 4566 §5.14).
type Media struct {
	// Type is the media type: audio, video, application, …
	Type string
	// Port is the transport port; 0 means the stream is disabled (RFC 3264 §5.1).
	Port int
	// Proto is the transport protocol, e.g. RTP/AVP.
	Proto string
	// Formats are the payload types (for RTP) in preference order.
	Formats []string
	// Conn is the media-level c= address, invalid when absent.
	Conn netip.Addr
	// Lines are the other media-level lines in order (a=rtpmap, a=sendrecv, b=, …).
	Lines []string
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotAcceptable}, args...)...)
}

// Parse parses an RFC 4566 description. It requires v=0 first, an o= line with six fields,
// at least one m= line, and a connection address for every enabled m= section (§5.7: either
// session-level or in each media section). Line endings may be CRLF or LF (§5 says CRLF; be
// liberal).
func Parse(b []byte) (*Session, error) {
	if len(b) > MaxSize {
		return nil, bad("longer than %d bytes", MaxSize)
	}
	s := &Session{}
	var cur *Media
	first := true
	haveOrigin := false
	for raw := range bytes.SplitSeq(b, []byte("\n")) {
		line := strings.TrimSuffix(string(raw), "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, bad("line %q is not type=value", trunc(line))
		}
		typ, val := line[0], line[2:]
		if first {
			if line != "v=0" {
				return nil, bad("first line must be v=0 (RFC 4566 §5.1)")
			}
			first = false
			continue
		}
		switch typ {
		case 'v':
			return nil, bad("second v= line")
		case 'o':
			f := strings.Fields(val)
			if len(f) != 6 || cur != nil || haveOrigin {
				return nil, bad("bad o= line (RFC 4566 §5.2)")
			}
			copy(s.Origin[:], f)
			haveOrigin = true
		case 'c':
			a, err := parseConn(val)
			if err != nil {
				return nil, err
			}
			if cur != nil {
				cur.Conn = a
			} else {
				s.Conn = a
			}
		case 'm':
			m, err := parseMedia(val)
			if err != nil {
				return nil, err
			}
			s.Media = append(s.Media, m)
			cur = m
		default:
			if typ < 'a' || typ > 'z' {
				return nil, bad("line type %q", typ)
			}
			if cur != nil {
				cur.Lines = append(cur.Lines, line)
			} else {
				s.Lines = append(s.Lines, line)
			}
		}
	}
	if first {
		return nil, bad("empty description")
	}
	if !haveOrigin {
		return nil, bad("no o= line (RFC 4566 §5.2)")
	}
	if len(s.Media) == 0 {
		return nil, bad("no m= line")
	}
	for _, m := range s.Media {
		if m.Port != 0 && !m.Conn.IsValid() && !s.Conn.IsValid() {
			return nil, bad("m=%s has no connection address (RFC 4566 §5.7)", m.Type)
		}
	}
	return s, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parseConn parses "IN IP4 192.0.2.1" (RFC 4566 §5.7; a multicast TTL suffix is rejected:
// telgw relays unicast only).
func parseConn(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, bad("bad c= line %q", trunc(v))
	}
	a, err := netip.ParseAddr(f[2])
	if err != nil || a.Zone() != "" || (f[1] == "IP4") != a.Is4() {
		return netip.Addr{}, bad("bad c= address %q", trunc(f[2]))
	}
	return a, nil
}

// parseMedia parses "audio 49170 RTP/AVP 0 8 101" (RFC 4566 §5.14; port/count is rejected).
func parseMedia(v string) (*Media, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return nil, bad("bad m= line %q", trunc(v))
	}
	port, err := strconv.Atoi(f[1])
	if err != nil || port < 0 || port > 65535 {
		return nil, bad("bad m= port %q", trunc(f[1]))
	}
	return &Media{Type: f[0], Port: port, Proto: f[2], Formats: f[3:]}, nil
}

// Marshal writes s back with CRLF line endings (RFC 4566 §5).
func (s *Session) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("v=0\r\n")
	b.WriteString("o=" + strings.Join(s.Origin[:], " ") + "\r\n")
	// RFC 4566 §5: s= follows o=; t= and the rest keep their order.
	for _, l := range s.Lines {
		if l[0] == 's' {
			b.WriteString(l + "\r\n")
		}
	}
	if s.Conn.IsValid() {
		b.WriteString(connLine(s.Conn))
	}
	for _, l := range s.Lines {
		if l[0] != 's' {
			b.WriteString(l + "\r\n")
		}
	}
	for _, m := range s.Media {
		fmt.Fprintf(&b, "m=%s %d %s %s\r\n", m.Type, m.Port, m.Proto, strings.Join(m.Formats, " "))
		if m.Conn.IsValid() {
			b.WriteString(connLine(m.Conn))
		}
		for _, l := range m.Lines {
			b.WriteString(l + "\r\n")
		}
	}
	return b.Bytes()
}

func connLine(a netip.Addr) string {
	if a.Is4() {
		return "c=IN IP4 " + a.String() + "\r\n"
	}
	return "c=IN IP6 " + a.String() + "\r\n"
}

// Audio returns the first enabled RTP audio section, or nil.
func (s *Session) Audio() *Media {
	for _, m := range s.Media {
		if m.Type == "audio" && m.Port != 0 && strings.HasPrefix(m.Proto, "RTP/") {
			return m
		}
	}
	return nil
}

// Addr returns where the peer wants m's RTP sent: the media-level c= address or else the
// session-level one, and m's port.
func (s *Session) Addr(m *Media) netip.AddrPort {
	a := m.Conn
	if !a.IsValid() {
		a = s.Conn
	}
	return netip.AddrPortFrom(a, uint16(m.Port))
}

// Direction returns m's RFC 3264 §5.1 direction attribute (sendrecv, sendonly, recvonly or
// inactive), media level first, then session level, default sendrecv. A c= address of 0.0.0.0
// (RFC 3264 §8.4, the older hold style) reads as sendonly when no attribute says otherwise.
func (s *Session) Direction(m *Media) string {
	for _, lines := range [][]string{m.Lines, s.Lines} {
		for _, l := range lines {
			switch l {
			case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
				return l[2:]
			}
		}
	}
	if a := s.Addr(m).Addr(); a.IsValid() && a.IsUnspecified() {
		return "sendonly"
	}
	return "sendrecv"
}
