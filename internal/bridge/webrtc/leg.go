package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
)

// Errors a leg fails or returns with.
var (
	// ErrClosed is returned by reads, writes and renegotiation on a closed leg; it matches
	// net.ErrClosed, as bridge.Leg requires.
	ErrClosed = fmt.Errorf("webrtc: leg closed: %w", net.ErrClosed)
	// ErrConnectTimeout is a leg whose ICE checks and DTLS handshake did not complete within
	// Config.ConnectTimeout.
	ErrConnectTimeout = errors.New("webrtc: ICE/DTLS did not complete in time")
	// ErrConnectionFailed is a leg whose ICE or DTLS transport failed (RFC 8445 §8.1 failure, or
	// consent lost, or a DTLS fingerprint mismatch, RFC 5763 §5).
	ErrConnectionFailed = errors.New("webrtc: ICE/DTLS connection failed")
	// ErrMediaTimeout is a connected leg that received no RTP for Config.MediaTimeout.
	ErrMediaTimeout = errors.New("webrtc: no media received")
)

// EventKind says what happened to a leg.
type EventKind int

// Leg events.
const (
	// EventConnected: ICE selected a pair and DTLS-SRTP keys are set (RFC 5764 §4.2); media flows.
	EventConnected EventKind = iota + 1
	// EventFailed: the leg failed (Event.Err says why) and has freed its resources.
	EventFailed
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventFailed:
		return "failed"
	}
	return "unknown"
}

// Event is one leg event.
type Event struct {
	Kind EventKind
	// Err is the failure for EventFailed: ErrConnectTimeout, ErrConnectionFailed or
	// ErrMediaTimeout.
	Err error
}

// LegOptions tunes one leg.
type LegOptions struct {
	// CallID labels the leg's log lines (attribute call_id).
	CallID string
	// Codecs overrides Config.Codecs for this leg, e.g. only the codec the carrier leg chose,
	// so both legs carry the same G.711 law.
	Codecs []string
}

// Stats counts a leg's RTP packets.
type Stats struct {
	// PacketsReceived and BytesReceived count RTP from the browser (payload bytes).
	PacketsReceived, BytesReceived uint64
	// PacketsSent and BytesSent count RTP written to the browser.
	PacketsSent, BytesSent uint64
	// PacketsDropped counts packets WriteRTP discarded (not connected yet, peer on hold, or an
	// unknown payload type).
	PacketsDropped uint64
}

// Leg is one WebRTC media leg: a pion PeerConnection with one audio transceiver.
//
// It implements bridge.Leg (byte-slice ReadRTP/WriteRTP/ReadRTCP/WriteRTCP/Close, plus
// LastReceived), so bridge.Relay.Bridge can pump it against a plain UDP leg. ReadRTP must be
// called in a loop for as long as the leg lives (it also feeds the media timeout); writes may
// run concurrently with it. Close frees every socket and goroutine.
type Leg struct {
	eng   *Engine
	log   *slog.Logger
	pc    *pion.PeerConnection
	track *localTrack

	events chan Event
	done   chan struct{}
	arm    chan struct{}
	state  chan pion.PeerConnectionState

	remoteReady chan struct{}
	remote      atomic.Pointer[pion.TrackRemote]
	receiver    atomic.Pointer[pion.RTPReceiver]

	mu        sync.Mutex // serialises offer/answer exchanges
	media     atomic.Pointer[Media]
	peer      atomic.Pointer[Media]
	armed     atomic.Bool
	connected atomic.Bool
	lastRx    atomic.Int64

	rxPackets, rxBytes, txPackets, txBytes, dropped atomic.Uint64

	closeOnce sync.Once
	failOnce  sync.Once
	wg        sync.WaitGroup
}

// newLeg builds a PeerConnection with the given codecs and starts its supervisor.
func (e *Engine) newLeg(o LegOptions, codecs []pion.RTPCodecParameters, dtmfPT uint8, audio Media) (*Leg, error) {
	api, err := e.newAPI(codecs)
	if err != nil {
		return nil, err
	}
	conf := pion.Configuration{
		BundlePolicy:  pion.BundlePolicyMaxBundle,
		RTCPMuxPolicy: pion.RTCPMuxPolicyRequire,
	}
	if e.cfg.ICEServers != nil {
		conf.ICEServers = e.cfg.ICEServers()
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	l := &Leg{
		eng: e, pc: pc,
		log:         e.log.With("call_id", o.CallID),
		events:      make(chan Event, 4),
		done:        make(chan struct{}),
		arm:         make(chan struct{}, 1),
		state:       make(chan pion.PeerConnectionState, 8),
		remoteReady: make(chan struct{}),
	}
	l.track = &localTrack{audioPT: audio.PayloadType, dtmfPT: dtmfPT}
	l.media.Store(&audio)
	sender, err := pc.AddTrack(l.track)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("webrtc: add track: %w", err)
	}
	pc.OnTrack(func(t *pion.TrackRemote, r *pion.RTPReceiver) {
		if l.remote.CompareAndSwap(nil, t) {
			l.receiver.Store(r)
			close(l.remoteReady)
		}
	})
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		select {
		case l.state <- s:
		default:
		}
	})
	e.active.Inc()
	l.wg.Add(2)
	go l.supervise()
	go func() {
		// Drain RTCP addressed to our sender so the report interceptor sees it.
		defer l.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return l, nil
}

// Answer accepts a browser's offer (RFC 8829 §5.3 answer to a §5.2 offer): it checks the offer
// has DTLS-SRTP audio with G.711, picks the first codec of the preference order the offer has,
// keeps telephone-event/8000 when offered, gathers every local candidate and returns the
// complete answer SDP. Errors matching ErrNotAcceptable mean the offer cannot be served (SIP
// 488); the leg is then not created.
func (e *Engine) Answer(ctx context.Context, offer string, o LegOptions) (*Leg, string, error) {
	ad, err := inspect(offer)
	if err != nil {
		e.legs.WithLabelValues("rejected").Inc()
		return nil, "", err
	}
	prefs := o.Codecs
	if len(prefs) == 0 {
		prefs = e.cfg.Codecs
	}
	m, ok := ad.pick(prefs)
	if !ok {
		e.legs.WithLabelValues("rejected").Inc()
		return nil, "", fmt.Errorf("%w (wanted %v)", ErrNoG711, prefs)
	}
	codecs := []pion.RTPCodecParameters{codecParams(m.Codec, m.PayloadType)}
	if m.HasDTMF() {
		codecs = append(codecs, codecParams("TELEPHONE-EVENT", m.DTMFPayloadType))
	}
	l, err := e.newLeg(o, codecs, m.DTMFPayloadType, m)
	if err != nil {
		return nil, "", err
	}
	answer, err := l.answer(ctx, offer)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	l.armConnect()
	return l, answer, nil
}

// Offer creates a leg that offers to a browser (RFC 8829 §5.2): DTLS-SRTP audio with the
// configured G.711 codecs and telephone-event/8000, all candidates gathered. Pass the browser's
// answer to SetAnswer; Close the leg if the call is never answered.
func (e *Engine) Offer(ctx context.Context, o LegOptions) (*Leg, string, error) {
	prefs := o.Codecs
	if len(prefs) == 0 {
		prefs = e.cfg.Codecs
	}
	var codecs []pion.RTPCodecParameters
	for _, c := range prefs {
		switch strings.ToUpper(c) {
		case PCMU:
			codecs = append(codecs, codecParams(PCMU, 0))
		case PCMA:
			codecs = append(codecs, codecParams(PCMA, 8))
		default:
			return nil, "", fmt.Errorf("webrtc: codec %q is not PCMU or PCMA", c)
		}
	}
	dtmf := e.cfg.DTMFPayloadType
	codecs = append(codecs, codecParams("TELEPHONE-EVENT", dtmf))
	first := Media{Codec: strings.ToUpper(prefs[0]), PayloadType: uint8(codecs[0].PayloadType), DTMFPayloadType: dtmf, Direction: SendRecv}
	l, err := e.newLeg(o, codecs, dtmf, first)
	if err != nil {
		return nil, "", err
	}
	offer, err := l.offer(ctx, SendRecv)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	return l, offer, nil
}

// answer applies a remote offer and returns the local answer, complete with candidates.
func (l *Leg) answer(ctx context.Context, offer string) (string, error) {
	if err := l.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", notAcceptable("offer rejected"), err)
	}
	ans, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", notAcceptable("cannot answer"), err)
	}
	gathered := pion.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("webrtc: set local answer: %w", err)
	}
	if err := l.waitGathered(ctx, gathered); err != nil {
		return "", err
	}
	local := l.pc.LocalDescription().SDP
	rad, _ := inspect(offer)
	// pion keeps the transceiver sendrecv; write the RFC 3264 §6.1 answer direction so a
	// browser's hold (sendonly/inactive) is acknowledged on the wire.
	if d := rad.direction.answerTo(); d != SendRecv {
		local = rewriteDirection(local, d)
	}
	lad, err := inspect(local)
	if err != nil {
		return "", fmt.Errorf("webrtc: own answer: %w", err)
	}
	m, _ := lad.pick(nil)
	l.track.setPayloadTypes(m.PayloadType, m.DTMFPayloadType)
	m.Direction = rad.direction
	l.media.Store(&m)
	l.lastRx.Store(time.Now().UnixNano())
	return local, nil
}

// offer creates a local offer with candidates; dir other than sendrecv is written into the
// SDP for hold (RFC 3264 §8.4).
func (l *Leg) offer(ctx context.Context, dir Direction) (string, error) {
	off, err := l.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("webrtc: create offer: %w", err)
	}
	gathered := pion.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(off); err != nil {
		return "", fmt.Errorf("webrtc: set local offer: %w", err)
	}
	if err := l.waitGathered(ctx, gathered); err != nil {
		return "", err
	}
	sdp := l.pc.LocalDescription().SDP
	if dir != SendRecv {
		sdp = rewriteDirection(sdp, dir)
	}
	return sdp, nil
}

func (l *Leg) waitGathered(ctx context.Context, gathered <-chan struct{}) error {
	select {
	case <-gathered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webrtc: gathering candidates: %w", ctx.Err())
	case <-l.done:
		return ErrClosed
	}
}

// SetAnswer applies the browser's answer to telgw's offer (from Engine.Offer or Reoffer). It
// starts the connect timeout on the first answer.
func (l *Leg) SetAnswer(answer string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return ErrClosed
	}
	ad, err := inspect(answer)
	if err != nil {
		return err
	}
	m, ok := ad.pick(nil)
	if !ok {
		return ErrNoG711
	}
	if err := l.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", notAcceptable("answer rejected"), err)
	}
	l.track.setPayloadTypes(m.PayloadType, m.DTMFPayloadType)
	l.media.Store(&m)
	l.lastRx.Store(time.Now().UnixNano())
	l.armConnect()
	return nil
}

// Reanswer answers a browser's re-offer on an established leg (a re-INVITE: hold with
// a=sendonly or a=inactive, unhold with a=sendrecv, RFC 3264 §8.4) and returns the answer.
func (l *Leg) Reanswer(ctx context.Context, offer string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return "", ErrClosed
	}
	if _, err := inspect(offer); err != nil {
		return "", err
	}
	return l.answer(ctx, offer)
}

// Reoffer creates a re-offer to the browser with the given direction — SendOnly or Inactive to
// put the browser on hold (RFC 3264 §8.4), SendRecv to resume — for a re-INVITE. Pass the
// browser's answer to SetAnswer.
func (l *Leg) Reoffer(ctx context.Context, dir Direction) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return "", ErrClosed
	}
	return l.offer(ctx, dir)
}

// Media is what the last offer/answer exchange negotiated, in this leg's payload type numbering;
// Direction is the browser's.
func (l *Leg) Media() Media { return *l.media.Load() }

// SetPeerMedia tells the leg the payload types of the leg it is bridged to (e.g. the carrier's
// PCMU 0 and telephone-event 101): WriteRTP then renumbers packets from the peer's numbering to
// this leg's, and ReadRTP from this leg's to the peer's.
func (l *Leg) SetPeerMedia(m Media) { l.peer.Store(&m) }

// Events delivers EventConnected and EventFailed, at most once each.
func (l *Leg) Events() <-chan Event { return l.events }

// Done is closed when the leg is closed (by Close or after EventFailed).
func (l *Leg) Done() <-chan struct{} { return l.done }

// Stats returns the leg's packet counters.
func (l *Leg) Stats() Stats {
	return Stats{PacketsReceived: l.rxPackets.Load(), BytesReceived: l.rxBytes.Load(),
		PacketsSent: l.txPackets.Load(), BytesSent: l.txBytes.Load(), PacketsDropped: l.dropped.Load()}
}

// ReadRTP reads the next RTP packet from the browser (audio or telephone-event) into buf,
// decrypted (RFC 3711 with the DTLS-SRTP keys, RFC 5764 §4.2) and renumbered to the peer's
// payload types (SetPeerMedia). It blocks until media arrives and returns an error matching
// net.ErrClosed once the leg is closed. It implements bridge.Leg.
func (l *Leg) ReadRTP(buf []byte) (int, error) {
	select {
	case <-l.remoteReady:
	case <-l.done:
		return 0, ErrClosed
	}
	t := l.remote.Load()
	for {
		n, _, err := t.Read(buf)
		if l.isClosed() || errors.Is(err, io.EOF) {
			return 0, ErrClosed
		}
		if n < 12 {
			if err == nil {
				err = errors.New("short packet")
			}
			return 0, fmt.Errorf("webrtc: read rtp: %w", err)
		}
		if err != nil {
			continue // a payload type outside the negotiated set: drop it
		}
		l.lastRx.Store(time.Now().UnixNano())
		l.rxPackets.Add(1)
		l.rxBytes.Add(uint64(n - 12))
		l.eng.packets.WithLabelValues("in").Inc()
		if peer := l.peer.Load(); peer != nil {
			pt := renumber(buf[1]&0x7f, l.Media(), *peer)
			buf[1] = buf[1]&0x80 | pt
		}
		return n, nil
	}
}

// ReadPacket is ReadRTP returning a parsed packet.
func (l *Leg) ReadPacket() (*rtp.Packet, error) {
	buf := make([]byte, 1500)
	n, err := l.ReadRTP(buf)
	if err != nil {
		return nil, err
	}
	p := &rtp.Packet{}
	if err := p.Unmarshal(buf[:n]); err != nil {
		return nil, fmt.Errorf("webrtc: read rtp: %w", err)
	}
	return p, nil
}

// WriteRTP sends one RTP packet to the browser, SRTP-protected. It implements bridge.Leg; see
// WritePacket.
func (l *Leg) WriteRTP(b []byte) error {
	var p rtp.Packet
	n, err := p.Header.Unmarshal(b)
	if err != nil {
		l.dropped.Add(1)
		return fmt.Errorf("webrtc: write rtp: %w", err)
	}
	p.Payload = b[n:]
	return l.WritePacket(&p)
}

// WritePacket sends p to the browser, SRTP-protected. Sequence numbers and timestamps pass
// through; the SSRC becomes this leg's and the payload type is renumbered (SetPeerMedia).
// Packets are dropped, without error, before the leg is connected, while the browser does not
// receive (its description says sendonly or inactive) and when their payload type was not
// negotiated.
func (l *Leg) WritePacket(p *rtp.Packet) error {
	if l.isClosed() {
		return ErrClosed
	}
	m := l.Media()
	pt := p.PayloadType
	if peer := l.peer.Load(); peer != nil {
		pt = renumber(pt, *peer, m)
	}
	if !l.connected.Load() || !m.Direction.receives() || (pt != m.PayloadType && (pt != m.DTMFPayloadType || pt == 0)) {
		l.dropped.Add(1)
		return nil
	}
	sent, err := l.track.write(p, pt)
	if err != nil {
		if l.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("webrtc: write rtp: %w", err)
	}
	if !sent {
		l.dropped.Add(1)
		return nil
	}
	l.txPackets.Add(1)
	l.txBytes.Add(uint64(len(p.Payload)))
	l.eng.packets.WithLabelValues("out").Inc()
	return nil
}

// ReadRTCP implements bridge.Leg. RTCP terminates at this leg: telgw rewrites the SSRC between
// the legs, so the browser's reports (about telgw's SSRC) mean nothing to the carrier. Each side
// instead gets RFC 3550 §6.4 reports generated locally (the pion report interceptor, fed by
// this call draining the browser's RTCP). It returns only when the leg closes (net.ErrClosed).
func (l *Leg) ReadRTCP(buf []byte) (int, error) {
	select {
	case <-l.remoteReady:
	case <-l.done:
		return 0, ErrClosed
	}
	r := l.receiver.Load()
	for {
		if _, _, err := r.Read(buf); err != nil {
			if l.isClosed() || errors.Is(err, io.EOF) {
				return 0, ErrClosed
			}
		}
	}
}

// WriteRTCP implements bridge.Leg by discarding p (see ReadRTCP).
func (l *Leg) WriteRTCP(p []byte) error {
	if l.isClosed() {
		return ErrClosed
	}
	return nil
}

// LastReceived is when the last RTP packet arrived from the browser (for bridge.Bridge's media
// timeout); the leg's creation before any.
func (l *Leg) LastReceived() time.Time { return time.Unix(0, l.lastRx.Load()) }

// renumber maps a payload type from one leg's numbering to another's.
func renumber(pt uint8, from, to Media) uint8 {
	switch {
	case pt == from.PayloadType:
		return to.PayloadType
	case from.DTMFPayloadType != 0 && pt == from.DTMFPayloadType:
		return to.DTMFPayloadType
	}
	return pt
}

// Close tears the leg down: ICE agent, DTLS, SRTP sessions, sockets and goroutines. It is safe
// to call more than once and from several goroutines.
func (l *Leg) Close() error {
	err := l.shutdown()
	l.wg.Wait()
	return err
}

func (l *Leg) shutdown() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.pc.Close()
		l.eng.active.Dec()
	})
	return err
}

func (l *Leg) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Leg) armConnect() {
	if l.armed.CompareAndSwap(false, true) {
		l.arm <- struct{}{}
	}
}

// fail reports err once and frees the leg's resources.
func (l *Leg) fail(err error, outcome string) {
	l.failOnce.Do(func() {
		l.log.Info("webrtc leg failed", "err", err)
		l.eng.legs.WithLabelValues(outcome).Inc()
		l.events <- Event{Kind: EventFailed, Err: err}
		_ = l.shutdown()
	})
}

// supervise owns the leg's timers: the connect timeout, connection state changes and the media
// timeout. It exits when the leg closes.
func (l *Leg) supervise() {
	defer l.wg.Done()
	cfg := l.eng.cfg
	var connect <-chan time.Time
	var tick <-chan time.Time
	if cfg.MediaTimeout > 0 {
		t := time.NewTicker(min(cfg.MediaTimeout/4, time.Second))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.done:
			return
		case <-l.arm:
			timer := time.NewTimer(cfg.ConnectTimeout)
			defer timer.Stop()
			connect = timer.C
		case <-connect:
			if !l.connected.Load() {
				l.fail(ErrConnectTimeout, "ice_timeout")
				return
			}
		case s := <-l.state:
			switch s {
			case pion.PeerConnectionStateConnected:
				if l.connected.CompareAndSwap(false, true) {
					l.lastRx.Store(time.Now().UnixNano())
					l.eng.legs.WithLabelValues("connected").Inc()
					l.log.Debug("webrtc leg connected")
					l.events <- Event{Kind: EventConnected}
				}
			case pion.PeerConnectionStateFailed:
				l.fail(ErrConnectionFailed, "failed")
				return
			}
		case <-tick:
			if !l.connected.Load() || !l.Media().Direction.sends() {
				continue
			}
			if time.Since(time.Unix(0, l.lastRx.Load())) > cfg.MediaTimeout {
				l.fail(ErrMediaTimeout, "media_timeout")
				return
			}
		}
	}
}
