package rtpmedia

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// TestDTMFLatencyLoopback measures DTMF recognition latency end to end over real sockets: a
// Player sends RFC 4733 events (sendDtmfTones) to a UDP peer whose read loop feeds a Receiver
// and a Collector (maxTonesToCollect 1), the path a carrier's key press takes into
// RecognizeCompleted. Latency runs from SendDTMF to the collector's completion.
func TestDTMFLatencyLoopback(t *testing.T) {
	t.Parallel()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	s, err := NewScheduler(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := s.NewPlayer(udpWriter{conn, peer.LocalAddr().(*net.UDPAddr)}, PlayerConfig{Codec: audio.PCMU, EventPT: 101, SSRC: 42})
	defer p.Close()

	tones := make(chan dtmf.Tone, 16)
	go func() {
		r := NewReceiver(ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU}, EventPT: 101})
		buf := make([]byte, 1500)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				close(tones)
				return
			}
			if tone, ok := r.Push(buf[:n]); ok {
				tones <- tone
			}
		}
	}()

	var lat []time.Duration
	for _, k := range []dtmf.Tone{1, 5, 9, dtmf.Pound, 0, dtmf.Star, 7, 3, 2, dtmf.D} {
		c, _ := dtmf.NewCollector(dtmf.DefaultCollectConfig(), time.Now(), false)
		start := time.Now()
		if err := p.SendDTMF([]dtmf.Tone{k}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-tones:
			o := c.Tone(got, time.Now())
			if !o.Done || o.Reason != dtmf.MaxTonesReached || !slices.Equal(o.Tones, []dtmf.Tone{k}) {
				t.Fatalf("sent %v, collected %+v", k, o)
			}
			lat = append(lat, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("tone %v not received", k)
		}
		time.Sleep(200 * time.Millisecond) // the tone's end packets and gap
		for len(tones) > 0 {
			t.Fatalf("tone reported twice: %v", <-tones)
		}
	}
	slices.Sort(lat)
	t.Logf("RFC 4733 DTMF recognition latency (send → RecognizeCompleted): median %v, max %v (the next 20 ms slot plus loopback)",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}
