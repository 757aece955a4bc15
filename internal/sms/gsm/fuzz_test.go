package gsm

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzEncode checks that any text encodes into parts within the size limits that decode back
// to the text (invalid UTF-8 becomes U+FFFD, as Go's range over a string yields).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "hello", "€€€", "😀", strings.Repeat("a", 161), strings.Repeat("ж€", 40), "\xff\xfe"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, text string, mode uint8) {
		m := Concat(mode % 4)
		e, err := Encode(text, m)
		if err != nil {
			return
		}
		want := string([]rune(text))
		if got := e.Text(); got != want {
			t.Fatalf("round trip %q != %q", got, want)
		}
		if m != ConcatPayload {
			checkParts(t, e, m)
		}
	})
}

// FuzzDecode checks that decoding any octets under any coding yields valid UTF-8 without panic.
func FuzzDecode(f *testing.F) {
	f.Add(byte(0), []byte{0x1B})
	f.Add(byte(8), []byte{0xD8, 0x00})
	f.Add(byte(0x18), []byte{0x00})
	f.Add(byte(3), []byte{0xFF})
	f.Fuzz(func(t *testing.T, c byte, b []byte) {
		if s := Decode(Coding(c), b); !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q", s)
		}
	})
}

// FuzzReassembler feeds user data with arbitrary headers through SplitUDH and the
// Reassembler: no panic, a message completes only with all its parts, nothing leaks.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{5, 0, 3, 1, 2, 1, 'a', 5, 0, 3, 1, 2, 2, 'b'}, uint8(3))
	f.Add([]byte{6, 8, 4, 0, 1, 2, 1, 0, 'a'}, uint8(7))
	f.Add([]byte{0}, uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		r := NewReassembler(time.Second, 4)
		now := time.Unix(0, 0)
		for len(stream) > 0 {
			n := int(cut%16) + 1
			if n > len(stream) {
				n = len(stream)
			}
			ud := stream[:n]
			stream = stream[n:]
			info, found, payload, err := SplitUDH(ud)
			if err != nil {
				continue
			}
			p := Part{From: "a", To: "b", Coding: Coding(cut), Data: payload}
			if found {
				p.Concat = info
			}
			if m, ok := r.Add(now, p); ok {
				if m.Missing != 0 || !utf8.ValidString(m.Text) {
					t.Fatalf("bad complete message %+v", m)
				}
			}
			if r.Pending() > 4 {
				t.Fatalf("pending %d over limit", r.Pending())
			}
		}
		r.Expire(now.Add(time.Hour))
		if r.Pending() != 0 {
			t.Fatalf("pending %d after expiry", r.Pending())
		}
	})
}
