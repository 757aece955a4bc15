// Package screen checks inbound SIP messages byte by byte before sipgo's transport reads them,
// so that a malformed request gets the answer RFC 3261 asks for instead of silence.
//
// sipgo's transport parses each UDP datagram and, when that fails, logs and drops it: the peer
// gets no answer and retransmits until its transaction times out (RFC 3261 §17.1.1.2, 32 s).
// RFC 3261 §8.2 and §21.4.1 (and RFC 4475 §3.1.2 for each torture case) expect a 400 Bad
// Request instead, so the SIP listeners (internal/sip) check every datagram with the same parser
// before sipgo sees it (Datagram) and answer the malformed requests themselves (Response). On
// TCP and TLS a Framer cuts the stream into messages first. The package works on bytes: it uses
// sipgo's parser only to know what sipgo will accept, and holds no connection, logger or metric.
package screen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Action is what the listener does with a screened message.
type Action int

// Actions.
const (
	Pass    Action = iota // hand it to sipgo
	Respond               // answer it here and hide it from sipgo
	Drop                  // hide it from sipgo without an answer
)

// Verdict is the outcome of screening one message.
type Verdict struct {
	action Action
	code   int    // status code to answer with (Respond)
	reason string // its Reason-Phrase
	why    string // what was wrong: the Warning text, and the log's
	req    recovered
	// data, with Pass, is the message to hand sipgo instead of the one received: its
	// header section unfolded and its whitespace made canonical (lws.go). Nil: the
	// message as received.
	data []byte
}

// Action is what to do with the message.
func (v Verdict) Action() Action { return v.action }

// Code is the status code to answer with (Respond), else 0.
func (v Verdict) Code() int { return v.code }

// Why says what was wrong with the message, for the Warning header and the log.
func (v Verdict) Why() string { return v.why }

// CallID is the message's Call-ID as far as it could be recovered ("" if not).
func (v Verdict) CallID() string { return v.req.callID }

// Data, with Pass, is what to hand sipgo instead of the message received (its header section
// made canonical, see CanonicalLWS); nil means the message as received.
func (v Verdict) Data() []byte { return v.data }

// Dropped returns v turned into a drop, with why appended to its reason (e.g. the answer was
// rate-limited).
func (v Verdict) Dropped(why string) Verdict {
	v.action, v.why = Drop, v.why+why
	return v
}

// recovered holds the header fields a response needs (RFC 3261 §8.2.6.2), as raw text found by
// a line scan that tolerates what sipgo's parser refuses.
type recovered struct {
	method string   // from the Request-Line
	vias   []string // every Via header value, in order
	from   string
	to     string
	callID string
	cseq   string
}

// answerable reports whether r holds enough to route a response back and let the client match
// it to its transaction (RFC 3261 §17.1.3: top Via branch and CSeq method), with a Call-ID.
func (r *recovered) answerable() bool {
	_, ok := parseTopVia(r.vias)
	return ok && r.callID != "" && len(strings.Fields(r.cseq)) == 2
}

// Datagram decides what happens to one datagram (or one framed message of a stream). It passes what sipgo's parser accepts (and
// keep-alives), except a request whose SIP-Version is not 2.0 (RFC 3261 §8.2, RFC 4475
// §3.1.2.16: 505). A request sipgo cannot parse is answered 400 (416 for a Request-URI scheme
// it does not know, RFC 4475 §3.3.3) when its Via, Call-ID and CSeq can be recovered, and
// dropped otherwise (RFC 3261 §18.3: nothing to route a response by). Malformed responses are
// dropped (RFC 4475 §3.1.2.5, §3.1.2.19), as are ACKs (RFC 3261 §17.2.1: never answered) and
// datagrams that are not SIP.
func Datagram(p *sip.Parser, data []byte) Verdict {
	// RFC 5626 §4.4.1 keep-alives (and the NUL padding sipgo skips) pass untouched.
	if len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return Verdict{action: Pass}
	}
	line := firstLine(data)
	method, uri, version, isReq := splitRequestLine(line)
	if isReq && !strings.EqualFold(version, "SIP/2.0") {
		return answer(data, method, 505, "Version Not Supported", "SIP-Version "+version+" is not supported")
	}
	// RFC 3261 §7.3.1: sipgo reads the header section as RFC 3261 means it once it is unfolded
	// and its whitespace canonical (RFC 4475 §3.1.1.1).
	canon, rewritten := CanonicalLWS(data)
	_, err := p.ParseSIP(canon)
	if err == nil {
		if rewritten {
			return Verdict{action: Pass, data: canon}
		}
		return Verdict{action: Pass}
	}
	if rewritten {
		// The message as received: passed when only the rewrite broke it, else diagnosed.
		if _, err = p.ParseSIP(data); err == nil {
			return Verdict{action: Pass}
		}
	}
	if !isReq {
		why := "not a SIP message"
		if bytes.HasPrefix(line, []byte("SIP/")) {
			why = "malformed response"
		}
		return Verdict{action: Drop, why: why + ": " + err.Error()}
	}
	code, reason, why := diagnose(p, data, line, method+" "+uri+" "+version, uri, err)
	return answer(data, method, code, reason, why)
}

// answer recovers the headers of a request to answer with code.
func answer(data []byte, method string, code int, reason, why string) Verdict {
	v := Verdict{action: Respond, code: code, reason: reason, why: why, req: recoverHeaders(data)}
	v.req.method = method
	switch {
	case !v.req.answerable():
		v.action, v.code, v.why = Drop, 0, why+"; no Via, Call-ID or CSeq to answer with"
	case strings.EqualFold(method, "ACK"):
		v.action, v.code, v.why = Drop, 0, why+"; an ACK is never answered"
	}
	return v
}

// diagnose names what made sipgo refuse a request: the Request-Line, a header (found by running
// sipgo's own header parsers line by line) or the framing.
// canonical is the Request-Line rebuilt with single spaces.
func diagnose(p *sip.Parser, data, line []byte, canonical, uri string, err error) (int, string, string) {
	// The Request-Line alone, as a message without headers.
	if _, lerr := p.ParseSIP(append(bytes.Clone(line), "\r\n\r\n"...)); lerr != nil {
		switch scheme, ok := uriScheme(uri); {
		case string(line) != canonical:
			return 400, "Bad Request", "extra whitespace in the Request-Line" // RFC 4475 §3.1.2.9, §3.1.2.10
		case strings.ContainsAny(uri, " \t"):
			return 400, "Bad Request", "whitespace in the Request-URI" // RFC 4475 §3.1.2.8
		case ok && !knownScheme(scheme):
			return 416, "Unsupported URI Scheme", "Request-URI scheme " + scheme + " is not supported"
		}
		return 400, "Bad Request", "malformed Request-URI" // e.g. RFC 4475 §3.1.2.7
	}
	hp := sip.HeadersParser(sip.DefaultHeadersParser())
	lfOnly := false
	for _, h := range headerLines(data) {
		if h.lfOnly {
			lfOnly = true
		}
		if _, herr := hp.ParseHeader(nil, []byte(h.text)); herr != nil {
			if name, _, ok := strings.Cut(h.text, ":"); ok && strings.TrimSpace(name) != "" {
				return 400, "Bad Request", "malformed " + strings.TrimSpace(name) + " header"
			}
			return 400, "Bad Request", "header line without a colon"
		}
	}
	switch {
	case lfOnly:
		return 400, "Bad Request", "line not ended by CRLF"
	case errors.Is(err, sip.ErrParseReadBodyIncomplete):
		return 400, "Bad Request", "Content-Length larger than the body"
	case errors.Is(err, sip.ErrMessageTooLarge):
		return 400, "Bad Request", "message too large"
	case errors.Is(err, sip.ErrParseEOF), errors.Is(err, io.ErrUnexpectedEOF):
		return 400, "Bad Request", "header section not ended by an empty line"
	case errors.Is(err, sip.ErrParseLineNoCRLF):
		return 400, "Bad Request", "CR without LF"
	}
	return 400, "Bad Request", err.Error()
}

// firstLine is data up to its first LF, without the CR before it.
func firstLine(data []byte) []byte {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	return bytes.TrimSuffix(data, []byte("\r"))
}

// splitRequestLine tolerantly splits a line that looks like a Request-Line
// (RFC 3261 §7.1: Method SP Request-URI SP SIP-Version), allowing extra whitespace.
func splitRequestLine(line []byte) (method, uri, version string, ok bool) {
	i := bytes.IndexAny(line, " \t")
	if i <= 0 || !isToken(line[:i]) {
		return "", "", "", false
	}
	j := bytes.LastIndexAny(line, " \t")
	rest := bytes.TrimRight(line, " \t")
	if j == len(line)-1 { // trailing whitespace (RFC 4475 §3.1.2.10)
		j = bytes.LastIndexAny(rest, " \t")
	}
	if j <= i || !isVersion(rest[j+1:]) {
		return "", "", "", false
	}
	return string(line[:i]), string(bytes.TrimSpace(rest[i+1 : j])), string(rest[j+1:]), true
}

// isToken reports whether b is an RFC 3261 §25.1 token (a Method).
func isToken(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return len(b) > 0
}

// isVersion reports whether b is an RFC 3261 §7.1 SIP-Version: "SIP/" 1*DIGIT "." 1*DIGIT,
// case-insensitively.
func isVersion(b []byte) bool {
	if len(b) < 7 || !bytes.EqualFold(b[:4], []byte("SIP/")) {
		return false
	}
	major, minor, ok := bytes.Cut(b[4:], []byte("."))
	return ok && isDigits(major) && isDigits(minor)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// uriScheme returns the scheme of an absolute URI (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" /
// "-" / "." ) ":").
func uriScheme(uri string) (string, bool) {
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" {
		return "", false
	}
	for i, c := range []byte(scheme) {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	return scheme, true
}

func knownScheme(s string) bool {
	switch strings.ToLower(s) {
	case "sip", "sips", "tel":
		return true
	}
	return false
}

// headerLine is one header field of the header section, continuation lines unfolded.
type headerLine struct {
	text   string
	lfOnly bool // some line of it ended with a bare LF
}

// headerLines splits the header section (after the start line, up to the first empty line or
// the end of data) into header fields, accepting LF as well as CRLF line ends and unfolding
// continuation lines (RFC 3261 §7.3.1).
func headerLines(data []byte) []headerLine {
	var out []headerLine
	rest := data
	first := true
	for len(rest) > 0 {
		line := rest
		lfOnly := false
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			if l, ok := bytes.CutSuffix(line, []byte("\r")); ok {
				line = l
			} else {
				lfOnly = true
			}
		} else {
			rest = nil
		}
		if first {
			first = false
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			prev := &out[len(out)-1]
			prev.text += " " + string(bytes.TrimSpace(line))
			prev.lfOnly = prev.lfOnly || lfOnly
			continue
		}
		out = append(out, headerLine{text: string(bytes.TrimRight(line, " \t")), lfOnly: lfOnly})
	}
	return out
}

// recoverHeaders finds the Via, From, To, Call-ID and CSeq header fields of a request (long or
// compact form, RFC 3261 §7.3.3) with a line scan that needs nothing else to be well-formed.
// A field holding control characters is left out, so that copying it into a response cannot
// break the response's own framing.
func recoverHeaders(data []byte) recovered {
	var r recovered
	for _, h := range headerLines(data) {
		name, value, ok := strings.Cut(h.text, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" || hasControl(value) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			r.vias = append(r.vias, value)
		case "from", "f":
			r.from = keepFirst(r.from, value)
		case "to", "t":
			r.to = keepFirst(r.to, value)
		case "call-id", "i":
			r.callID = keepFirst(r.callID, value)
		case "cseq":
			r.cseq = keepFirst(r.cseq, value)
		}
	}
	return r
}

func keepFirst(have, v string) string {
	if have != "" {
		return have
	}
	return v
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// topVia is the first via-parm of a request, split up to be answered along (RFC 3261 §18.2.2).
type topVia struct {
	protocol string   // "SIP/2.0/UDP", whitespace removed
	sentBy   string   // host[:port]
	params   []string // via-params, empty ones left out
	rest     string   // the other via-parms of the same Via header value, as received
}

// parseTopVia splits the first via-parm of vias; ok is false when it has no usable sent-by.
func parseTopVia(vias []string) (topVia, bool) {
	if len(vias) == 0 {
		return topVia{}, false
	}
	v, rest := splitComma(vias[0])
	rest = strings.Trim(rest, " \t;,")
	head, params, _ := strings.Cut(v, ";")
	f := strings.Fields(head)
	if len(f) < 2 {
		return topVia{}, false
	}
	t := topVia{protocol: strings.Join(f[:len(f)-1], ""), sentBy: f[len(f)-1], rest: rest}
	if len(t.protocol) < 5 || !strings.EqualFold(t.protocol[:4], "SIP/") {
		return topVia{}, false
	}
	if _, _, ok := splitSentBy(t.sentBy); !ok {
		return topVia{}, false
	}
	for p := range strings.SplitSeq(params, ";") {
		if p = strings.TrimSpace(p); p != "" {
			t.params = append(t.params, p)
		}
	}
	return t, true
}

// param returns a via-param's value and whether it is present.
func (t topVia) param(name string) (string, bool) {
	for _, p := range t.params {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// splitComma cuts s at its first comma outside a quoted string.
func splitComma(s string) (string, string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '\\':
			i++
		case ',':
			if !quoted {
				return s[:i], strings.TrimSpace(s[i+1:])
			}
		}
	}
	return s, ""
}

// splitSentBy splits sent-by (RFC 3261 §20.42: host [ ":" port ]); port is 0 when absent.
func splitSentBy(s string) (string, int, bool) {
	host, port := s, 0
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, false
		}
		host, port = h, n
	} else if strings.ContainsAny(s, ":[]") {
		return "", 0, false
	}
	if host == "" {
		return "", 0, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return "", 0, false
		}
	}
	return host, port, true
}

// responseAddr is where the answer to a request from src goes. RFC 3261 §18.2.2 sends it to
// the address in the top Via's "received" parameter, which §18.2.1 sets to the source address
// whenever sent-by names another, so the host is always src's; the port is sent-by's (5060 when
// absent), or src's when the Via asks for rport (RFC 3581 §4). sipgo answers well-formed
// requests the same way. A sent-by host is never resolved or used: a forged Via cannot point
// the answer at a third party.
func responseAddr(t topVia, src netip.AddrPort) netip.AddrPort {
	if _, ok := t.param("rport"); ok {
		return src
	}
	_, port, _ := splitSentBy(t.sentBy)
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(src.Addr(), uint16(port))
}

// Response writes the answer to v's request from src and where to send it. It copies the
// Via (received and rport filled in per RFC 3261 §18.2.1 and RFC 3581 §4), From, To (with tag
// added, RFC 3261 §8.2.6.2), Call-ID and CSeq fields, and explains the status in a Warning
// (RFC 3261 §20.43, code 399: miscellaneous).
func Response(v Verdict, src netip.AddrPort, tag string) ([]byte, netip.AddrPort) {
	t, _ := parseTopVia(v.req.vias)
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", v.code, v.reason)
	b.WriteString("Via: " + t.protocol + " " + t.sentBy)
	host, _, _ := splitSentBy(t.sentBy)
	ip := src.Addr().Unmap()
	rport, hasRport := t.param("rport")
	for _, p := range t.params {
		k, _, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "received":
			continue
		case "rport":
			if rport == "" {
				p = "rport=" + strconv.Itoa(int(src.Port()))
			}
		}
		b.WriteString(";" + p)
	}
	if hasRport || host != ip.String() {
		b.WriteString(";received=" + ip.String())
	}
	if t.rest != "" {
		b.WriteString(", " + t.rest)
	}
	b.WriteString("\r\n")
	for _, via := range v.req.vias[1:] {
		b.WriteString("Via: " + via + "\r\n")
	}
	if v.req.from != "" {
		b.WriteString("From: " + v.req.from + "\r\n")
	}
	if to := v.req.to; to != "" {
		if !hasTag(to) {
			to += ";tag=" + tag
		}
		b.WriteString("To: " + to + "\r\n")
	}
	b.WriteString("Call-ID: " + v.req.callID + "\r\n")
	b.WriteString("CSeq: " + v.req.cseq + "\r\n")
	b.WriteString(`Warning: 399 telgw "` + quotedText(v.why) + "\"\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes(), responseAddr(t, src)
}

// hasTag reports whether a From/To value carries a tag parameter (after the name-addr's ">",
// or anywhere in an addr-spec form).
func hasTag(v string) bool {
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	} else if _, params, ok := strings.Cut(v, ";"); ok {
		v = ";" + params
	} else {
		return false
	}
	for p := range strings.SplitSeq(v, ";") {
		k, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "tag") {
			return true
		}
	}
	return false
}

// quotedText makes s the inside of a quoted-string (RFC 3261 §25.1), at most 120 bytes.
func quotedText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 120; i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// NewTag is a To tag for a response outside any dialog (RFC 3261 §19.3: 32 random bits at least).
func NewTag() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}
