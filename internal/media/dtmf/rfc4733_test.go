package dtmf

import (
	"bytes"
	"testing"
)

func TestToneNames(t *testing.T) {
	t.Parallel()
	for i := range Tone(16) {
		got, err := ParseTone(i.String())
		if err != nil || got != i {
			t.Errorf("ParseTone(%q) = %v, %v", i.String(), got, err)
		}
		if got, err := ParseTone(string(i.Key())); err != nil || got != i {
			t.Errorf("ParseTone(%q) = %v, %v", i.Key(), got, err)
		}
	}
	if got, _ := ParseTone("Pound"); got != Pound {
		t.Error("Pound")
	}
	if got, _ := ParseTone("b"); got != B {
		t.Error("b")
	}
	for _, bad := range []string{"", "ten", "E", "**", "flash"} {
		if _, err := ParseTone(bad); err == nil {
			t.Errorf("ParseTone(%q) accepted", bad)
		}
	}
	if Tone(16).Valid() || Tone(16).Key() != '?' {
		t.Error("event 16 is not DTMF")
	}
}

// RFC 4733 §2.3 layout: event, E|R|volume, 16-bit duration.
func TestEventCodec(t *testing.T) {
	t.Parallel()
	e := Event{Tone: Pound, End: true, Volume: 10, Duration: 800}
	b := e.Append(nil)
	if !bytes.Equal(b, []byte{11, 0x80 | 10, 0x03, 0x20}) {
		t.Fatalf("encoded % x", b)
	}
	got, err := ParseEvent(append(b, 0xEE)) // trailing bytes ignored
	if err != nil || got != e {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	// R bit set by a sender is ignored; volume keeps 6 bits.
	got, _ = ParseEvent([]byte{5, 0x40 | 0x3F, 0, 160})
	if got.End || got.Volume != 63 || got.Tone != 5 || got.Duration != 160 {
		t.Errorf("R bit: %+v", got)
	}
	if _, err := ParseEvent([]byte{1, 2, 3}); err != ErrShortEvent {
		t.Errorf("short: %v", err)
	}
}

func TestPackets(t *testing.T) {
	t.Parallel()
	p := Packets(7, 800, 160, 10) // 100 ms at 20 ms
	// 160, 320, 480, 640 then three end packets at 800.
	if len(p) != 7 {
		t.Fatalf("%d packets: %+v", len(p), p)
	}
	for i, want := range []uint16{160, 320, 480, 640, 800, 800, 800} {
		if p[i].Event.Duration != want || p[i].Event.Tone != 7 || p[i].Event.Volume != 10 {
			t.Errorf("packet %d: %+v", i, p[i])
		}
		if p[i].Event.End != (i >= 4) || p[i].Marker != (i == 0) {
			t.Errorf("packet %d: end %v marker %v", i, p[i].Event.End, p[i].Marker)
		}
	}
	// A tone shorter than one interval is its end packets only, the first marked.
	p = Packets(1, 100, 160, 10)
	if len(p) != 3 || !p[0].Marker || p[1].Marker || !p[2].Event.End {
		t.Errorf("short tone: %+v", p)
	}
}

func payload(tone Tone, end bool, dur uint16) []byte {
	return Event{Tone: tone, End: end, Volume: 10, Duration: dur}.Append(nil)
}

func TestReceiverDedupe(t *testing.T) {
	t.Parallel()
	type pkt struct {
		ts   uint32
		b    []byte
		want int // -1: nothing; else the tone reported
	}
	for _, tc := range []struct {
		name string
		pkts []pkt
	}{
		{"one press with redundant ends", []pkt{
			{1000, payload(1, false, 160), 1}, {1000, payload(1, false, 320), -1},
			{1000, payload(1, true, 480), -1}, {1000, payload(1, true, 480), -1}, {1000, payload(1, true, 480), -1},
		}},
		{"start lost: reported at the end packet", []pkt{
			{1000, payload(2, true, 480), 2}, {1000, payload(2, true, 480), -1},
		}},
		{"same key twice", []pkt{
			{1000, payload(3, true, 480), 3}, {2000, payload(3, false, 160), 3}, {2000, payload(3, true, 400), -1},
		}},
		{"late packet of an older event", []pkt{
			{2000, payload(4, false, 160), 4}, {1000, payload(9, true, 480), -1},
		}},
		{"reordered updates", []pkt{
			{1000, payload(5, false, 320), 5}, {1000, payload(5, false, 160), -1}, {1000, payload(5, true, 480), -1},
		}},
		{"long press in two segments (§2.5.1.3)", []pkt{
			{1000, payload(6, false, 0xFFFF), 6}, {1000 + 0xFFFF, payload(6, false, 160), -1}, {1000 + 0xFFFF, payload(6, true, 320), -1},
		}},
		{"timestamp wrap", []pkt{
			{0xFFFFFF00, payload(7, true, 160), 7}, {0x100, payload(8, true, 160), 8},
		}},
		{"malformed and non-DTMF events ignored", []pkt{
			{1000, []byte{1, 2}, -1}, {1000, payload(32, false, 160), -1}, {1000, payload(0, false, 160), 0},
		}},
	} {
		var r Receiver
		for i, p := range tc.pkts {
			tone, ok := r.Push(p.ts, p.b)
			if (p.want < 0) == ok || (ok && int(tone) != p.want) {
				t.Errorf("%s: packet %d: got %v %v, want %d", tc.name, i, tone, ok, p.want)
			}
		}
	}
}

func FuzzReceiver(f *testing.F) {
	f.Add(uint32(1000), payload(1, false, 160), uint32(1000), payload(1, true, 480))
	f.Add(uint32(0), []byte{0xFF, 0xFF, 0xFF}, uint32(5), []byte{})
	f.Fuzz(func(t *testing.T, ts1 uint32, b1 []byte, ts2 uint32, b2 []byte) {
		var r Receiver
		_, _ = r.Push(ts1, b1)
		// A packet repeated verbatim is never a second press.
		_, _ = r.Push(ts2, b2)
		if _, ok := r.Push(ts2, b2); ok {
			t.Fatal("a repeated packet was reported twice")
		}
		if e, err := ParseEvent(b1); err == nil {
			if got, _ := ParseEvent(e.Append(nil)); got != e {
				t.Fatalf("round trip %+v → %+v", e, got)
			}
		}
	})
}
