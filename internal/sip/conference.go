package sip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/mixer"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/problem"
)

// The conference of a bot call. Two people are relayed to each other packet for packet
// (participants.go). A call switches to mixing (mixer.Conference) when a third person joins,
// or when the app asks for media (play, recognize, sendDtmfTones) on a call with two: every
// leg then gets a Receiver (what the person sends: relayParty pushes it, the mix pulls it) and
// sends what its Player sends, the mix of everyone else (PlayerConfig.Feed) or, while a prompt
// or DTMF plays to that person, the prompt instead. All the call's players share one pacing
// group, so each 20 ms slot is mixed once, on one goroutine.
//
// Once mixed, the call stays mixed until it ends, even with two people or one left: each leg
// keeps one outgoing stream (the Player's SSRC, continuous sequence numbers and timestamps,
// RFC 3550 §5.1), so a drop back to two needs no second SSRC change; the one change, from the
// relayed peer's SSRC to the player's at the switch, is the kind RFC 3550 §8.2 lets receivers
// follow (a new source; the marker bit starts its talkspurt). The app playing to everyone
// (playToAll) speaks into the mix as one more member, heard by all over the conversation.

// confMember is a party's place in the call's conference.
type confMember struct {
	id   string
	pt   *party
	rx   *rtpmedia.Receiver
	conf *conference
	feed func(due time.Time, dst []int16) bool
}

// Pull implements mixer.Source: the person's next 20 ms, or nothing while on hold (not heard).
func (m *confMember) Pull(dst []int16) []int16 {
	n := len(dst)
	dst = m.rx.Pull(dst) // drained even on hold: no stale audio on unhold
	if m.pt.held.Load() {
		return dst[:n]
	}
	return dst
}

// conference is a bot call's mix, once it has one.
type conference struct {
	mix   mixer.Conference
	voice *partyMedia // the app's own voice into the mix (play to all), once needed
}

var memberSeq atomic.Uint64

// feed is the PlayerConfig.Feed of pt's player: the mix of the others while pt is in the
// conference and not on hold (a held person hears the hold music, which plays as a prompt).
func (pt *party) feed(due time.Time, dst []int16) bool {
	m := pt.member.Load()
	if m == nil || pt.held.Load() {
		return false
	}
	return m.feed(due, dst)
}

// mixing takes one RTP packet pt sent, if pt is in a conference: the audio goes to the mix,
// telephone-events to the app's recognitions (partyMedia.fromPerson, which also searches the
// audio for in-band tones while one runs). False when pt is not mixed (relayParty relays it).
func (pt *party) mixing(pkt []byte) bool {
	m := pt.member.Load()
	if m == nil {
		return false
	}
	m.rx.Push(pkt)
	if pm := pt.mediaPtr.Load(); pm != nil {
		pm.fromPerson(pkt)
	}
	return true
}

// mixCodec is the mixer's codec for an SDP encoding name.
func mixCodec(name string) (audio.Codec, bool) {
	switch name {
	case "PCMU":
		return audio.PCMU, true
	case "PCMA":
		return audio.PCMA, true
	}
	return 0, false
}

// legInfoLocked is what pt's leg negotiated. A WebRTC user's leg (dialUserLeg, originateUser)
// was offered the call's codec with its payload type and telephone-event 101: the leg
// renumbers to and from those (webrtc.Leg.SetPeerMedia), so they are what telgw writes and
// reads on it.
func (b *botCall) legInfoLocked(pt *party) mediaInfo {
	if wl, ok := pt.leg.(*webrtc.Leg); ok {
		info := mediaInfo{codec: b.codec}
		if wl.Media().HasDTMF() {
			info.eventPT, info.recvEventPT = 101, 101
		}
		return info
	}
	return pt.info
}

// groupLocked is the pacing group of the call's players (rtpmedia.PlayerConfig.Group).
func (b *botCall) groupLocked() uint32 {
	if b.group == 0 {
		b.group = rand.Uint32() | 1
	}
	return b.group
}

// partyMediaLocked returns the app's media toward pt, making it on first use: a Player on pt's
// leg (SIP or WebRTC) with a random SSRC, sequence and timestamp (RFC 3550 §5.1, §8.1) in the
// call's pacing group, fed the conference's mix once there is one.
func (b *botCall) partyMediaLocked(pt *party, op string) (*partyMedia, error) {
	if pm := pt.mediaPtr.Load(); pm != nil {
		return pm, nil
	}
	info := b.legInfoLocked(pt)
	codec, ok := mixCodec(info.codec.Name)
	if !ok {
		return nil, calls.ErrMediaNotSupported("callConnectionId", op, " with codec "+info.codec.Name+" (G.711 only)")
	}
	pm := &partyMedia{codec: codec, eventPT: info.recvEventPT}
	pm.player = b.env.mediaDeps.Scheduler.NewPlayer(pt.leg, rtpmedia.PlayerConfig{Codec: codec, EventPT: info.eventPT,
		SSRC: rand.Uint32(), FirstSeq: uint16(rand.Uint32()), FirstTS: rand.Uint32(), Group: b.groupLocked(), Feed: pt.feed})
	pt.mediaPtr.Store(pm)
	b.medias = append(b.medias, pm)
	return pm, nil
}

// mixLocked switches the call from relaying to mixing (no-op when it mixes already).
func (b *botCall) mixLocked(op string) error {
	if b.conf != nil {
		return nil
	}
	if md := b.env.mediaDeps; md == nil || md.Scheduler == nil {
		return calls.ErrMediaNotSupported("callConnectionId", op, ": this telgw serves no media, so it cannot mix a conference")
	}
	for _, pt := range b.parties {
		if _, err := b.partyMediaLocked(pt, op); err != nil {
			return err
		}
	}
	b.conf = &conference{}
	for _, pt := range b.parties {
		b.enterLocked(pt)
	}
	return nil
}

// enterLocked puts pt (whose partyMedia exists) into the conference: from now on relayParty
// hands its packets to its receiver and its player sends the mix; its peer is no one.
func (b *botCall) enterLocked(pt *party) {
	info := b.legInfoLocked(pt)
	codec, _ := mixCodec(info.codec.Name)
	// What the person sends: the negotiated payload type, and the static ones (RFC 3551 §6).
	codecs := map[uint8]audio.Codec{0: audio.PCMU, 8: audio.PCMA, info.codec.PT: codec}
	m := &confMember{id: "p" + strconv.FormatUint(memberSeq.Add(1), 10), pt: pt, conf: b.conf,
		rx: rtpmedia.NewReceiver(rtpmedia.ReceiverConfig{Codecs: codecs, EventPT: info.recvEventPT})}
	m.feed = b.conf.mix.Feed(m.id)
	b.conf.mix.Join(m.id, m)
	if pt.muted.Load() {
		b.conf.mix.Mute(m.id, true)
	}
	pt.member.Store(m)
	if o := pt.peer.Load(); o != nil {
		o.peer.CompareAndSwap(pt, nil)
	}
	pt.peer.Store(nil)
}

// leaveLocked takes a party whose leg ended out of the conference and stops the app's media
// toward it (its plays and recognitions end Canceled).
func (b *botCall) leaveLocked(pt *party) {
	if m := pt.member.Swap(nil); m != nil {
		m.conf.mix.Leave(m.id)
	}
	if pm := pt.mediaPtr.Load(); pm != nil {
		pm.cancel()
		pm.player.Close()
	}
}

// joinFailure is why join refused a person who answered: the call ended meanwhile, or it
// could not be mixed.
func (b *botCall) joinFailure() calls.ResultInformation {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return calls.ResultInformation{Code: 487, Message: "The call ended before the participant joined."}
	}
	return calls.ResultInformation{Code: 488, Message: "The call's audio cannot be mixed for another person (G.711 legs and telgw's media are needed)."}
}

// muteMixed tells the mix that pt is muted (Mute already stops what pt sends reaching it).
func (pt *party) muteMixed(muted bool) {
	if m := pt.member.Load(); m != nil {
		m.conf.mix.Mute(m.id, muted)
	}
}

// loopWriter hands a Player's packets straight to a Receiver: the app's voice into the mix.
type loopWriter struct{ rx *rtpmedia.Receiver }

func (w loopWriter) WriteRTP(p []byte) error {
	w.rx.Push(p)
	return nil
}

// voiceLocked is the app's voice in the conference (playToAll with two or more people): a
// Player in the call's pacing group whose packets a member's Receiver takes (one frame deep:
// same goroutine, no jitter), so everyone hears the prompt mixed over the conversation.
func (b *botCall) voiceLocked() *partyMedia {
	c := b.conf
	if c.voice != nil {
		return c.voice
	}
	rx := rtpmedia.NewReceiver(rtpmedia.ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU}, Depth: 1})
	c.mix.Join("app", rx)
	pm := &partyMedia{codec: audio.PCMU}
	pm.player = b.env.mediaDeps.Scheduler.NewPlayer(loopWriter{rx}, rtpmedia.PlayerConfig{Codec: audio.PCMU,
		SSRC: rand.Uint32(), FirstSeq: uint16(rand.Uint32()), FirstTS: rand.Uint32(), Group: b.groupLocked()})
	c.voice = pm
	b.medias = append(b.medias, pm)
	return pm
}

// mediaForLocked picks the app's media for an operation toward target (the zero participant:
// whoever is on the call; for a play, everyone). With two or more people the call is mixed
// first, so a prompt to one person replaces the mix for that person only.
func (b *botCall) mediaForLocked(target calls.Participant, field, op string) (*partyMedia, error) {
	if len(b.parties) == 0 {
		return nil, calls.ErrMediaNotSupported("callConnectionId", op, " on a call with no one on it")
	}
	var pt *party
	switch {
	case target == (calls.Participant{}) && len(b.parties) == 1:
		pt = b.parties[0]
	case target == (calls.Participant{}):
		if field != "playTo" {
			return nil, calls.ErrMediaNotSupported(field, op, fmt.Sprintf(" without naming the participant on a call with %d people", len(b.parties)))
		}
		if err := b.mixLocked(op); err != nil {
			return nil, err
		}
		return b.voiceLocked(), nil
	default:
		for _, p := range b.parties {
			if p.p == target {
				pt = p
			}
		}
		if pt == nil {
			return nil, calls.ErrMediaNotSupported(field, op, " toward "+target.ID+", who is not on the call")
		}
	}
	if len(b.parties) >= 2 {
		if err := b.mixLocked(op); err != nil {
			return nil, err
		}
	}
	return b.partyMediaLocked(pt, op)
}

// playToSeveral plays one prompt to each of op.Targets (two or more people, not necessarily
// all): each hears it instead of the conference, on their own player. The operation reports
// once: PlayStarted when the first starts, then, when every one ended, PlayCompleted (all
// completed), PlayCanceled (one was canceled) or PlayFailed (one failed). Its loading is not
// ordered with the single-target plays queued meanwhile.
func (b *botCall) playToSeveral(op *calls.PlayOp) error {
	if b.env.mediaDeps == nil {
		return calls.ErrMediaNotSupported("callConnectionId", "play", ": this telgw serves no media")
	}
	b.mu.Lock()
	if b.closed || b.transferred {
		b.mu.Unlock()
		return calls.ErrMediaNotSupported("callConnectionId", "play", " on a call the app left")
	}
	var pms []*partyMedia
	for _, t := range op.Targets {
		pm, err := b.mediaForLocked(t, "playTo", "play")
		if err != nil {
			b.mu.Unlock()
			return err
		}
		if !slices.Contains(pms, pm) {
			pms = append(pms, pm)
		}
	}
	b.mu.Unlock()
	for i, pm := range pms {
		if pm.pending.Add(1) > maxPendingPlays {
			for _, q := range pms[:i+1] {
				q.pending.Add(-1)
			}
			return problem.Conflict("callConnectionId", "%d plays are already queued for a participant", maxPendingPlays).WithCode("Conflict")
		}
	}
	gens := make([]uint64, len(pms))
	for i, pm := range pms {
		pm.mu.Lock()
		gens[i] = pm.gen
		pm.mu.Unlock()
	}
	g := &playGroup{op: op, left: len(pms)}
	go func() {
		pcm, err := b.env.loadPrompt(op.Sources)
		if err != nil {
			for _, pm := range pms {
				pm.pending.Add(-1)
			}
			b.env.log.Info("prompt not loaded", "call_id", b.main.id, "err", err)
			op.Failed(loadFailure(err))
			return
		}
		id := "play-" + strconv.FormatUint(playSeq.Add(1), 10)
		for i, pm := range pms {
			pm.mu.Lock()
			canceled := pm.gen != gens[i]
			pm.mu.Unlock()
			if canceled {
				pm.pending.Add(-1)
				g.done(rtpmedia.Canceled)
				continue
			}
			pm.player.Enqueue(&rtpmedia.Play{ID: id, PCM: pcm, Loop: op.Loop, OnStart: g.start, OnDone: func(o rtpmedia.Outcome) {
				pm.pending.Add(-1)
				g.done(o)
			}}, op.Interrupt)
		}
	}()
	return nil
}

// playGroup is one play operation carried out on several players.
type playGroup struct {
	op      *calls.PlayOp
	mu      sync.Mutex
	left    int
	started bool
	worst   rtpmedia.Outcome // Completed < Canceled < Failed
}

func (g *playGroup) start() {
	g.mu.Lock()
	first := !g.started
	g.started = true
	g.mu.Unlock()
	if first {
		g.op.Started()
	}
}

func (g *playGroup) done(o rtpmedia.Outcome) {
	g.mu.Lock()
	g.worst = max(g.worst, o)
	g.left--
	last, worst := g.left == 0, g.worst
	g.mu.Unlock()
	if !last {
		return
	}
	switch worst {
	case rtpmedia.Completed:
		g.op.Completed()
	case rtpmedia.Canceled:
		g.op.Canceled()
	default:
		g.op.Failed(calls.ResultInformation{Code: 500, SubCode: 8500, Message: "Action failed, a participant's media leg closed."})
	}
}
