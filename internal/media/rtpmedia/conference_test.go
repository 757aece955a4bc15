package rtpmedia

import (
	"testing"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/mixer"
)

// TestConferenceOnPlayers: three legs' receivers feed a mixer.Conference whose per-participant
// feeds drive three players in one pacing group; each leg is sent the other two.
func TestConferenceOnPlayers(t *testing.T) {
	t.Parallel()
	s := manual(t)
	var conf mixer.Conference
	values := []int{10, 20, 40} // frame ids: ×100 on the wire
	var players []*Player
	var caps []*capture
	for i, v := range values {
		r := NewReceiver(ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU}, Depth: 1})
		for seq := range 5 {
			r.Push(frame(uint16(seq), uint32(i+1), v/10))
		}
		id := string(rune('a' + i))
		conf.Join(id, r)
		w := &capture{}
		caps = append(caps, w)
		players = append(players, s.NewPlayer(w, PlayerConfig{Codec: audio.PCMU, SSRC: uint32(100 + i), Group: 7, Feed: conf.Feed(id)}))
	}
	if players[0].shard != players[1].shard || players[1].shard != players[2].shard {
		t.Fatal("one group, different shards")
	}
	due := time.Unix(1000, 0)
	for range 3 {
		for _, p := range players {
			p.tick(due)
		}
		due = due.Add(Frame)
	}
	for i, w := range caps {
		pk := w.take()
		if len(pk) != 3 {
			t.Fatalf("leg %d: %d packets", i, len(pk))
		}
		want := 0
		for j, v := range values {
			if j != i {
				want += v * 10
			}
		}
		got := int(audio.PCMU.DecodeSample(pk[2].Payload[80]))
		if d := got - want; d < -want/16-16 || d > want/16+16 {
			t.Errorf("leg %d hears %d, want about %d", i, got, want)
		}
	}
	// A prompt to one participant replaces its mix; the others go on mixing.
	ev := newEvents()
	players[0].Enqueue(ev.play("p", make([]int16, 160), false), false)
	for _, p := range players {
		p.tick(due)
	}
	if pk := caps[0].take(); len(pk) != 1 || audio.PCMU.DecodeSample(pk[0].Payload[0]) != 0 {
		t.Errorf("prompt during a conference: %v", pk)
	}
	ev.wait(t, 2)
}
