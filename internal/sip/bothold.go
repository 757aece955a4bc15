package sip

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Hold and unhold of a bot call's person (Call Automation's hold/unhold).
//
// Holding a person takes them out of the call's audio at once: the relay (participants.go
// relayParty) drops what they send and what is sent to them, and the app's plays and
// recognitions toward them end (PlayCanceled, RecognizeCanceled). On a SIP leg telgw then
// re-INVITEs them with its audio a=sendonly (RFC 3264 §8.4: the side that holds offers
// sendonly; the held side answers recvonly) and loops the hold music, if the app gave a play
// source, toward them; without music they hear silence (no RTP). Unhold re-INVITEs with
// a=sendrecv and stops the music. A WebRTC leg needs no re-INVITE: holding it is only media
// (the music plays on its player as on a SIP leg's).
//
// Failures are HoldFailed: the re-INVITE refused or unanswered (the person is taken off hold
// again), or the music not loadable (the person stays held, in silence). Unhold has no failure
// event in ACS; a refused unhold re-INVITE is logged and the person is back in the call's audio
// anyway.

var _ calls.HoldControl = (*botCall)(nil)

// holdMusic is the looped prompt a held person hears.
type holdMusic struct {
	b   *botCall
	id  string
	pcm []int16
}

// heldParty finds target on the call for hold or unhold.
func (b *botCall) heldParty(target calls.Participant, op string) (*party, error) {
	b.mu.Lock()
	closed := b.closed || b.transferred
	b.mu.Unlock()
	if closed {
		return nil, calls.ErrMediaNotSupported("callConnectionId", op, " on a call the app left")
	}
	pt := b.find(target)
	if pt == nil {
		return nil, problem.Invalid("targetParticipant", "%s is not on the call", target.ID).WithCode("BadRequest")
	}
	return pt, nil
}

// Hold implements calls.HoldControl.
func (b *botCall) Hold(op *calls.HoldOp) error {
	pt, err := b.heldParty(op.Target, "hold")
	if err != nil {
		return err
	}
	if len(op.Music) > 0 && b.env.mediaDeps == nil {
		return calls.ErrMediaNotSupported("playSourceInfo", "hold music", ": this telgw serves no media")
	}
	if pt.held.Swap(true) {
		return nil // already held
	}
	if pm := pt.mediaPtr.Load(); pm != nil {
		pm.cancel() // a held person hears nothing of the app but the music
	}
	go b.hold(pt, op)
	return nil
}

func (b *botCall) hold(pt *party, op *calls.HoldOp) {
	if err := b.setDirection(pt); err != nil {
		select {
		case <-pt.ended:
			return // they hung up meanwhile: nothing to report
		default:
		}
		b.env.log.Info("hold re-INVITE failed", "call_id", b.main.id, "participant", pt.p.ID, "err", err)
		pt.held.Store(false)
		op.Failed(reinviteFailure(err))
		return
	}
	if len(op.Music) == 0 {
		return
	}
	pm, err := b.mediaOf(pt)
	if err != nil {
		b.env.log.Info("no hold music", "call_id", b.main.id, "participant", pt.p.ID, "err", err)
		return // the leg cannot carry it (not G.711): silence
	}
	pcm, err := b.env.loadPrompt(op.Music)
	if err != nil {
		b.env.log.Info("hold music not loaded", "call_id", b.main.id, "err", err)
		op.Failed(loadFailure(err))
		return
	}
	if len(pcm) == 0 {
		return
	}
	m := &holdMusic{b: b, id: "hold-" + strconv.FormatUint(playSeq.Add(1), 10), pcm: pcm}
	pm.mu.Lock()
	pm.hold = m
	pm.mu.Unlock()
	pm.startMusic(pt, m)
}

// startMusic loops m toward the person if it is still the music of someone held; if something
// else cancels it (cancelAllMediaOperations, someone joining) while they are, it starts again.
// The check and the Enqueue happen under pm.mu, as stopMusic's reset and Cancel do, and
// Unhold clears held before it looks for the music: an unhold racing the music's start or
// restart always ends it.
func (pm *partyMedia) startMusic(pt *party, m *holdMusic) {
	m.b.mu.Lock()
	over := m.b.closed // a closed player cancels at once: do not loop on it
	m.b.mu.Unlock()
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if over || pm.hold != m || !pt.held.Load() {
		return
	}
	pm.player.Enqueue(&rtpmedia.Play{ID: m.id, PCM: m.pcm, Loop: true, OnDone: func(o rtpmedia.Outcome) {
		if o == rtpmedia.Canceled {
			pm.startMusic(pt, m)
		}
	}}, true)
}

// stopMusic ends m, if it is still the music.
func (pm *partyMedia) stopMusic(m *holdMusic) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.hold == m {
		pm.hold = nil
	}
	pm.player.Cancel(m.id)
}

// Unhold implements calls.HoldControl.
func (b *botCall) Unhold(op *calls.HoldOp) error {
	pt, err := b.heldParty(op.Target, "unhold")
	if err != nil {
		return err
	}
	if !pt.held.Swap(false) { // back in the call's audio at once
		return nil
	}
	if pm := pt.mediaPtr.Load(); pm != nil {
		pm.mu.Lock()
		m := pm.hold
		pm.mu.Unlock()
		if m != nil {
			pm.stopMusic(m)
		}
	}
	go func() {
		if err := b.setDirection(pt); err != nil {
			b.env.log.Info("unhold re-INVITE failed", "call_id", b.main.id, "participant", pt.p.ID, "err", err)
		}
	}()
	return nil
}

// errReinvite is a hold or unhold re-INVITE the person refused.
type errReinvite struct{ code int }

func (e errReinvite) Error() string { return "re-INVITE answered " + strconv.Itoa(e.code) }

// reinviteFailure is HoldFailed's result information for err.
func reinviteFailure(err error) calls.ResultInformation {
	var re errReinvite
	if errors.As(err, &re) {
		return calls.ResultInformation{Code: re.code, SubCode: 0, Message: "Action failed, the participant refused the hold."}
	}
	return calls.ResultInformation{Code: 408, SubCode: 0, Message: "Action failed, the participant did not answer the hold."}
}

// setDirection re-INVITEs the person's SIP leg with telgw's last description in the direction
// the hold state asks for when it is sent (RFC 3264 §8.4 hold: sendonly; resume: sendrecv), so
// a quick hold-unhold-hold converges on the last, and takes their answer (RFC 3264 §8: same
// codecs, the answer's address). Nothing is sent when telgw's last offer or answer already
// says so, nor to a WebRTC leg. A 491 (RFC 3261 §14.1: both sides re-INVITEd at once) is
// retried after a random 2.1–4 s, twice at most.
func (b *botCall) setDirection(pt *party) error {
	c, side := pt.sig, pt.side
	if c == nil || c.web != nil {
		return nil
	}
	if _, ok := pt.leg.(*bridge.UDPLeg); !ok {
		return nil
	}
	for attempt := 0; ; attempt++ {
		code, err := c.reinviteDirection(side, func() string {
			if pt.held.Load() {
				return "sendonly"
			}
			return "sendrecv"
		})
		if err != nil {
			return err
		}
		if code == 491 && attempt < 2 {
			select {
			case <-time.After(2100*time.Millisecond + rand.N(1900*time.Millisecond)):
				continue
			case <-c.ended:
				return errReinvite{481}
			}
		}
		if code >= 300 {
			return errReinvite{code}
		}
		return nil
	}
}

// reinviteDirection sends one re-INVITE to side with telgw's last description set to the
// direction want returns (asked once the call's re-INVITE lock is held) and returns the final
// status code (200 when nothing needed sending).
func (c *call) reinviteDirection(side int, want func() string) (int, error) {
	c.reinvite.Lock() // one re-INVITE at a time per call (RFC 3261 §14.1); theirs get 491 meanwhile
	defer c.reinvite.Unlock()
	last, err := sdp.Parse(c.lastSent(side))
	if err != nil {
		return 0, err
	}
	m := last.Audio()
	if m == nil {
		return 0, errors.New("no audio in the last description")
	}
	dir := want()
	if last.Direction(m) == dir {
		return 200, nil
	}
	isDir := func(l string) bool {
		return l == "a=sendrecv" || l == "a=sendonly" || l == "a=recvonly" || l == "a=inactive"
	}
	last.Lines = slices.DeleteFunc(last.Lines, isDir)
	m.Lines = append(slices.DeleteFunc(m.Lines, isDir), "a="+dir)
	leg := c.legFor(side)
	body := c.anchored(last, leg, side) // a new o= version (RFC 3264 §8)
	res, err := c.sendReinvite(side, body)
	if err != nil {
		return 0, err
	}
	if !res.IsSuccess() {
		return res.StatusCode, nil
	}
	ans, err := sdp.Parse(res.Body())
	if err == nil {
		err = sdp.FilterAnswer(ans, last)
	}
	if err != nil {
		return 488, nil
	}
	if a := ans.Addr(ans.Audio()); a.IsValid() && !a.Addr().IsUnspecified() {
		leg.SetRemote(a)
	}
	c.mu.Lock()
	c.lastVer[side], c.dir[side] = ans.Origin[2], ans.Direction(ans.Audio())
	c.mu.Unlock()
	return res.StatusCode, nil
}

// mediaOf returns the app's media toward pt for its hold music, made on first use, whoever
// else is on the call: as for any media operation, a call with two people or more is mixed
// first (conference.go), so the held person's player plays the music while the mix neither
// hears nor feeds them; a SIP or WebRTC leg alike.
func (b *botCall) mediaOf(pt *party) (*partyMedia, error) {
	if b.env.mediaDeps == nil {
		return nil, errors.New("no media")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("the call is over")
	}
	if len(b.parties) >= 2 {
		if err := b.mixLocked("hold"); err != nil {
			return nil, err
		}
	}
	return b.partyMediaLocked(pt, "hold")
}
