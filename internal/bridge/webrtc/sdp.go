package webrtc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// ErrNotAcceptable matches (errors.Is) every error this package returns for a session
// description it cannot accept. SIP callers answer it with 488 Not Acceptable Here
// (RFC 3261 §21.4.26); the wrapped error says why.
var ErrNotAcceptable = errors.New("webrtc: session description not acceptable")

// Reasons an offer or answer is refused; each matches ErrNotAcceptable too.
var (
	// ErrBadSDP is an unparsable session description.
	ErrBadSDP = notAcceptable("malformed SDP")
	// ErrNoAudio is a description without an m=audio line with a non-zero port.
	ErrNoAudio = notAcceptable("no active audio stream")
	// ErrNotWebRTC is audio that is not UDP/TLS/RTP/SAVPF (or SAVP) — e.g. plain RTP/AVP, which
	// belongs to the plain RTP leg, not this one (RFC 8829 §5.1.2 requires DTLS-SRTP).
	ErrNotWebRTC = notAcceptable("audio is not DTLS-SRTP (UDP/TLS/RTP/SAVPF)")
	// ErrNoFingerprint is a description without a=fingerprint: DTLS-SRTP (RFC 5764 §4,
	// RFC 8122 §5) cannot authenticate the peer's certificate without it.
	ErrNoFingerprint = notAcceptable("no DTLS fingerprint (a=fingerprint, RFC 8122)")
	// ErrNoICE is a description without ICE credentials (a=ice-ufrag/a=ice-pwd, RFC 8839 §5.4).
	ErrNoICE = notAcceptable("no ICE credentials (a=ice-ufrag, a=ice-pwd)")
	// ErrNoG711 is audio offering neither PCMU nor PCMA: telgw relays G.711 to carriers without
	// transcoding.
	ErrNoG711 = notAcceptable("no G.711 codec (PCMU/8000 or PCMA/8000) offered")
)

type sdpError struct{ msg string }

func notAcceptable(msg string) error { return &sdpError{msg: "webrtc: " + msg} }

func (e *sdpError) Error() string { return e.msg }

// Is makes every sdpError match ErrNotAcceptable.
func (e *sdpError) Is(target error) bool { return target == ErrNotAcceptable }

// Direction is an RFC 3264 §5.1 / §8.4 media direction attribute, from the point of view of
// the side that wrote the description.
type Direction string

// The four directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// sends reports whether the author of a description with direction d sends media.
func (d Direction) sends() bool { return d == SendRecv || d == SendOnly }

// receives reports whether the author of a description with direction d accepts media.
func (d Direction) receives() bool { return d == SendRecv || d == RecvOnly }

// answerTo is the direction an answerer that wants to send and receive writes in reply to an
// offer with direction d (RFC 3264 §6.1).
func (d Direction) answerTo() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Codec names the G.711 codecs this leg relays.
const (
	PCMU = "PCMU"
	PCMA = "PCMA"
)

// Media is what a description negotiated for its audio stream: the G.711 codec and the RFC 4733
// telephone-event payload type, both in that description's payload type numbering.
type Media struct {
	// Codec is PCMU or PCMA.
	Codec string
	// PayloadType is the codec's RTP payload type (0 and 8 normally; RFC 3551 §6).
	PayloadType uint8
	// DTMFPayloadType is the telephone-event/8000 payload type (RFC 4733 §2.1); 0 when absent.
	DTMFPayloadType uint8
	// Direction is the audio direction attribute (default sendrecv).
	Direction Direction
}

// HasDTMF reports whether telephone-event/8000 was negotiated.
func (m Media) HasDTMF() bool { return m.DTMFPayloadType != 0 }

// describedCodec is one payload type of an m=audio line.
type describedCodec struct {
	pt   uint8
	name string // upper case encoding name
	rate int
}

// audioDescription is the part of a remote description this leg cares about.
type audioDescription struct {
	codecs    []describedCodec
	direction Direction
}

// inspect checks a browser's description for what DTLS-SRTP G.711 needs (RFC 8829 §5.8 for
// what a JSEP description carries) and returns its first active audio stream.
func inspect(raw string) (audioDescription, error) {
	var s sdp.SessionDescription
	if err := s.UnmarshalString(raw); err != nil {
		return audioDescription{}, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	_, sessFP := s.Attribute("fingerprint")
	sessUfrag, _ := s.Attribute("ice-ufrag")
	sessPwd, _ := s.Attribute("ice-pwd")
	sessDir := directionOf(s.Attributes, SendRecv)
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		proto := strings.Join(m.MediaName.Protos, "/")
		if !strings.Contains(proto, "SAVP") {
			return audioDescription{}, fmt.Errorf("%w: m=audio proto %s", ErrNotWebRTC, proto)
		}
		if _, ok := m.Attribute("fingerprint"); !ok && !sessFP {
			return audioDescription{}, ErrNoFingerprint
		}
		ufrag, ok := m.Attribute("ice-ufrag")
		if !ok {
			ufrag = sessUfrag
		}
		pwd, ok := m.Attribute("ice-pwd")
		if !ok {
			pwd = sessPwd
		}
		if ufrag == "" || pwd == "" {
			return audioDescription{}, ErrNoICE
		}
		ad := audioDescription{direction: directionOf(m.Attributes, sessDir)}
		ad.codecs = codecsOf(m)
		if _, ok := ad.pick(nil); !ok {
			return audioDescription{}, ErrNoG711
		}
		return ad, nil
	}
	return audioDescription{}, ErrNoAudio
}

func directionOf(attrs []sdp.Attribute, def Direction) Direction {
	for _, a := range attrs {
		switch Direction(a.Key) {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return Direction(a.Key)
		}
	}
	return def
}

// codecsOf lists an m= line's payload types in preference order with their rtpmap names; static
// payload types 0 and 8 need no rtpmap (RFC 3551 §6).
func codecsOf(m *sdp.MediaDescription) []describedCodec {
	maps := map[uint8]describedCodec{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if !ok || err != nil {
			continue
		}
		name, rest, _ := strings.Cut(enc, "/")
		rateStr, _, _ := strings.Cut(rest, "/")
		rate, _ := strconv.Atoi(rateStr)
		maps[uint8(pt)] = describedCodec{pt: uint8(pt), name: strings.ToUpper(name), rate: rate}
	}
	var out []describedCodec
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		c, ok := maps[uint8(pt)]
		if !ok {
			switch pt {
			case 0:
				c = describedCodec{pt: 0, name: PCMU, rate: 8000}
			case 8:
				c = describedCodec{pt: 8, name: PCMA, rate: 8000}
			default:
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// pick chooses the first codec of prefs (default: the description's own order) that the
// description offers, plus telephone-event/8000 when present.
func (ad audioDescription) pick(prefs []string) (Media, bool) {
	m := Media{Direction: ad.direction}
	found := false
	if len(prefs) == 0 {
		for _, c := range ad.codecs {
			if (c.name == PCMU || c.name == PCMA) && c.rate == 8000 {
				m.Codec, m.PayloadType, found = c.name, c.pt, true
				break
			}
		}
	} else {
	outer:
		for _, p := range prefs {
			for _, c := range ad.codecs {
				if c.name == strings.ToUpper(p) && c.rate == 8000 {
					m.Codec, m.PayloadType, found = c.name, c.pt, true
					break outer
				}
			}
		}
	}
	for _, c := range ad.codecs {
		// RFC 4733 §7.1.1: telephone-event's clock rate must match the audio codec's.
		if c.name == "TELEPHONE-EVENT" && c.rate == 8000 {
			m.DTMFPayloadType = c.pt
			break
		}
	}
	return m, found
}

// rewriteDirection replaces the direction attribute of every m=audio section of a description
// telgw wrote (or adds one), so a re-offer can put the peer on hold (RFC 3264 §8.4) without
// touching the rest of the session.
func rewriteDirection(raw string, dir Direction) string {
	lines := strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n")
	out := make([]string, 0, len(lines)+1)
	inAudio, wrote := false, false
	flush := func() {
		if inAudio && !wrote {
			out = append(out, "a="+string(dir))
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			flush()
			inAudio, wrote = strings.HasPrefix(l, "m=audio"), false
		}
		if inAudio {
			switch l {
			case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
				if !wrote {
					out = append(out, "a="+string(dir))
					wrote = true
				}
				continue
			}
		}
		if l == "" {
			continue
		}
		out = append(out, l)
	}
	flush()
	return strings.Join(out, "\r\n") + "\r\n"
}
