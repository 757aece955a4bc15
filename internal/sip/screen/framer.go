package screen

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Over TCP and TLS, sipgo's transport closes a connection whose byte stream it cannot parse,
// without a word: the peer sees its transaction time out, or a reset. The stream screen frames
// the inbound stream itself (RFC 3261 §18.3: each message ends where Content-Length says),
// checks each complete message with sipgo's parser and hands sipgo only what it will read. A
// malformed request gets the answer the UDP screen would give (Datagram), written on the
// connection (RFC 3261 §18.2.2), and then the connection is closed: after a message that cannot
// be parsed, its framing, and so where the next message starts, cannot be trusted. A request
// sipgo parses but the screen answers (505 for another SIP-Version) leaves the connection open.

// streamMaxHeader caps the header section of a message on a stream. A peer that sends more
// without an empty line gets a 400 and the connection is closed, so a connection never holds
// more than this (or sipgo's message limit) of unframed bytes.
const streamMaxHeader = 64 << 10

// Frame is what the framer found next in the stream: bytes for sipgo, or a message to answer
// (or drop) instead.
type Frame struct {
	data []byte   // a keep-alive or one complete message, as received
	msg  []byte   // when set, what sipgo gets instead of data: the message rewritten by CanonicalLWS
	bad  *Verdict // set when sipgo is not to see the message: answer or drop it
	keep bool     // with bad: the message was framed and parsed, so the stream goes on
}

// Bad is the verdict on a message sipgo is not to see (answer or drop it); nil when the frame
// passes.
func (fr Frame) Bad() *Verdict { return fr.bad }

// Keep, with Bad, reports that the message was framed and parsed, so the stream goes on.
func (fr Frame) Keep() bool { return fr.keep }

// KeepAlive reports whether a passed frame is keep-alive bytes (CRLFs, NULs), not a message.
func (fr Frame) KeepAlive() bool {
	return len(fr.data) > 0 && (fr.data[0] == '\r' || fr.data[0] == '\n' || fr.data[0] == 0)
}

// Hand is what sipgo is to read of a frame that passed.
func (fr Frame) Hand() []byte {
	if fr.msg != nil {
		return fr.msg
	}
	return fr.data
}

// Framer splits an inbound SIP byte stream into messages by the empty line that ends
// the header section and Content-Length (RFC 3261 §7.5, §18.3), and keep-alives (RFC 5626
// §4.4.1). It holds at most one unframed message, capped by streamMaxHeader and the
// parser's MaxMessageLength.
type Framer struct {
	parser    *sip.Parser
	maxHeader int // header section cap, bytes
	buf       []byte
	off       int  // buf[:off] is framed
	inMsg     bool // buf[off:] starts a message (not keep-alive bytes)
	lineEnd   int  // the length of the message's start-line once it is read; 0 before
	scan      int  // where the search for the header end resumes, relative to off
	msgLen    int  // the current message's length once its header section is read; 0 before
	failed    bool // a bad frame was returned: nothing follows
}

// NewFramer returns a framer that checks messages with p and caps them at p.MaxMessageLength.
func NewFramer(p *sip.Parser) *Framer {
	return &Framer{parser: p, maxHeader: min(streamMaxHeader, p.MaxMessageLength)}
}

// Push appends received bytes (Fill reads them straight from a connection instead).
// Frames returned before stay valid until the next Push or Fill.
func (f *Framer) Push(p []byte) {
	f.compact()
	f.buf = append(f.buf, p...)
}

// Fill reads once from r into the framer.
func (f *Framer) Fill(r io.Reader) (int, error) {
	f.compact()
	if cap(f.buf)-len(f.buf) < 2048 {
		f.buf = slices.Grow(f.buf, max(4096, cap(f.buf)))
	}
	n, err := r.Read(f.buf[len(f.buf):cap(f.buf)])
	f.buf = f.buf[:len(f.buf)+n]
	return n, err
}

// InMessage reports whether the unframed bytes begin a message (not keep-alive bytes), so a
// reader knows a message is under way.
func (f *Framer) InMessage() bool { return f.inMsg }

// compact drops the framed bytes from buf.
func (f *Framer) compact() {
	if f.off > 0 {
		f.buf = f.buf[:copy(f.buf, f.buf[f.off:])]
		f.off = 0
	}
}

// ping is the RFC 5626 §4.4.1 keep-alive ping; sipgo answers it with a CRLF when it reads it
// alone.
const ping = "\r\n\r\n"

// Next returns the next frame; ok is false when more bytes are needed (or after a bad frame).
func (f *Framer) Next() (fr Frame, ok bool) {
	if f.failed {
		return Frame{}, false
	}
	rest := f.buf[f.off:]
	if len(rest) == 0 {
		return Frame{}, false
	}
	if !f.inMsg {
		// Between messages: NUL padding (sipgo skips a read of only NULs) and CRLFs, which
		// RFC 3261 §7.5 has ignored before a start-line; sipgo answers a read of exactly a
		// ping, so a ping is one frame, and a ping still arriving is waited for. Other CRs and
		// LFs go one frame each up to where they part from a ping, as sipgo skips them too.
		if n := leading(rest, "\x00"); n > 0 {
			return f.take(n), true
		}
		if rest[0] == '\r' || rest[0] == '\n' {
			k := 0
			for k < len(ping) && k < len(rest) && rest[k] == ping[k] {
				k++
			}
			switch {
			case k == len(ping):
				return f.take(k), true
			case k == len(rest):
				return Frame{}, false
			}
			return f.take(max(k, 1)), true
		}
		f.inMsg = true
	}
	if f.msgLen == 0 {
		if bad := f.readHeader(rest); bad != nil {
			return f.fail(*bad), true
		}
		if f.msgLen == 0 {
			return Frame{}, false
		}
	}
	if len(rest) < f.msgLen {
		return Frame{}, false
	}
	msg := rest[:f.msgLen]
	f.inMsg, f.lineEnd, f.scan, f.msgLen = false, 0, 0, 0
	// RFC 3261 §7.3.1: folded lines unfolded, whitespace canonical (lws.go); the
	// body, and so the framing, stays as it is.
	canon, rewritten := CanonicalLWS(msg)
	bad, keep := f.check(canon)
	if bad != nil && rewritten {
		// The message as received: passed when only the rewrite broke it, else judged as it
		// came (as the UDP screen does).
		canon, rewritten = msg, false
		bad, keep = f.check(msg)
	}
	switch {
	case bad == nil:
	case keep:
		fr := f.take(len(msg))
		fr.bad, fr.keep = bad, true
		return fr, true
	default:
		return f.fail(*bad), true
	}
	fr = f.take(len(msg))
	if rewritten {
		fr.msg = canon
	}
	return fr, true
}

// take frames the next n bytes.
func (f *Framer) take(n int) Frame {
	fr := Frame{data: f.buf[f.off : f.off+n : f.off+n]}
	f.off += n
	return fr
}

func (f *Framer) fail(v Verdict) Frame {
	f.failed = true
	return Frame{bad: &v}
}

// readHeader looks for the end of the header section of the message rest starts and sets
// msgLen from its Content-Length; it returns the verdict on a message that cannot be framed.
func (f *Framer) readHeader(rest []byte) *Verdict {
	if f.lineEnd == 0 {
		// A start-line that is neither a Request-Line nor a Status-Line: not SIP, so there is
		// no point waiting for the rest (RFC 3261 §7.1, §7.2).
		if i := bytes.IndexByte(rest[f.scan:], '\n'); i < 0 {
			f.scan = len(rest)
		} else {
			f.lineEnd, f.scan = f.scan+i+1, f.scan+i
			line := firstLine(rest)
			if _, _, _, isReq := splitRequestLine(line); !isReq && !bytes.HasPrefix(line, []byte("SIP/")) {
				return &Verdict{action: Drop, why: "not a SIP message"}
			}
		}
	}
	end, scan := headerEnd(rest, f.scan)
	f.scan = scan
	if end < 0 && len(rest) <= f.maxHeader {
		return nil
	}
	if end < 0 || end > f.maxHeader {
		head := rest[:min(len(rest), f.maxHeader)]
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1] // recover only from whole lines
		}
		v := streamReject(head, 400, "Bad Request", "header section longer than "+strconv.Itoa(f.maxHeader)+" bytes")
		return &v
	}
	cl, why := contentLength(rest[:end])
	if why != "" {
		v := streamReject(rest[:end], 400, "Bad Request", why)
		return &v
	}
	if limit := f.parser.MaxMessageLength; end+cl > limit {
		// RFC 3261 §21.4.14: 413, and the connection is closed so that the body is not sent.
		v := streamReject(rest[:end], 413, "Request Entity Too Large",
			"message of "+strconv.Itoa(end+cl)+" bytes exceeds the limit of "+strconv.Itoa(limit))
		return &v
	}
	f.msgLen = end + cl
	return nil
}

// check passes a complete message that sipgo's stream parser reads as exactly these bytes, and
// returns the verdict of the UDP screen on any other. keep is true when sipgo's parser reads
// the message but the screen does not pass it (a Request-Line SIP-Version other than 2.0,
// answered with 505 as over UDP): its framing is sound, so the connection can stay open.
func (f *Framer) check(msg []byte) (v *Verdict, keep bool) {
	_, n, err := f.parser.Parse(msg, true)
	framed := err == nil && n == len(msg)
	if _, _, version, isReq := splitRequestLine(firstLine(msg)); framed && (!isReq || strings.EqualFold(version, "SIP/2.0")) {
		return nil, false
	}
	sv := Datagram(f.parser, msg)
	if sv.action == Pass {
		// sipgo reads the message, but frames it otherwise than its Content-Length does.
		sv, framed = streamReject(msg, 400, "Bad Request", "Content-Length does not frame the message"), false
	}
	return &sv, framed
}

// streamReject is the verdict on a request (answered with code) or another message (dropped)
// that cannot be framed; data is its header section or what of it was received.
func streamReject(data []byte, code int, reason, why string) Verdict {
	method, _, _, isReq := splitRequestLine(firstLine(data))
	if !isReq {
		return Verdict{action: Drop, why: why}
	}
	return answer(data, method, code, reason, why)
}

// leading is the length of the prefix of b made of bytes in set.
func leading(b []byte, set string) int {
	for i, c := range b {
		if strings.IndexByte(set, c) < 0 {
			return i
		}
	}
	return len(b)
}

// headerEnd finds the empty line that ends the header section of a message starting at b[0],
// searching from b[from:]: it returns the header section's length with that line, or -1 and
// where to resume once more bytes came. A line ends with CRLF or, tolerated here so that the
// screen can answer it, a bare LF (RFC 3261 §7: CRLF).
func headerEnd(b []byte, from int) (end, resume int) {
	for i := from; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, len(b)
		}
		i += j
		switch {
		case i+1 == len(b), i+2 == len(b) && b[i+1] == '\r':
			return -1, i
		case b[i+1] == '\n':
			return i + 2, 0
		case b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3, 0
		}
	}
	return -1, len(b)
}

// contentLength is the body length a header section declares (long or compact form, RFC 3261
// §20.14), read as sipgo reads it; why says what is wrong when there is none to trust.
// RFC 3261 §18.3: Content-Length is mandatory on stream transports.
func contentLength(header []byte) (n int, why string) {
	found := false
	_, rest, _ := bytes.Cut(header, []byte("\n")) // the start-line
	for len(rest) > 0 {
		var line []byte
		line, rest = nextHeaderLine(rest)
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if name = bytes.TrimSpace(name); !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		text := string(value)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') { // RFC 3261 §7.3.1 folding
			line, rest = nextHeaderLine(rest)
			text += " " + string(line)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(text), 10, 32)
		if err != nil {
			return 0, "malformed Content-Length header"
		}
		if found && int(v) != n {
			return 0, "conflicting Content-Length headers"
		}
		found, n = true, int(v)
	}
	if !found {
		return 0, "no Content-Length on a stream transport"
	}
	return n, ""
}

// nextHeaderLine cuts the first line, without its CRLF or LF, from b.
func nextHeaderLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}
