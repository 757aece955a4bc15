package webrtc

import (
	"sync"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
)

// localTrack is the audio track telgw sends on a leg. Unlike pion's TrackLocalStaticRTP, which
// stamps every packet with the one bound codec's payload type, it keeps two payload types on
// one SSRC: the G.711 codec and RFC 4733 telephone-event (RFC 4733 §2.1: events share the
// audio stream's SSRC and sequence space).
type localTrack struct {
	mu      sync.RWMutex
	ssrc    uint32
	stream  pion.TrackLocalWriter
	bound   bool
	audioPT uint8
	dtmfPT  uint8
}

var _ pion.TrackLocal = (*localTrack)(nil)

// Bind implements pion.TrackLocal: negotiation picked the codec; remember SSRC and writer.
func (t *localTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var chosen *pion.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		switch c.MimeType {
		case pion.MimeTypePCMU, pion.MimeTypePCMA:
			if chosen == nil || uint8(c.PayloadType) == t.audioPT {
				c := c
				chosen = &c
			}
		}
	}
	if chosen == nil {
		return pion.RTPCodecParameters{}, pion.ErrUnsupportedCodec
	}
	t.ssrc = uint32(ctx.SSRC())
	t.stream = ctx.WriteStream()
	t.bound = true
	return *chosen, nil
}

// Unbind implements pion.TrackLocal.
func (t *localTrack) Unbind(pion.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound, t.stream = false, nil
	return nil
}

// ID implements pion.TrackLocal.
func (t *localTrack) ID() string { return "audio" }

// RID implements pion.TrackLocal.
func (t *localTrack) RID() string { return "" }

// StreamID implements pion.TrackLocal.
func (t *localTrack) StreamID() string { return "telgw" }

// Kind implements pion.TrackLocal.
func (t *localTrack) Kind() pion.RTPCodecType { return pion.RTPCodecTypeAudio }

func (t *localTrack) setPayloadTypes(audio, dtmf uint8) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.audioPT, t.dtmfPT = audio, dtmf
}

// write sends p with payload type pt on the bound stream; false when not bound yet.
func (t *localTrack) write(p *rtp.Packet, pt uint8) (bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.bound {
		return false, nil
	}
	h := p.Header
	h.SSRC = t.ssrc
	h.PayloadType = pt
	if p.PaddingSize != 0 && h.PaddingSize == 0 {
		h.PaddingSize = p.PaddingSize
	}
	_, err := t.stream.WriteRTP(&h, p.Payload)
	return true, err
}
