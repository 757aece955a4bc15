package gsm

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// Concat selects how a message longer than one short message travels (per carrier).
type Concat int

// The concatenation methods.
const (
	// ConcatUDH8 puts a concatenation information element with an 8-bit reference in each
	// part's user data header (3GPP TS 23.040 §9.2.3.24.1). The default.
	ConcatUDH8 Concat = iota
	// ConcatUDH16 uses the 16-bit reference element instead (TS 23.040 §9.2.3.24.8).
	ConcatUDH16
	// ConcatSAR sends the parts without UDH and marks them with the sar_msg_ref_num,
	// sar_total_segments and sar_segment_seqnum TLVs (SMPP 3.4 §5.3.2.22–24).
	ConcatSAR
	// ConcatPayload sends the whole message in one PDU in the message_payload TLV
	// (SMPP 3.4 §5.3.2.32) and lets the SMSC split it.
	ConcatPayload
)

// ParseConcat reads a concatenation method name as used in configuration.
func ParseConcat(s string) (Concat, error) {
	switch s {
	case "", "udh", "udh8":
		return ConcatUDH8, nil
	case "udh16":
		return ConcatUDH16, nil
	case "sar":
		return ConcatSAR, nil
	case "payload", "message_payload":
		return ConcatPayload, nil
	}
	return 0, fmt.Errorf("unknown concatenation %q (want udh8, udh16, sar or payload)", s)
}

// String names the method as configuration spells it.
func (c Concat) String() string {
	switch c {
	case ConcatUDH16:
		return "udh16"
	case ConcatSAR:
		return "sar"
	case ConcatPayload:
		return "payload"
	}
	return "udh8"
}

// Size limits of TS 23.040 §9.2.3.16 (140 octets of user data) expressed per coding.
const (
	// MaxGSM7Single is the septets of one unconcatenated GSM-7 message.
	MaxGSM7Single = 160
	// MaxUCS2Single is the UTF-16 units of one unconcatenated UCS-2 message (140 octets).
	MaxUCS2Single = 70
	// MaxParts is the most parts the one-octet "maximum number" field can count.
	MaxParts = 255
	// MaxPayload is the largest message_payload value (SMPP 3.4 §5.3.2.32).
	MaxPayload = 64000
)

// ErrTooLong means the message needs more parts than the concatenation method can number.
var ErrTooLong = errors.New("gsm: message too long")

// Encoded is a message's user data, chosen coding and parts, ready for submit_sm.
type Encoded struct {
	// Coding is CodingDefault (GSM-7, unpacked) or CodingUCS2.
	Coding Coding
	// Parts hold each part's user data without any header. One part when the message fits in
	// one short message or travels as message_payload.
	Parts [][]byte
	// Units counts septets (GSM-7) or UTF-16 code units (UCS-2) of the whole message.
	Units int
}

// perPart returns the capacity of one part of a concatenated message in septets or UTF-16
// units. A UDH of 6 (8-bit reference) or 7 (16-bit) octets costs 7 or 8 septets once packed
// with fill bits (TS 23.040 §9.2.3.24); SAR parts get an 8-bit reference UDH from the SMSC.
func perPart(c Coding, m Concat) int {
	if c == CodingUCS2 {
		if m == ConcatUDH16 {
			return 66 // 140-7 = 133 octets, floor to whole units
		}
		return 67 // 140-6 = 134 octets
	}
	if m == ConcatUDH16 {
		return 152
	}
	return 153
}

// Encode picks GSM-7 when every character fits (with the extension table), else UCS-2, and
// splits the result into parts for method m. A part never ends between an escape and its
// extension character nor between the two halves of a surrogate pair, so every part decodes
// on its own.
func Encode(text string, m Concat) (Encoded, error) {
	coding := CodingUCS2
	if IsGSM7(text) {
		coding = CodingDefault
	}
	// One buffer holds the whole message (the single part, or every part's bytes in turn):
	// this runs for every message accepted and submitted.
	capacity := len(text) + 8
	if coding == CodingUCS2 {
		capacity = 2*len(text) + 8
	}
	b := make([]byte, 0, capacity)
	total := 0
	for _, r := range text {
		var n int
		b, n = appendUnit(b, coding, r)
		total += n
	}
	enc := Encoded{Coding: coding, Units: total}
	single := MaxGSM7Single
	if coding == CodingUCS2 {
		single = MaxUCS2Single
	}
	if total <= single || m == ConcatPayload {
		if m == ConcatPayload && len(b) > MaxPayload {
			return Encoded{}, fmt.Errorf("%w: %d octets exceed message_payload's %d", ErrTooLong, len(b), MaxPayload)
		}
		enc.Parts = [][]byte{b}
		return enc, nil
	}
	// Split at unit boundaries: a unit (an escape and its extension character, a surrogate
	// pair) never straddles two parts.
	limit := perPart(coding, m)
	var scratch [4]byte
	start, off, n := 0, 0, 0
	for _, r := range text {
		u, un := appendUnit(scratch[:0], coding, r)
		if n+un > limit {
			enc.Parts = append(enc.Parts, b[start:off:off])
			start, n = off, 0
		}
		off += len(u)
		n += un
	}
	enc.Parts = append(enc.Parts, b[start:off:off])
	if len(enc.Parts) > MaxParts {
		return Encoded{}, fmt.Errorf("%w: %d parts exceed %d", ErrTooLong, len(enc.Parts), MaxParts)
	}
	return enc, nil
}

// appendUnit appends r's encoding in coding to b and returns it with r's size in septets or
// UTF-16 units. A GSM-7 rune must be in the alphabet (IsGSM7); in UCS-2 a rune beyond the
// basic plane is a surrogate pair, and one that has none is U+FFFD.
func appendUnit(b []byte, coding Coding, r rune) ([]byte, int) {
	if coding == CodingDefault {
		if nb := appendGSM7(b, r); nb != nil {
			return nb, len(nb) - len(b)
		}
		return b, 0 // not in the alphabet: IsGSM7 let no such rune through
	}
	if r1, r2 := utf16.EncodeRune(r); r1 != '\uFFFD' {
		return append(b, byte(r1>>8), byte(r1), byte(r2>>8), byte(r2)), 2
	}
	if r > 0xFFFF {
		return append(b, 0xFF, 0xFD), 1
	}
	return append(b, byte(r>>8), byte(r)), 1
}

// Text decodes the whole message back (for logs and tests).
func (e Encoded) Text() string {
	var b []byte
	for _, p := range e.Parts {
		b = append(b, p...)
	}
	return Decode(e.Coding, b)
}

// UDH returns the user data header of part seq (1-based) of total for method m, or nil for
// SAR and payload (TS 23.040 §9.2.3.24: UDHL, then IEI 0x00 with an 8-bit or IEI 0x08 with a
// 16-bit reference, the maximum number and the sequence number).
func UDH(m Concat, ref uint16, total, seq int) []byte {
	switch m {
	case ConcatUDH8:
		return []byte{0x05, 0x00, 0x03, byte(ref), byte(total), byte(seq)}
	case ConcatUDH16:
		return []byte{0x06, 0x08, 0x04, byte(ref >> 8), byte(ref), byte(total), byte(seq)}
	}
	return nil
}

// ConcatInfo is the concatenation element found in a part's user data header.
type ConcatInfo struct {
	// Ref is the concatenated short message reference number.
	Ref uint16
	// Ref16 is true for the 16-bit reference element.
	Ref16 bool
	// Total is the maximum number of parts, Seq this part's 1-based number.
	Total, Seq uint8
}

// ErrBadUDH means the user data header is longer than the user data.
var ErrBadUDH = errors.New("gsm: malformed user data header")

// SplitUDH separates the user data header from ud (which starts with UDHL, TS 23.040
// §9.2.3.24) and reports its concatenation element, if any. An element whose numbers are
// zero or out of order is ignored, as §9.2.3.24.1 tells receivers to.
func SplitUDH(ud []byte) (info ConcatInfo, found bool, payload []byte, err error) {
	if len(ud) == 0 {
		return ConcatInfo{}, false, nil, ErrBadUDH
	}
	udhl := int(ud[0])
	if udhl+1 > len(ud) {
		return ConcatInfo{}, false, nil, ErrBadUDH
	}
	ies := ud[1 : udhl+1]
	payload = ud[udhl+1:]
	for len(ies) >= 2 {
		iei, l := ies[0], int(ies[1])
		if 2+l > len(ies) {
			return ConcatInfo{}, false, nil, ErrBadUDH
		}
		d := ies[2 : 2+l]
		ies = ies[2+l:]
		var c ConcatInfo
		switch {
		case iei == 0x00 && l == 3:
			c = ConcatInfo{Ref: uint16(d[0]), Total: d[1], Seq: d[2]}
		case iei == 0x08 && l == 4:
			c = ConcatInfo{Ref: uint16(d[0])<<8 | uint16(d[1]), Ref16: true, Total: d[2], Seq: d[3]}
		default:
			continue
		}
		if c.Total == 0 || c.Seq == 0 || c.Seq > c.Total {
			continue
		}
		info, found = c, true
	}
	if len(ies) != 0 {
		return ConcatInfo{}, false, nil, ErrBadUDH
	}
	return info, found, payload, nil
}
