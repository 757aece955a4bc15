// Package gsm encodes and decodes SMS user data: the GSM 7-bit default alphabet with its
// extension table (3GPP TS 23.038 §6.2.1, §6.2.1.1) and UCS-2, which telgw treats as UTF-16 so
// that characters outside the BMP survive as surrogate pairs (3GPP TS 23.038 §5, TS 23.040
// §9.2.3.10). GSM-7 is handled unpacked, one septet per octet, as SMPP 3.4 carries it with
// data_coding 0 (SMPP 3.4 §5.2.19); the SMSC packs septets for the air interface.
package gsm

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Coding is an SMPP data_coding value (SMPP 3.4 §5.2.19), which for the values telgw emits maps
// onto the TS 23.038 §4 data coding scheme.
type Coding byte

// Data codings telgw sends and understands.
const (
	// CodingDefault is the SMSC default alphabet, GSM 7-bit for telgw's carriers.
	CodingDefault Coding = 0x00
	// CodingIA5 is IA5 (CCITT T.50) / ASCII.
	CodingIA5 Coding = 0x01
	// CodingBinary is 8-bit binary (octet unspecified).
	CodingBinary Coding = 0x02
	// CodingLatin1 is ISO-8859-1.
	CodingLatin1 Coding = 0x03
	// CodingBinary2 is 8-bit binary (alternative value).
	CodingBinary2 Coding = 0x04
	// CodingUCS2 is UCS-2, big-endian; telgw reads and writes UTF-16 under it.
	CodingUCS2 Coding = 0x08
)

const esc = 0x1B

// basic is the GSM 7-bit default alphabet, TS 23.038 §6.2.1, indexed by septet.
var basic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// extension is the GSM 7-bit default alphabet extension table, TS 23.038 §6.2.1.1: each
// character is sent as ESC (0x1B) followed by the septet given here.
var extension = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

// basicRev and extRev invert the tables for encoding.
var (
	basicRev = func() map[rune]byte {
		m := make(map[rune]byte, len(basic))
		for i, r := range basic {
			if i != esc {
				m[r] = byte(i)
			}
		}
		return m
	}()
	extRev = func() map[rune]byte {
		m := make(map[rune]byte, len(extension))
		for k, r := range extension {
			m[r] = k
		}
		return m
	}()
	// asciiSeptets and asciiCode are the tables above for ASCII, the common case, without a
	// map lookup: septets 0 (none), 1 (code) or 2 (escape, code).
	asciiSeptets, asciiCode = func() (n, code [128]byte) {
		for r := range rune(128) {
			if b, ok := basicRev[r]; ok {
				n[r], code[r] = 1, b
			} else if b, ok := extRev[r]; ok {
				n[r], code[r] = 2, b
			}
		}
		return n, code
	}()
)

// Septets returns how many GSM-7 septets r takes (1, or 2 for an extension character), and 0 when
// r has no GSM-7 representation.
func Septets(r rune) int {
	if r >= 0 && r < 128 {
		return int(asciiSeptets[r])
	}
	if _, ok := basicRev[r]; ok {
		return 1
	}
	if _, ok := extRev[r]; ok {
		return 2
	}
	return 0
}

// IsGSM7 reports whether every character of s is in the GSM-7 default alphabet or its
// extension table.
func IsGSM7(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || Septets(r) == 0 {
			return false
		}
	}
	return true
}

// ErrNotGSM7 means a string has a character outside the GSM-7 alphabet and its extension.
var ErrNotGSM7 = errors.New("gsm: character not in the GSM 7-bit alphabet")

// EncodeGSM7 returns s as unpacked septets, extension characters escaped (TS 23.038 §6.2.1.1).
func EncodeGSM7(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = appendGSM7(out, r)
		if out == nil {
			return nil, ErrNotGSM7
		}
	}
	return out, nil
}

func appendGSM7(out []byte, r rune) []byte {
	if r >= 0 && r < 128 {
		switch asciiSeptets[r] {
		case 1:
			return append(out, asciiCode[r])
		case 2:
			return append(out, esc, asciiCode[r])
		}
		return nil
	}
	if b, ok := basicRev[r]; ok {
		return append(out, b)
	}
	if b, ok := extRev[r]; ok {
		return append(out, esc, b)
	}
	return nil
}

// DecodeGSM7 turns unpacked septets into text. An escape followed by a code the extension
// table lacks shows the default-alphabet character of that code, and a trailing lone escape a
// space, as TS 23.038 §6.2.1.1 asks of receivers. The top bit of each octet is ignored.
func DecodeGSM7(b []byte) string {
	out := make([]rune, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i] & 0x7F
		if c != esc {
			out = append(out, basic[c])
			continue
		}
		if i+1 >= len(b) {
			out = append(out, ' ')
			break
		}
		i++
		n := b[i] & 0x7F
		if r, ok := extension[n]; ok {
			out = append(out, r)
		} else if n == esc {
			out = append(out, ' ') // ESC ESC: reserved for a further extension table
		} else {
			out = append(out, basic[n])
		}
	}
	return string(out)
}

// EncodeUCS2 returns s as big-endian UTF-16 (TS 23.038 §5 UCS-2, extended to surrogate pairs).
func EncodeUCS2(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(u))
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return out
}

// DecodeUCS2 turns big-endian UTF-16 into text; a dangling odd octet is dropped and unpaired
// surrogates become U+FFFD.
func DecodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(u))
}

// Decode turns user data of the given SMPP data_coding into text. Unknown or binary codings
// decode as ISO-8859-1 so that no octet is lost.
func Decode(c Coding, b []byte) string {
	switch {
	case c == CodingDefault:
		return DecodeGSM7(b)
	case c == CodingUCS2:
		return DecodeUCS2(b)
	case c == CodingIA5:
		out := make([]rune, len(b))
		for i, x := range b {
			if x < 0x80 {
				out[i] = rune(x)
			} else {
				out[i] = utf8.RuneError
			}
		}
		return string(out)
	case c&0xF0 == 0xF0: // TS 23.038 §4 "Data coding/message class": bit 2 selects 8-bit
		if c&0x04 == 0 {
			return DecodeGSM7(b)
		}
	case c&0xF0 == 0x10: // TS 23.038 §4 general data coding with message class: bits 3..2
		switch c & 0x0C {
		case 0x00:
			return DecodeGSM7(b)
		case 0x08:
			return DecodeUCS2(b)
		}
	}
	out := make([]rune, len(b))
	for i, x := range b {
		out[i] = rune(x)
	}
	return string(out)
}
