package rtpmedia

import (
	"slices"
	"testing"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// frame is a 20 ms μ-law packet whose samples all decode to value v·100 (v identifies it).
func frame(seq uint16, ssrc uint32, v int) []byte {
	pcm := make([]int16, audio.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(v * 100)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: audio.PCMU.Encode(nil, pcm)}
	b, _ := p.Marshal()
	return b
}

// ids pulls n frames and returns the id of each (0 for silence).
func ids(r *Receiver, n int) []int {
	var out []int
	for range n {
		f := r.Pull(nil)
		if len(f) != audio.FrameSamples {
			panic("frame size")
		}
		v := int(f[80])
		out = append(out, (v+50)/100)
	}
	return out
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	cfg := ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU, 8: audio.PCMA}, EventPT: 101, Depth: 2}
	for _, tc := range []struct {
		name  string
		push  []int // sequence numbers pushed (frame id = seq-99), all before pulling
		pulls int
		want  []int
		check func(t *testing.T, st ReceiverStats)
	}{
		{"in order", []int{100, 101, 102, 103}, 5, []int{1, 2, 3, 4, 0}, nil},
		{"reordered", []int{101, 100, 103, 102}, 4, []int{1, 2, 3, 4}, nil},
		{"loss filled with silence", []int{100, 101, 103, 104}, 4, []int{1, 2, 0, 4},
			func(t *testing.T, st ReceiverStats) {
				if st.Lost != 1 {
					t.Errorf("lost %d", st.Lost)
				}
			}},
		{"duplicates dropped", []int{100, 100, 101, 101, 102}, 3, []int{1, 2, 3},
			func(t *testing.T, st ReceiverStats) {
				if st.Duplicates != 2 {
					t.Errorf("duplicates %d", st.Duplicates)
				}
			}},
		{"burst beyond the delay bound drops the oldest", []int{100, 101, 102, 103, 104, 105, 106, 107}, 3, []int{4, 5, 6},
			func(t *testing.T, st ReceiverStats) {
				if st.Dropped != 3 {
					t.Errorf("dropped %d", st.Dropped)
				}
			}},
		{"sequence wrap", []int{65535, 65536, 65537}, 3, []int{1, 2, 3}, nil},
	} {
		r := NewReceiver(cfg)
		for _, s := range tc.push {
			id := s - 99
			if s > 65000 {
				id = s - 65534
			}
			r.Push(frame(uint16(s), 7, id))
		}
		got := ids(r, tc.pulls)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
		if tc.check != nil {
			tc.check(t, r.Stats())
		}
	}
}

func TestReceiverStreaming(t *testing.T) {
	t.Parallel()
	r := NewReceiver(ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU}, EventPT: 101})
	// Buffering: silence until two packets are held.
	r.Push(frame(10, 1, 1))
	if got := ids(r, 1); got[0] != 0 {
		t.Errorf("buffering: %v", got)
	}
	r.Push(frame(11, 1, 2))
	if got := ids(r, 1); got[0] != 1 {
		t.Errorf("after buffering: %v", got)
	}
	// A late packet (its slot was played) is dropped.
	r.Push(frame(10, 1, 9))
	if r.Stats().Late != 1 {
		t.Errorf("late %d", r.Stats().Late)
	}
	// Underrun (the peer went quiet): silence, and nothing counted lost.
	if got := ids(r, 3); !slices.Equal(got, []int{2, 0, 0}) || r.Stats().Lost != 0 {
		t.Errorf("underrun: %v lost %d", got, r.Stats().Lost)
	}
	// A new SSRC resynchronises.
	r.Push(frame(5000, 2, 30))
	r.Push(frame(5001, 2, 31))
	if got := ids(r, 2); !slices.Equal(got, []int{30, 31}) || r.Stats().Resyncs != 1 {
		t.Errorf("new ssrc: %v %+v", got, r.Stats())
	}
	// A jump far ahead resynchronises too.
	r.Push(frame(9000, 2, 14))
	r.Push(frame(9001, 2, 15))
	if got := ids(r, 2); !slices.Equal(got, []int{14, 15}) {
		t.Errorf("jump: %v", got)
	}
	// Telephone-events come back as tones, once per event.
	ev := func(ts uint32, end bool) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 9002, Timestamp: ts, SSRC: 2},
			Payload: dtmf.Event{Tone: 5, End: end, Duration: 160}.Append(nil)}
		b, _ := p.Marshal()
		return b
	}
	if tone, ok := r.Push(ev(777, false)); !ok || tone != 5 {
		t.Errorf("event: %v %v", tone, ok)
	}
	if _, ok := r.Push(ev(777, true)); ok {
		t.Error("end packet reported again")
	}
	// Garbage and unknown payload types are ignored.
	r.Push([]byte{1, 2, 3})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 2}, Payload: []byte{1}}
	b, _ := p.Marshal()
	r.Push(b)
	if r.Stats().Ignored != 2 {
		t.Errorf("ignored %d", r.Stats().Ignored)
	}
}

func FuzzReceiver(f *testing.F) {
	f.Add(frame(1, 1, 1), frame(3, 1, 2))
	f.Add([]byte{0x80, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0x80, 0, 160}, []byte{0xA0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r := NewReceiver(ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU, 8: audio.PCMA}, EventPT: 101})
		for range 3 {
			r.Push(a)
			r.Push(b)
			if n := len(r.Pull(nil)); n != audio.FrameSamples {
				t.Fatalf("frame of %d samples", n)
			}
		}
	})
}
