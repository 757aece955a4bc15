// Package bridge moves media between the two legs of a call that telgw anchors. A leg is
// anything that reads and writes RTP and RTCP packets: a plain UDP leg toward a carrier or a
// SIP endpoint (this package), or a WebRTC leg (ICE + DTLS-SRTP, package bridge/webrtc) that
// decrypts to the same plain packets.
//
// Relaying is packet for packet without transcoding: both legs were offered the same payload
// types (internal/sip/sdp), so G.711 audio and RFC 4733 telephone-events pass through unchanged.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Leg is one side of a media bridge. Read methods block until a packet arrives or the leg is
// closed (then they return net.ErrClosed); a packet the leg's peer should not have sent is
// dropped inside the leg, never returned.
type Leg interface {
	// ReadRTP reads the next RTP packet into buf.
	ReadRTP(buf []byte) (int, error)
	// WriteRTP sends one RTP packet to the leg's peer; with no known peer it is dropped.
	WriteRTP(p []byte) error
	// ReadRTCP reads the next RTCP packet into buf.
	ReadRTCP(buf []byte) (int, error)
	// WriteRTCP sends one RTCP packet to the leg's peer.
	WriteRTCP(p []byte) error
	// Close releases the leg's sockets; pending reads return net.ErrClosed.
	Close() error
}

// UDPLeg is a plain RTP/RTCP leg on a pair of UDP sockets (RTP on an even port, RTCP on the
// next, RFC 3550 §11). It sends to the address the peer's SDP names until a packet arrives,
// then latches onto the packet's source (symmetric RTP, RFC 4961; what SBCs call latching or
// comedia), which gets media through NATs that rewrite the peer's source port.
type UDPLeg struct {
	rtp, rtcp *net.UDPConn
	local     netip.AddrPort
	release   func()
	closeOnce sync.Once

	mu         sync.Mutex
	remote     netip.AddrPort // RTP destination
	remoteRTCP netip.AddrPort
	latched    bool
	latchedC   bool

	lastRecv atomic.Int64 // unix nanos of the last RTP packet accepted
	stats    Stats
	lost     func(n uint64) // reports sequence gaps to the relay's metrics
}

// Stats are a leg's packet counters (received from its peer).
type Stats struct {
	Packets atomic.Uint64
	Bytes   atomic.Uint64
	// Lost counts RTP sequence numbers skipped (RFC 3550 §6.4.1, without reorder handling).
	Lost    atomic.Uint64
	lastSeq atomic.Int32 // -1 before the first packet
}

// Local is the leg's RTP address (what telgw writes in the SDP toward this leg's peer).
func (l *UDPLeg) Local() netip.AddrPort { return l.local }

// Stats returns the leg's receive counters.
func (l *UDPLeg) Stats() *Stats { return &l.stats }

// SetRemote sets where RTP goes (RTCP to port+1) from the peer's SDP and forgets a latched
// source, as a new offer or answer (a re-INVITE, RFC 3264 §8) may move the peer's media.
func (l *UDPLeg) SetRemote(ap netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ap == l.remote && l.latched {
		return
	}
	l.remote, l.latched = ap, false
	l.remoteRTCP, l.latchedC = netip.AddrPortFrom(ap.Addr(), ap.Port()+1), false
}

// Remote returns the current RTP destination.
func (l *UDPLeg) Remote() netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remote
}

// LastReceived is when the leg last accepted an RTP packet (zero time if never).
func (l *UDPLeg) LastReceived() time.Time {
	n := l.lastRecv.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// accept applies latching: the first packet from anywhere after SetRemote latches its source
// (an unspecified or unknown remote included); afterwards only that source is accepted.
func (l *UDPLeg) accept(from netip.AddrPort, rtcp bool) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	l.mu.Lock()
	defer l.mu.Unlock()
	if rtcp {
		if !l.latchedC {
			l.remoteRTCP, l.latchedC = from, true
		}
		return from == l.remoteRTCP
	}
	if !l.latched {
		l.remote, l.latched = from, true
	}
	return from == l.remote
}

// ReadRTP implements Leg. Datagrams that are not RTP (RFC 3550 §5.1 header, version 2) or come
// from a source other than the latched one are dropped.
func (l *UDPLeg) ReadRTP(buf []byte) (int, error) {
	var h rtp.Header
	for {
		n, from, err := l.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, err
		}
		if _, err := h.Unmarshal(buf[:n]); err != nil || h.Version != 2 {
			continue
		}
		if !l.accept(from, false) {
			continue
		}
		l.lastRecv.Store(time.Now().UnixNano())
		l.stats.Packets.Add(1)
		l.stats.Bytes.Add(uint64(n))
		if prev := l.stats.lastSeq.Swap(int32(h.SequenceNumber)); prev >= 0 {
			if gap := h.SequenceNumber - uint16(prev); gap > 1 && gap < 1000 {
				l.stats.Lost.Add(uint64(gap - 1))
				if l.lost != nil {
					l.lost(uint64(gap - 1))
				}
			}
		}
		return n, nil
	}
}

// ReadRTCP implements Leg (RFC 3550 §6.4: version 2, packet type 200–207; others dropped).
func (l *UDPLeg) ReadRTCP(buf []byte) (int, error) {
	for {
		n, from, err := l.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, err
		}
		if n < 8 || buf[0]>>6 != 2 || buf[1] < 192 || buf[1] > 223 {
			continue
		}
		if l.accept(from, true) {
			return n, nil
		}
	}
}

// WriteRTP implements Leg.
func (l *UDPLeg) WriteRTP(p []byte) error {
	l.mu.Lock()
	to := l.remote
	l.mu.Unlock()
	if !to.IsValid() || to.Port() == 0 || to.Addr().IsUnspecified() {
		return nil // RFC 3264 §8.4 hold (c=0.0.0.0) or no SDP yet
	}
	_, err := l.rtp.WriteToUDPAddrPort(p, to)
	return err
}

// WriteRTCP implements Leg.
func (l *UDPLeg) WriteRTCP(p []byte) error {
	l.mu.Lock()
	to := l.remoteRTCP
	l.mu.Unlock()
	if !to.IsValid() || to.Port() <= 1 || to.Addr().IsUnspecified() {
		return nil
	}
	_, err := l.rtcp.WriteToUDPAddrPort(p, to)
	return err
}

// Close implements Leg; it returns the port pair to the pool.
func (l *UDPLeg) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = errors.Join(l.rtp.Close(), l.rtcp.Close())
		if l.release != nil {
			l.release()
		}
	})
	return err
}

// ports hands out even/odd port pairs from [min, max].
type ports struct {
	mu       sync.Mutex
	min, max int
	next     int
	used     map[int]bool
}

func (p *ports) open(ip netip.Addr) (*net.UDPConn, *net.UDPConn, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := (p.max - p.min + 1) / 2
	for range n {
		port := p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		if p.used[port] {
			continue
		}
		a, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			continue
		}
		b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			_ = a.Close()
			continue
		}
		p.used[port] = true
		return a, b, port, nil
	}
	return nil, nil, 0, fmt.Errorf("bridge: no free RTP port pair in %d-%d", p.min, p.max)
}

func (p *ports) free(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}
