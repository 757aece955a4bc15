package bridge

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRelay(t *testing.T, timeout time.Duration) *Relay {
	t.Helper()
	r, err := New(Config{PortMin: 31000, PortMax: 31999, MediaTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func packet(t *testing.T, seq uint16) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, SSRC: 7}, Payload: make([]byte, 160)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recv(t *testing.T, c *net.UDPConn) (rtp.Packet, netip.AddrPort) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return p, from
}

func addr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func TestRelayLatchesAndRelaysBothWays(t *testing.T) {
	r := newRelay(t, -1)
	a, err := r.NewUDPLeg()
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.NewUDPLeg()
	if err != nil {
		t.Fatal(err)
	}
	if a.Local().Port()%2 != 0 || a.Local() == b.Local() {
		t.Fatalf("ports %v %v", a.Local(), b.Local())
	}
	pa, pb := peer(t), peer(t)
	// a's peer announced a wrong port in SDP (NAT): latching must learn the real one.
	a.SetRemote(netip.MustParseAddrPort("127.0.0.1:9"))
	b.SetRemote(addr(pb))
	br := r.Bridge(a, b)
	defer br.Close()

	if _, err := pa.WriteToUDPAddrPort(packet(t, 1), a.Local()); err != nil {
		t.Fatal(err)
	}
	p, from := recv(t, pb)
	if p.SequenceNumber != 1 || from != b.Local() {
		t.Fatalf("b peer got seq %d from %v", p.SequenceNumber, from)
	}
	if _, err := pb.WriteToUDPAddrPort(packet(t, 100), b.Local()); err != nil {
		t.Fatal(err)
	}
	if p, _ := recv(t, pa); p.SequenceNumber != 100 {
		t.Fatalf("a peer got seq %d", p.SequenceNumber)
	}
	// A stranger's packets to a latched leg are dropped; the next real one still passes.
	stranger := peer(t)
	_, _ = stranger.WriteToUDPAddrPort(packet(t, 2), a.Local())
	_, _ = pa.WriteToUDPAddrPort(packet(t, 4), a.Local())
	if p, _ := recv(t, pb); p.SequenceNumber != 4 {
		t.Fatalf("got seq %d, want 4 (stranger's 2 dropped)", p.SequenceNumber)
	}
	if got := a.Stats().Lost.Load(); got != 2 {
		t.Fatalf("lost = %d, want 2", got)
	}
	// Not RTP: dropped.
	_, _ = pa.WriteToUDPAddrPort([]byte("hello"), a.Local())
	_, _ = pa.WriteToUDPAddrPort(packet(t, 5), a.Local())
	if p, _ := recv(t, pb); p.SequenceNumber != 5 {
		t.Fatalf("got seq %d, want 5", p.SequenceNumber)
	}
	// RTCP on port+1.
	rtcp := []byte{0x80, 200, 0, 1, 0, 0, 0, 7}
	pac := peer(t)
	pbc := peer(t)
	b.SetRemote(netip.AddrPortFrom(addr(pb).Addr(), addr(pbc).Port()-1))
	_, _ = pac.WriteToUDPAddrPort(rtcp, netip.AddrPortFrom(a.Local().Addr(), a.Local().Port()+1))
	_ = pbc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	if n, _, err := pbc.ReadFromUDPAddrPort(buf); err != nil || n != 8 {
		t.Fatalf("rtcp: n=%d err=%v", n, err)
	}
}

func TestMediaTimeout(t *testing.T) {
	r := newRelay(t, 300*time.Millisecond)
	a, _ := r.NewUDPLeg()
	b, _ := r.NewUDPLeg()
	br := r.Bridge(a, b)
	br.Arm()
	select {
	case <-br.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no media timeout")
	}
	if !errors.Is(br.Err(), ErrMediaTimeout) {
		t.Fatalf("err = %v", br.Err())
	}
	br.Close()
	// Ports returned: a new leg can take them again.
	if len(r.ports.used) != 0 {
		t.Fatalf("ports in use: %v", r.ports.used)
	}
}

func TestHoldDoesNotTimeOut(t *testing.T) {
	r := newRelay(t, 200*time.Millisecond)
	a, _ := r.NewUDPLeg()
	b, _ := r.NewUDPLeg()
	br := r.Bridge(a, b)
	br.SetSending(0, false)
	br.SetSending(1, false)
	br.Arm()
	select {
	case <-br.Done():
		t.Fatal("bridge on hold timed out")
	case <-time.After(700 * time.Millisecond):
	}
	br.Close()
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{PortMin: 10, PortMax: 20}, {PortMin: 30000, PortMax: 30000}, {PortMin: 60000, PortMax: 70000}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// A transfer replaces one side's leg: the other side's media goes to the new leg, and the old
// leg is closed.
func TestReplaceLeg(t *testing.T) {
	r := newRelay(t, -1)
	legs := make([]*UDPLeg, 3)
	for i := range legs {
		l, err := r.NewUDPLeg()
		if err != nil {
			t.Fatal(err)
		}
		legs[i] = l
	}
	a, b, c := legs[0], legs[1], legs[2]
	pa, pb, pc := peer(t), peer(t), peer(t)
	a.SetRemote(addr(pa))
	b.SetRemote(addr(pb))
	c.SetRemote(addr(pc))
	br := r.Bridge(a, b)
	defer br.Close()
	_, _ = pa.WriteToUDPAddrPort(packet(t, 1), a.Local())
	if p, _ := recv(t, pb); p.SequenceNumber != 1 {
		t.Fatalf("b got %d", p.SequenceNumber)
	}
	br.Replace(1, c)
	_, _ = pa.WriteToUDPAddrPort(packet(t, 2), a.Local())
	if p, from := recv(t, pc); p.SequenceNumber != 2 || from != c.Local() {
		t.Fatalf("c got %d from %v", p.SequenceNumber, from)
	}
	_, _ = pc.WriteToUDPAddrPort(packet(t, 50), c.Local())
	if p, _ := recv(t, pa); p.SequenceNumber != 50 {
		t.Fatalf("a got %d", p.SequenceNumber)
	}
	if _, err := b.ReadRTP(make([]byte, 10)); err == nil {
		t.Fatal("the replaced leg is still open")
	}
}
