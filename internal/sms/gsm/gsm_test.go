package gsm

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEncodeChoosesCoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		text   string
		coding Coding
		units  int
		parts  int
	}{
		{"empty", "", CodingDefault, 0, 1},
		{"ascii", "Hello world", CodingDefault, 11, 1},
		{"gsm specials", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", CodingDefault, 42, 1},
		{"extension costs two", "€[]{}|^~\\\f", CodingDefault, 20, 1},
		{"160 septets fit", strings.Repeat("a", 160), CodingDefault, 160, 1},
		{"161 septets split", strings.Repeat("a", 161), CodingDefault, 161, 2},
		{"306 is two parts", strings.Repeat("a", 306), CodingDefault, 306, 2},
		{"307 is three parts", strings.Repeat("a", 307), CodingDefault, 307, 3},
		{"80 euros = 160 septets", strings.Repeat("€", 80), CodingDefault, 160, 1},
		{"ucs2 cyrillic", "Привет", CodingUCS2, 6, 1},
		{"ucs2 70 fit", strings.Repeat("ж", 70), CodingUCS2, 70, 1},
		{"ucs2 71 split", strings.Repeat("ж", 71), CodingUCS2, 71, 2},
		{"emoji is a surrogate pair", "hi 😀", CodingUCS2, 5, 1},
		{"backtick is not gsm", "`", CodingUCS2, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Encode(tt.text, ConcatUDH8)
			if err != nil {
				t.Fatal(err)
			}
			if e.Coding != tt.coding || e.Units != tt.units || len(e.Parts) != tt.parts {
				t.Fatalf("Encode(%q) = coding %d units %d parts %d; want %d %d %d", tt.text, e.Coding, e.Units, len(e.Parts), tt.coding, tt.units, tt.parts)
			}
			if got := e.Text(); got != tt.text {
				t.Fatalf("round trip = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestSplitNeverBreaksEscapesOrSurrogates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		m    Concat
	}{
		{"escape at boundary udh8", strings.Repeat("a", 152) + "€" + strings.Repeat("b", 10), ConcatUDH8},
		{"escape at boundary udh16", strings.Repeat("a", 151) + "€" + strings.Repeat("b", 10), ConcatUDH16},
		{"surrogate at boundary udh8", strings.Repeat("ж", 66) + "😀" + "ж", ConcatUDH8},
		{"surrogate at boundary udh16", strings.Repeat("ж", 65) + "😀😀", ConcatUDH16},
		{"all emoji", strings.Repeat("😀", 100), ConcatSAR},
		{"all euro", strings.Repeat("€", 200), ConcatUDH8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Encode(tt.text, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			checkParts(t, e, tt.m)
			var joined strings.Builder
			for _, p := range e.Parts {
				s := Decode(e.Coding, p)
				if strings.ContainsRune(s, utf8.RuneError) {
					t.Fatalf("part decodes with a replacement character: %q", s)
				}
				joined.WriteString(s)
			}
			if joined.String() != tt.text {
				t.Fatalf("parts decoded separately = %q, want %q", joined.String(), tt.text)
			}
		})
	}
}

// checkParts asserts every part fits in 140 octets with its UDH (in septets for GSM-7).
func checkParts(t *testing.T, e Encoded, m Concat) {
	t.Helper()
	if len(e.Parts) == 1 {
		return
	}
	limit := perPart(e.Coding, m)
	for i, p := range e.Parts {
		n := len(p)
		if e.Coding == CodingUCS2 {
			n /= 2
		}
		if n > limit {
			t.Fatalf("part %d has %d units, limit %d", i+1, n, limit)
		}
		if e.Coding == CodingDefault && len(p) > 0 && p[len(p)-1] == esc {
			t.Fatalf("part %d ends in a lone escape", i+1)
		}
		if e.Coding == CodingUCS2 && len(p) >= 2 && p[len(p)-2]&0xFC == 0xD8 {
			t.Fatalf("part %d ends in a high surrogate", i+1)
		}
	}
}

func TestPayloadIsOnePart(t *testing.T) {
	t.Parallel()
	e, err := Encode(strings.Repeat("x", 1000), ConcatPayload)
	if err != nil || len(e.Parts) != 1 || len(e.Parts[0]) != 1000 {
		t.Fatalf("payload = %d parts, err %v", len(e.Parts), err)
	}
	if _, err := Encode(strings.Repeat("x", MaxPayload+1), ConcatPayload); err == nil {
		t.Fatal("over-long payload accepted")
	}
	if _, err := Encode(strings.Repeat("x", 153*256), ConcatUDH8); err == nil {
		t.Fatal("256 parts accepted")
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		coding Coding
		in     []byte
		want   string
	}{
		{"gsm basic", CodingDefault, []byte{0x48, 0x69, 0x00, 0x01}, "Hi@£"},
		{"gsm euro", CodingDefault, []byte{0x1B, 0x65}, "€"},
		{"gsm unknown escape shows base", CodingDefault, []byte{0x1B, 0x41}, "A"},
		{"gsm trailing escape", CodingDefault, []byte{0x41, 0x1B}, "A "},
		{"gsm escape escape", CodingDefault, []byte{0x1B, 0x1B, 0x41}, " A"},
		{"ucs2", CodingUCS2, []byte{0x04, 0x1F, 0x00, 0x21}, "П!"},
		{"ucs2 surrogates", CodingUCS2, []byte{0xD8, 0x3D, 0xDE, 0x00}, "😀"},
		{"ucs2 odd byte dropped", CodingUCS2, []byte{0x00, 0x41, 0x00}, "A"},
		{"ucs2 lone surrogate", CodingUCS2, []byte{0xD8, 0x3D, 0x00, 0x41}, "\uFFFDA"},
		{"latin1", CodingLatin1, []byte{0x63, 0x61, 0x66, 0xE9}, "café"},
		{"ia5", CodingIA5, []byte{0x41, 0xC1}, "A\uFFFD"},
		{"class ucs2 0x18", 0x18, []byte{0x00, 0x41}, "A"},
		{"class gsm 0xF0", 0xF0, []byte{0x1B, 0x65}, "€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Decode(tt.coding, tt.in); got != tt.want {
				t.Fatalf("Decode = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitUDH(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ud      []byte
		info    ConcatInfo
		found   bool
		payload []byte
		err     bool
	}{
		{"8-bit", []byte{5, 0, 3, 0x42, 2, 1, 'a'}, ConcatInfo{Ref: 0x42, Total: 2, Seq: 1}, true, []byte("a"), false},
		{"16-bit", []byte{6, 8, 4, 0x12, 0x34, 3, 3, 'b'}, ConcatInfo{Ref: 0x1234, Ref16: true, Total: 3, Seq: 3}, true, []byte("b"), false},
		{"other IE first", []byte{9, 0x05, 0x04, 0, 0, 0, 0, 0, 3, 7, 'c'}, ConcatInfo{}, false, nil, true},
		{"port IE then concat", []byte{11, 0x05, 0x04, 0, 0, 0, 0, 0, 3, 7, 2, 2, 'c'}, ConcatInfo{Ref: 7, Total: 2, Seq: 2}, true, []byte("c"), false},
		{"seq zero ignored", []byte{5, 0, 3, 1, 2, 0, 'd'}, ConcatInfo{}, false, []byte("d"), false},
		{"seq beyond total ignored", []byte{5, 0, 3, 1, 2, 3, 'd'}, ConcatInfo{}, false, []byte("d"), false},
		{"udhl too long", []byte{9, 0, 3}, ConcatInfo{}, false, nil, true},
		{"ie too long", []byte{3, 0, 5, 1}, ConcatInfo{}, false, nil, true},
		{"empty", nil, ConcatInfo{}, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, found, payload, err := SplitUDH(tt.ud)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if info != tt.info || found != tt.found || !bytes.Equal(payload, tt.payload) {
				t.Fatalf("SplitUDH = %+v %v %q; want %+v %v %q", info, found, payload, tt.info, tt.found, tt.payload)
			}
		})
	}
}

func TestUDHRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []Concat{ConcatUDH8, ConcatUDH16} {
		h := UDH(m, 0x1234, 3, 2)
		info, found, payload, err := SplitUDH(append(h, 'x'))
		if err != nil || !found || info.Total != 3 || info.Seq != 2 || string(payload) != "x" {
			t.Fatalf("%v: %+v %v %q %v", m, info, found, payload, err)
		}
		if m == ConcatUDH8 && info.Ref != 0x34 || m == ConcatUDH16 && info.Ref != 0x1234 {
			t.Fatalf("%v: ref %#x", m, info.Ref)
		}
	}
}

func TestReassembler(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	r := NewReassembler(time.Minute, 2)
	text := strings.Repeat("a", 152) + "€" + strings.Repeat("😀", 3)
	e, err := Encode(text, ConcatUDH16)
	if err != nil {
		t.Fatal(err)
	}
	// Deliver parts in reverse order, one duplicated.
	var got Message
	var done bool
	for i := len(e.Parts) - 1; i >= 0; i-- {
		p := Part{From: "+1", To: "+2", Coding: e.Coding, Data: e.Parts[i],
			Concat: ConcatInfo{Ref: 9, Ref16: true, Total: uint8(len(e.Parts)), Seq: uint8(i + 1)}}
		got, done = r.Add(now, p)
		if i == len(e.Parts)-1 {
			if done {
				t.Fatal("done after first part")
			}
			got, done = r.Add(now, p)
		}
	}
	if !done || got.Text != text || got.Segments != len(e.Parts) || got.Missing != 0 {
		t.Fatalf("reassembled %+v done %v", got, done)
	}
	if r.Pending() != 0 {
		t.Fatalf("pending %d", r.Pending())
	}

	// Two messages with the same ref from different senders do not mix; the timeout yields partials.
	r.Add(now, Part{From: "+1", To: "+2", Data: []byte("A"), Concat: ConcatInfo{Ref: 1, Total: 2, Seq: 1}})
	r.Add(now.Add(30*time.Second), Part{From: "+3", To: "+2", Data: []byte("B"), Concat: ConcatInfo{Ref: 1, Total: 2, Seq: 2}})
	if exp := r.Expire(now.Add(59 * time.Second)); len(exp) != 0 {
		t.Fatalf("expired early: %+v", exp)
	}
	exp := r.Expire(now.Add(61 * time.Second))
	if len(exp) != 1 || exp[0].From != "+1" || exp[0].Text != "A" || exp[0].Missing != 1 {
		t.Fatalf("expired %+v", exp)
	}
	// A third pending message evicts the oldest (limit 2).
	r.Add(now, Part{From: "+4", To: "+2", Data: []byte("C"), Concat: ConcatInfo{Ref: 1, Total: 2, Seq: 1}})
	r.Add(now, Part{From: "+5", To: "+2", Data: []byte("D"), Concat: ConcatInfo{Ref: 1, Total: 2, Seq: 1}})
	exp = r.Expire(now)
	if len(exp) != 1 || exp[0].From != "+3" {
		t.Fatalf("evicted %+v", exp)
	}
	// A single part passes straight through.
	m, ok := r.Add(now, Part{From: "+1", To: "+2", Coding: CodingUCS2, Data: []byte{0, 'h', 0, 'i'}})
	if !ok || m.Text != "hi" || m.Segments != 1 {
		t.Fatalf("single %+v %v", m, ok)
	}
}

func BenchmarkEncode(b *testing.B) {
	text := strings.Repeat("Hello € world ", 30)
	for b.Loop() {
		if _, err := Encode(text, ConcatUDH8); err != nil {
			b.Fatal(err)
		}
	}
}
