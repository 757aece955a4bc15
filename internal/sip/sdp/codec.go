package sdp

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Codec is one RTP payload format of an m= section: payload type, encoding name and clock
// rate, from a=rtpmap (RFC 4566 §6) or the static table of RFC 3551 §6.
type Codec struct {
	PT   uint8
	Name string // upper case: PCMU, PCMA, TELEPHONE-EVENT, …
	Rate int
}

// Key is the codec's identity across legs (name/rate): payload type numbers may differ.
func (c Codec) Key() string { return c.Name + "/" + strconv.Itoa(c.Rate) }

// static is the RFC 3551 §6 table for the payload types telgw may meet without a=rtpmap.
var static = map[uint8]Codec{
	0:  {0, "PCMU", 8000},
	3:  {3, "GSM", 8000},
	4:  {4, "G723", 8000},
	8:  {8, "PCMA", 8000},
	9:  {9, "G722", 8000},
	13: {13, "CN", 8000},
	18: {18, "G729", 8000},
}

// DefaultCodecs are the codec keys telgw relays by default: G.711 μ-law and A-law and RFC 4733
// telephone-events (DTMF).
var DefaultCodecs = []string{"PCMU/8000", "PCMA/8000", "TELEPHONE-EVENT/8000"}

// Codecs returns m's payload formats in preference order. A dynamic payload type without an
// a=rtpmap line has an empty Name.
func (m *Media) Codecs() []Codec {
	maps := map[uint8]Codec{}
	for _, l := range m.Lines {
		v, ok := strings.CutPrefix(l, "a=rtpmap:")
		if !ok {
			continue
		}
		// RFC 4566 §6: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<params>]
		pt, rest, ok := strings.Cut(v, " ")
		n, err := strconv.ParseUint(pt, 10, 7)
		if !ok || err != nil {
			continue
		}
		parts := strings.Split(strings.TrimSpace(rest), "/")
		if len(parts) < 2 {
			continue
		}
		rate, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		maps[uint8(n)] = Codec{uint8(n), strings.ToUpper(parts[0]), rate}
	}
	out := make([]Codec, 0, len(m.Formats))
	for _, f := range m.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		if c, ok := maps[uint8(n)]; ok {
			out = append(out, c)
		} else if c, ok := static[uint8(n)]; ok {
			out = append(out, c)
		} else {
			out = append(out, Codec{PT: uint8(n)})
		}
	}
	return out
}

// keep removes from m every payload format for which ok is false, with its a=rtpmap, a=fmtp
// and a=rtcp-fb lines, and reports whether a media codec (not telephone-event or CN) is left.
func (m *Media) keep(ok func(Codec) bool) bool {
	kept := map[string]bool{}
	media := false
	var formats []string
	for _, c := range m.Codecs() {
		if !ok(c) {
			continue
		}
		pt := strconv.Itoa(int(c.PT))
		kept[pt] = true
		formats = append(formats, pt)
		if c.Name != "TELEPHONE-EVENT" && c.Name != "CN" {
			media = true
		}
	}
	m.Formats = formats
	m.Lines = slices.DeleteFunc(m.Lines, func(l string) bool {
		for _, p := range []string{"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"} {
			if v, ok := strings.CutPrefix(l, p); ok {
				pt, _, _ := strings.Cut(v, " ")
				return !kept[pt] && pt != "*"
			}
		}
		return false
	})
	return media
}

// FilterOffer prepares an offer for relay (RFC 3264 §5): the first enabled RTP audio section
// keeps only the codecs whose Key is in supported (in the offerer's order), every other section
// is disabled (port 0, RFC 3264 §5.1). It fails when no audio codec is left.
func FilterOffer(s *Session, supported []string) error {
	audio := s.Audio()
	if audio == nil {
		return bad("no RTP audio stream")
	}
	for _, m := range s.Media {
		if m != audio {
			m.Port = 0
		}
	}
	if !audio.keep(func(c Codec) bool { return slices.Contains(supported, c.Key()) }) {
		return bad("no codec in common (offered %s)", strings.Join(audio.Formats, " "))
	}
	return nil
}

// FilterAnswer checks an answer against the (filtered) offer it answers (RFC 3264 §6): the same
// number of m= sections, and for the audio section only codecs the offer had. Extra codecs are
// dropped; an answer left without a media codec fails.
func FilterAnswer(answer, offer *Session) error {
	if len(answer.Media) != len(offer.Media) {
		return bad("answer has %d m= lines, offer had %d (RFC 3264 §6)", len(answer.Media), len(offer.Media))
	}
	oa := offer.Audio()
	i := slices.Index(offer.Media, oa)
	if oa == nil || i < 0 {
		return bad("offer has no audio")
	}
	aa := answer.Media[i]
	if aa.Port == 0 {
		return bad("answer rejected the audio stream")
	}
	if !strings.HasPrefix(aa.Proto, "RTP/") {
		return bad("answer audio is not RTP")
	}
	offered := map[string]bool{}
	for _, c := range oa.Codecs() {
		offered[c.Key()] = true
	}
	if !aa.keep(func(c Codec) bool { return offered[c.Key()] }) {
		return bad("answer has no offered codec")
	}
	for j, m := range answer.Media {
		if j != i {
			m.Port = 0
		}
	}
	return nil
}

// Origin is one side's o= identity toward one peer. RFC 3264 §8: every new description sent in
// a session carries the same session id and a version one higher than the last.
type Origin struct {
	// ID is the sess-id, fixed for the session.
	ID uint64
	// Version is the sess-version of the last description sent.
	Version uint64
}

// dropAttrs are attributes that describe the original sender's transport and stop being true
// once telgw anchors the media: its RTCP port (RFC 3605), ICE (RFC 8839) and SDES keys
// (RFC 4568: telgw relays plain RTP on this side).
var dropAttrs = []string{"a=rtcp:", "a=candidate:", "a=ice-", "a=end-of-candidates", "a=crypto:", "a=fingerprint:", "a=setup:", "a=rtcp-mux", "a=mid:", "a=group:"}

// Anchor rewrites s so the peer sends media to telgw: the connection address becomes addr and
// the audio port becomes port, the origin becomes o (its Version incremented first) with address
// addr. A hold expressed as c=0.0.0.0 (RFC 3264 §8.4) is kept as an explicit a=sendonly.
func Anchor(s *Session, addr netip.Addr, port int, o *Origin) {
	audio := s.Audio()
	if audio != nil && s.Addr(audio).Addr().IsUnspecified() && s.Direction(audio) == "sendonly" &&
		!slices.Contains(audio.Lines, "a=sendonly") && !slices.Contains(s.Lines, "a=sendonly") {
		audio.Lines = append(audio.Lines, "a=sendonly")
	}
	o.Version++
	at := "IP4"
	if addr.Is6() {
		at = "IP6"
	}
	s.Origin = [6]string{"telgw", strconv.FormatUint(o.ID, 10), strconv.FormatUint(o.Version, 10), "IN", at, addr.String()}
	s.Conn = addr
	drop := func(l string) bool {
		for _, p := range dropAttrs {
			if strings.HasPrefix(l, p) {
				return true
			}
		}
		return false
	}
	s.Lines = slices.DeleteFunc(s.Lines, drop)
	for _, m := range s.Media {
		m.Conn = netip.Addr{}
		m.Lines = slices.DeleteFunc(m.Lines, drop)
		if m == audio {
			m.Port = port
		} else {
			m.Port = 0
		}
	}
}
