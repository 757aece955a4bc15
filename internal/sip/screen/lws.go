package screen

import (
	"bytes"
)

// RFC 3261 lets linear whitespace appear where sipgo's parser does not expect it: a header
// field may be folded over several lines (§7.3.1, a line starting with SP or HT continues the
// one before), and the separators of structured values are written with optional whitespace
// around them (§25.1: SEMI, EQUAL, COMMA, SLASH and HCOLON are SWS-padded). sipgo accepts such
// a message but keeps the whitespace inside parameter names and values (a From tag of
// " 98asjd8" keyed "tag "), so the transaction layer misses the tag and answers 400 to RFC
// 4475's valid "short tortuous INVITE" (§3.1.1.1). The screens hand sipgo such messages with
// their header section rewritten the way RFC 3261 says to read it: continuation lines unfolded
// into one SP, and in the header fields sipgo parses structurally, runs of whitespace made one
// SP and the whitespace around separators dropped. Quoted strings and <…> URIs are copied as
// they are, and so are the other header fields' values (free text such as Subject keeps its
// whitespace); the body is untouched, so Content-Length still frames the message.

// lwsHeaders are the header fields, long and compact names (RFC 3261 §7.3.3) in lower case,
// whose values are rewritten.
var lwsHeaders = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true,
	"contact": true, "m": true, "route": true, "record-route": true, "cseq": true,
	"content-type": true, "c": true, "max-forwards": true, "content-length": true, "l": true,
}

// CanonicalLWS returns msg with its header section in canonical form, and whether that differs
// from msg; msg itself is never modified. A message without the empty line that ends its
// header section, or one that needs no rewriting, is returned as it is.
func CanonicalLWS(msg []byte) ([]byte, bool) {
	end, _ := headerEnd(msg, 0)
	if end < 0 {
		return msg, false
	}
	head := msg[:end]
	start := bytes.IndexByte(head, '\n') + 1 // the start-line is left alone
	if !needsLWS(head[start:]) {
		return msg, false
	}
	out := make([]byte, 0, len(msg))
	out = append(out, head[:start]...)
	rest := head[start:]
	for len(rest) > 0 {
		var field []byte
		field, rest = nextField(rest)
		if len(bytes.TrimSpace(field)) == 0 {
			break // the empty line
		}
		out = appendField(out, field)
		out = append(out, '\r', '\n')
	}
	out = append(out, '\r', '\n')
	return append(out, msg[end:]...), true
}

// needsLWS reports cheaply, without allocating, whether a header section (without its
// start-line) holds a folded line or whitespace that CanonicalLWS would change: the common
// message, written by a stack in canonical form, is passed on without a copy. It jumps from
// space to space and looks closer only at a line where a space starts a line or touches
// another or a separator; a tab anywhere sends it through every line.
func needsLWS(h []byte) bool {
	if bytes.IndexByte(h, '\t') >= 0 {
		return linesNeedLWS(h)
	}
	for i := 0; i < len(h); {
		k := bytes.IndexByte(h[i:], ' ')
		if k < 0 {
			return false
		}
		k += i
		prev, next := byte(0), byte('\n') // a first line has nothing to continue
		if k > 0 {
			prev = h[k-1]
		}
		if k+1 < len(h) {
			next = h[k+1]
		}
		i = k + 1
		if prev == '\n' {
			return true // a continuation line
		}
		if !isLWSSeparator(prev) && !isLWSSeparator(next) && next != ' ' && next != ':' {
			continue
		}
		from := bytes.LastIndexByte(h[:k], '\n') + 1
		to := len(h)
		if e := bytes.IndexByte(h[k:], '\n'); e >= 0 {
			to = k + e + 1
		}
		if lineNeedsLWS(bytes.TrimSuffix(bytes.TrimSuffix(h[from:to], []byte("\n")), []byte("\r"))) {
			return true
		}
		i = to
	}
	return false
}

// linesNeedLWS is needsLWS line by line.
func linesNeedLWS(h []byte) bool {
	for len(h) > 0 {
		var line []byte
		line, h = nextHeaderLine(h)
		if len(h) > 0 && (h[0] == ' ' || h[0] == '\t') {
			return true // a continuation line follows
		}
		if lineNeedsLWS(line) {
			return true
		}
	}
	return false
}

// lineNeedsLWS reports whether one header line (without its line end) is of lwsHeaders and
// not in canonical form.
func lineNeedsLWS(line []byte) bool {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !isLWSHeader(name) {
		return false
	}
	c := name[len(name)-1]
	return c == ' ' || c == '\t' || valueNeedsLWS(value)
}

// isLWSHeader reports whether name (as received, maybe padded) is one of lwsHeaders.
func isLWSHeader(name []byte) bool {
	name = bytes.TrimSpace(name)
	var buf [16]byte
	if len(name) == 0 || len(name) > len(buf) {
		return false
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return lwsHeaders[string(buf[:len(name)])]
}

// valueNeedsLWS reports whether appendValue would change v (beyond trimming its ends).
func valueNeedsLWS(v []byte) bool {
	v = bytes.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '<':
			if k := bytes.IndexByte(v[i:], '>'); k >= 0 {
				i += k
			} else {
				return false
			}
		case '\t':
			return true
		case ' ':
			if n := v[i+1]; n == ' ' || n == '\t' || isLWSSeparator(n) || i > 0 && isLWSSeparator(v[i-1]) {
				return true
			}
		}
	}
	return false
}

func isLWSSeparator(c byte) bool {
	return c == ';' || c == '=' || c == ',' || c == '/'
}

// nextField cuts the next header field, with its continuation lines, from h: the lines joined
// by one SP each (RFC 3261 §7.3.1), without line ends.
func nextField(h []byte) (field, rest []byte) {
	field, rest = nextHeaderLine(h)
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		var cont []byte
		cont, rest = nextHeaderLine(rest)
		if len(bytes.TrimSpace(cont)) == 0 {
			continue // whitespace alone continues nothing
		}
		field = append(append(bytes.Clone(field), ' '), bytes.TrimLeft(cont, " \t")...)
	}
	return field, rest
}

// appendField appends one unfolded header field in canonical form to out.
func appendField(out, field []byte) []byte {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok || !lwsHeaders[string(bytes.ToLower(bytes.TrimSpace(name)))] {
		return append(out, field...)
	}
	out = append(out, bytes.TrimSpace(name)...)
	out = append(out, ':', ' ')
	return appendValue(out, value)
}

// appendValue appends a structured header value to out with whitespace runs made one SP, and
// none around separators or at either end; quoted strings (with their quoted pairs) and <…>
// are copied unchanged.
func appendValue(out, v []byte) []byte {
	pending := false // whitespace seen and not yet written
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ' ' || c == '\t':
			pending = true
			continue
		case isLWSSeparator(c):
			pending = false
			out = append(out, c)
			for i+1 < len(v) && (v[i+1] == ' ' || v[i+1] == '\t') {
				i++
			}
			continue
		}
		if pending && len(out) > 0 && !isLWSSeparator(out[len(out)-1]) && out[len(out)-1] != ' ' {
			out = append(out, ' ')
		}
		pending = false
		j := i + 1
		switch c {
		case '"':
			for j < len(v) && v[j] != '"' {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(v))
		case '<':
			if k := bytes.IndexByte(v[i:], '>'); k >= 0 {
				j = i + k + 1
			} else {
				j = len(v)
			}
		}
		out = append(out, v[i:j]...)
		i = j - 1
	}
	return out
}
