package webrtc

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/telgw/telgw/internal/bridge"
)

// carrier is a plain RTP endpoint (the carrier's media gateway) on a UDP socket.
type carrier struct {
	conn           *net.UDPConn
	audio, dtmf    atomic.Int64
	lastDigit      atomic.Value
	done           chan struct{}
	audioPT, dtmPT uint8
}

func newCarrier(t *testing.T, audioPT, dtmfPT uint8) *carrier {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cr := &carrier{conn: c, done: make(chan struct{}), audioPT: audioPT, dtmPT: dtmfPT}
	go func() {
		defer close(cr.done)
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			switch p.PayloadType {
			case audioPT:
				cr.audio.Add(1)
			case dtmfPT:
				cr.dtmf.Add(1)
				if d, err := ParseDTMF(p.Payload); err == nil && d.End {
					cr.lastDigit.Store(d.Digit())
				}
			}
		}
	}()
	return cr
}

func (c *carrier) send(t *testing.T, to *net.UDPAddr, pkts []*rtp.Packet) {
	t.Helper()
	for _, p := range pkts {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.conn.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBridgeToPlainRTP relays a WebRTC leg against the plain RTP leg of package bridge: the
// path of a browser ⇄ PSTN call, with the carrier numbering telephone-event 101 and the
// browser 126.
func TestBridgeToPlainRTP(t *testing.T) {
	base := socketCount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	relay, err := bridge.New(bridge.Config{PortMin: 41000, PortMax: 41999, MediaTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t, nil)
	b := newFakeBrowser(t, true)
	wl, answer, err := e.Answer(ctx, b.createOffer(), LegOptions{CallID: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	b.setAnswer(answer)
	wl.SetPeerMedia(Media{Codec: PCMU, PayloadType: 0, DTMFPayloadType: 101})

	car := newCarrier(t, 0, 101)
	ul, err := relay.NewUDPLeg()
	if err != nil {
		t.Fatal(err)
	}
	carAddr := car.conn.LocalAddr().(*net.UDPAddr)
	ul.SetRemote(carAddr.AddrPort())
	br := relay.Bridge(ul, wl)
	br.Arm()
	waitEvent(t, wl, EventConnected, 10*time.Second)
	b.waitConnected(ctx)

	const n = 100
	to := net.UDPAddrFromAddrPort(ul.Local())
	var seq uint16
	var pkts []*rtp.Packet
	for i := 0; i < n; i++ {
		seq++
		pkts = append(pkts, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}, Payload: make([]byte, 160)})
	}
	pkts = append(pkts, dtmfPackets('9', 101, &seq, 5000)...)
	car.send(t, to, pkts)
	b.send(n)
	b.sendDigit('1')
	eventually(t, "RTP across the bridge", func() bool {
		return b.rxAudio.Load() >= n && b.rxDTMF.Load() >= 6 && car.audio.Load() >= n && car.dtmf.Load() >= 6
	})
	b.mu.Lock()
	digits := append([]string(nil), b.digits...)
	b.mu.Unlock()
	if !contains(digits, "9") || car.lastDigit.Load() != "1" {
		t.Fatalf("digits: browser %v, carrier %v", digits, car.lastDigit.Load())
	}
	t.Logf("browser rx audio=%d dtmf=%d; carrier rx audio=%d dtmf=%d", b.rxAudio.Load(), b.rxDTMF.Load(), car.audio.Load(), car.dtmf.Load())

	br.Close() // closes both legs
	_ = car.conn.Close()
	<-car.done
	b.close()
	waitSockets(t, base)
}
