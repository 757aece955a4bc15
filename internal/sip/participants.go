package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// botCall is the SIP side of a call an app controls (a call connection) once connected: the
// people on it (PSTN legs and communication users besides the app, up to calls.maxParticipants)
// and their media. telgw anchors every leg's media; a leg's packets go to the other person's
// leg when there are two, to the call's mixer once it has one (conference.go: from the third
// person on), else to the app (its media, botmedia.go: DTMF for recognitions; the rest
// dropped), and nowhere while muted.
//
// The first leg is the call's own dialog (the caller of an answered call, the callee of a
// placed one). A leg added by addParticipant, or the target of a transfer, is a call of its
// own (telgw is its UAC, bot set, so in-dialog requests on it are answered by telgw) filed in
// the call table under its Call-ID like any callee leg, so dialog matching (dialog.go) covers
// it; it writes its own CDR (outbound, from the caller id shown to the target).
type botCall struct {
	env   *callEnv
	main  *call
	conn  *calls.Connection
	codec sdp.Codec // the first leg's codec, offered to added legs (media is relayed, not transcoded)

	wake chan struct{} // a leg ended or joined
	over chan struct{} // closed when the call is over: legs still dialling give up

	mu          sync.Mutex
	parties     []*party
	closed      bool
	transferred bool          // the app left (transfer, hangUp): the call goes on between the people
	medias      []*partyMedia // the app's media toward people (botmedia.go), closed with the call
	conf        *conference   // the mix, once the call has one (conference.go)
	group       uint32        // the pacing group of the call's players (conference.go)
}

var _ calls.CallControl = (*botCall)(nil)

// party is one person's leg in a bot call.
type party struct {
	p     calls.Participant
	leg   calls.MediaLeg
	muted atomic.Bool
	held  atomic.Bool // on hold: hears the hold music, not the call; not heard
	peer  atomic.Pointer[party]
	ended <-chan struct{} // closed when the leg's dialog ended (either side)
	// bye ends the leg from telgw's side (BYE unless the peer already hung up); mark records
	// who ended it ahead of that (the leg's call's end).
	bye  func(ctx context.Context)
	mark func(by string)
	// gone marks a leg telgw ended (removed, transferred away, the call over): not reported
	// as the participant leaving.
	gone atomic.Bool
	// hungUp is what CallDisconnected says when this leg was the last and hung up.
	hungUp string
	// info is what the leg negotiated (the first leg's; botmedia.go); mediaPtr the app's
	// media toward it, once a media operation needed it: what the person sends while no one
	// else hears it goes there.
	info     mediaInfo
	mediaPtr atomic.Pointer[partyMedia]
	tap      atomic.Pointer[recTap] // a recording's receiver of what pt sends (recording.go)
	// sig is the leg's call and side the dialog of it that leads to the person: where a hold's
	// re-INVITE goes (bothold.go).
	sig  *call
	side int
	// member is pt's place in the call's conference, once it is mixed (conference.go).
	member atomic.Pointer[confMember]
}

// holdBot runs a connected bot call whose first person is human on leg (side 0 or 1 of c's
// dialogs) until it is over: every person gone, the app hanging up, the service stopping, or,
// after a transfer, either remaining person hanging up. appSide is who ends the call when the
// app does (EndedByCallee for an answered call, EndedByCaller for a placed one). It reports
// the call connected (Attach, Connected) and returns why it ended, for CallDisconnected.
func (c *call) holdBot(conn *calls.Connection, human calls.Participant, leg calls.MediaLeg, side int, appSide string) calls.ResultInformation {
	b := &botCall{env: c.env, main: c, conn: conn, codec: firstCodec(c.lastSent(side)), wake: make(chan struct{}, 1), over: make(chan struct{})}
	hungUp := "The caller hung up."
	if side == 1 {
		hungUp = "The callee hung up."
	}
	remote := calls.EndedByCaller
	if side == 1 {
		remote = calls.EndedByCallee
	}
	first := &party{p: human, leg: leg, ended: c.ended, hungUp: hungUp, mark: c.end, info: c.mediaInfo(side), sig: c, side: side}
	first.bye = func(ctx context.Context) {
		c.end(appSide)
		if c.endedBy == remote {
			return // the peer hung up first
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if side == 0 {
			_ = c.a.Bye(ctx)
		} else {
			_ = c.b.Bye(ctx)
		}
	}
	b.join(first, false) // before Attach: operations the app sends once attached find the person
	conn.Attach(b, human)
	conn.Connected()
	defer b.close()
	s := c.env
	for {
		var hangup <-chan struct{}
		b.mu.Lock()
		if !b.transferred {
			hangup = conn.HangupRequested()
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-hangup:
			if conn.Leaving() && b.appLeaves() {
				// hangUp with two people or more on the call: they talk on without the app.
				conn.Disconnected(calls.ResultInformation{Code: 200, Message: "The app left the call."})
				continue
			}
			b.hangupAll("")
			return calls.ResultInformation{Code: 200, Message: "The app hung up."}
		case <-s.stop().Done():
			b.hangupAll(calls.EndedBySystem)
			return calls.ResultInformation{Code: 200, Message: "telgw is shutting down."}
		}
		left, remaining, transferred := b.reap()
		if transferred {
			if remaining < 2 {
				b.hangupAll("")
				return calls.ResultInformation{Code: 200, Message: "The call was transferred."}
			}
			continue
		}
		for _, pt := range left {
			if remaining > 0 && !pt.gone.Load() {
				conn.Left(pt.p)
			}
		}
		if remaining == 0 {
			msg := "The participants left the call."
			if len(left) == 1 && !left[0].gone.Load() {
				msg = left[0].hungUp
			}
			return calls.ResultInformation{Code: 200, Message: msg}
		}
	}
}

func (b *botCall) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// join puts pt into the call: its media goes to the other person, if any, and theirs to it,
// or, from the third person on, into the call's mix (conference.go). With transfer, pt is the
// transfer's target and the app leaves: the call must have exactly one person. False when the
// call is over, full, (transfer) not one person, or cannot be mixed.
func (b *botCall) join(pt *party, transfer bool) bool {
	b.mu.Lock()
	if b.closed || len(b.parties) >= calls.MaxParticipantsLimit || transfer && len(b.parties) != 1 {
		b.mu.Unlock()
		return false
	}
	if transfer {
		b.transferred = true
	}
	var talking []*partyMedia
	if b.conf != nil || len(b.parties) >= 2 {
		if b.mixLocked("a conference") != nil {
			b.mu.Unlock()
			return false
		}
		if _, err := b.partyMediaLocked(pt, "a conference"); err != nil {
			b.mu.Unlock()
			return false
		}
		b.enterLocked(pt)
	}
	for _, o := range b.parties {
		if b.conf != nil {
			break
		}
		o.peer.Store(pt)
		pt.peer.Store(o)
		if pm := o.mediaPtr.Load(); pm != nil {
			talking = append(talking, pm)
		}
	}
	b.parties = append(b.parties, pt)
	b.mu.Unlock()
	for _, pm := range talking {
		pm.cancel() // the person now hears the other one: the app's plays and recognitions end
	}
	m := b.env.m.botMedia
	go relayParty(pt, m.WithLabelValues("rtp", "relayed"), m.WithLabelValues("rtp", "muted"), m.WithLabelValues("rtp", "app"))
	go relayPartyRTCP(pt)
	go func() {
		select {
		case <-pt.ended:
			b.poke()
		case <-b.over:
		}
	}()
	return true
}

// appLeaves takes the app out of a call with two people or more on it (they talk on, as after
// a transfer); false when there are fewer.
func (b *botCall) appLeaves() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.parties) < 2 {
		return false
	}
	b.transferred = true
	return true
}

// reap takes the legs that ended out of the call (their peers go back to the app) and returns
// them, how many remain, and whether the call was transferred.
func (b *botCall) reap() (left []*party, remaining int, transferred bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := b.parties[:0]
	for _, pt := range b.parties {
		select {
		case <-pt.ended:
			left = append(left, pt)
			b.leaveLocked(pt)
			if o := pt.peer.Load(); o != nil {
				o.peer.CompareAndSwap(pt, nil)
			}
			pt.peer.Store(nil)
		default:
			keep = append(keep, pt)
		}
	}
	b.parties = keep
	return left, len(keep), b.transferred
}

// hangupAll ends every leg still up; by, when set, is who ended them (the system, on
// shutdown), else telgw's side of each leg.
func (b *botCall) hangupAll(by string) {
	b.mu.Lock()
	b.closed = true
	ps := append([]*party(nil), b.parties...)
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, pt := range ps {
		pt.gone.Store(true)
		if by != "" {
			pt.mark(by)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt.bye(context.Background())
		}()
	}
	wg.Wait()
}

func (b *botCall) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.closeMedia()
	close(b.over)
}

func (b *botCall) find(p calls.Participant) *party {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, pt := range b.parties {
		if pt.p == p {
			return pt
		}
	}
	return nil
}

// Remove implements calls.CallControl: BYE to p's leg; the others talk on (a lone one goes
// back to the app).
func (b *botCall) Remove(ctx context.Context, p calls.Participant) error {
	pt := b.find(p)
	if pt == nil {
		return fmt.Errorf("%s is not in the call", p.ID)
	}
	pt.gone.Store(true)
	pt.bye(ctx)
	select {
	case <-pt.ended:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.poke()
	return nil
}

// Mute implements calls.CallControl: what p sends is dropped from now on.
func (b *botCall) Mute(p calls.Participant) error {
	pt := b.find(p)
	if pt == nil {
		return fmt.Errorf("%s is not in the call", p.ID)
	}
	pt.muted.Store(true)
	pt.muteMixed(true)
	return nil
}

// Invite implements calls.CallControl (addParticipant).
func (b *botCall) Invite(inv *calls.Invitation) {
	if !b.env.table.begin() {
		inv.Failed(calls.ResultInformation{Code: 503, Message: "telgw is shutting down."})
		return
	}
	go func() {
		defer b.env.table.done()
		b.invite(inv)
	}()
}

func (b *botCall) invite(inv *calls.Invitation) {
	cancel := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-inv.Cancelled():
		case <-b.over:
		case <-stop:
			return
		}
		close(cancel)
	}()
	sub, err := b.placed(inv, cancel) // conference_ring.go
	if err != nil {
		inv.Failed(resultInformation(err))
		return
	}
	pt := sub.party(inv.Target)
	if !b.join(pt, false) {
		pt.bye(context.Background())
		sub.closeLeg()
		inv.Failed(b.joinFailure()) // conference.go
		return
	}
	inv.Answered()
	select {
	case <-sub.ended:
		// Gone before Answered put them on the roster: the main loop's Left found nobody.
		if !pt.gone.Load() {
			b.conn.Left(inv.Target)
		}
	default:
	}
	<-sub.ended
	sub.closeLeg()
}

// Transfer implements calls.CallControl (transferToParticipant).
func (b *botCall) Transfer(tr *calls.Transfer) {
	if !b.env.table.begin() {
		tr.Failed(calls.ResultInformation{Code: 503, Message: "telgw is shutting down."})
		return
	}
	go func() {
		defer b.env.table.done()
		b.transfer(tr)
	}()
}

func (b *botCall) transfer(tr *calls.Transfer) {
	sub, err := b.env.dialLeg(legParams{target: tr.Target, callerID: tr.CallerID, codec: b.codec,
		correlation: b.main.cc.CorrelationID, cancel: b.over})
	if err != nil {
		tr.Failed(resultInformation(err))
		return
	}
	pt := sub.party(tr.Target)
	if !b.join(pt, true) {
		pt.bye(context.Background())
		sub.closeLeg()
		tr.Failed(calls.ResultInformation{Code: 487, Message: "The call changed before the transfer target answered."})
		return
	}
	tr.Accepted()
	// The app is out of the call: its connection ends; the people talk on until one hangs up.
	b.conn.Disconnected(calls.ResultInformation{Code: 200, Message: "The call was transferred."})
	b.poke()
	<-sub.ended
	sub.closeLeg()
}

// relayParty reads pt's RTP until its leg closes and sends it to pt's peer, or to the call's
// mix (conference.go), or to the app's media toward pt (botmedia.go) when pt is alone with the
// app, or drops it (muted, or either of them on hold: a held person hears only the hold music,
// bothold.go). A recording's tap (recording.go) gets a copy first.
func relayParty(pt *party, relayed, muted, app interface{ Inc() }) {
	buf := make([]byte, 1500)
	for {
		n, err := pt.leg.ReadRTP(buf)
		if err != nil {
			return
		}
		if t := pt.tap.Load(); t != nil && !pt.muted.Load() && !pt.held.Load() {
			t.rx.Push(buf[:n]) // a recording (recording.go): a copy into its jitter buffer, never waits
		}
		switch o := pt.peer.Load(); {
		case pt.muted.Load(), pt.held.Load(), o != nil && o.held.Load():
			muted.Inc()
		case pt.mixing(buf[:n]): // conference.go
		case o != nil:
			if o.leg.WriteRTP(buf[:n]) == nil {
				relayed.Inc()
			}
		default:
			app.Inc()
			if pm := pt.mediaPtr.Load(); pm != nil {
				pm.fromPerson(buf[:n])
			}
		}
	}
}

// relayPartyRTCP forwards pt's RTCP to its peer (RFC 3550 §6: reports travel with the media).
func relayPartyRTCP(pt *party) {
	buf := make([]byte, 1500)
	for {
		n, err := pt.leg.ReadRTCP(buf)
		if err != nil {
			return
		}
		if o := pt.peer.Load(); o != nil && !pt.muted.Load() && !pt.held.Load() && !o.held.Load() {
			_ = o.leg.WriteRTCP(buf[:n])
		}
	}
}

// firstCodec is the first audio codec (not telephone-event) of an SDP body telgw sent; PCMU
// when there is none.
func firstCodec(body []byte) sdp.Codec {
	if s, err := sdp.Parse(body); err == nil {
		if m := s.Audio(); m != nil {
			for _, co := range m.Codecs() {
				if co.Name != "TELEPHONE-EVENT" && co.Name != "" {
					return co
				}
			}
		}
	}
	return sdp.Codec{PT: 0, Name: "PCMU", Rate: 8000}
}

// legParams say where dialLeg calls and how.
type legParams struct {
	target calls.Participant
	// callerID is the number shown to the target (the From user); display its name.
	callerID, display string
	// ring bounds the ringing; 0: the ring timeout.
	ring  time.Duration
	codec sdp.Codec
	// correlation is the call's correlationId, shared by the leg's own call record.
	correlation string
	// cancel, when closed, abandons the attempt (CANCEL while it rings, RFC 3261 §9.1).
	cancel <-chan struct{}
	// sign adds the Identity header (fraud.go): an app's own call (createCall).
	sign bool
}

// dialError is why dialLeg could not place a leg, as a callback's resultInformation tells it.
type dialError struct {
	code int
	msg  string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }
func (e *dialError) Unwrap() error { return e.err }

func resultInformation(err error) calls.ResultInformation {
	var le *dialError
	if errors.As(err, &le) {
		return calls.ResultInformation{Code: le.code, Message: le.msg}
	}
	return calls.ResultInformation{Code: 500, Message: err.Error()}
}

// dialLeg places a call from telgw to p.target for an app (the target-dialing step of
// addParticipant and transferToParticipant) and returns it answered: its dialog (b), its media
// leg (legB) and its call record, filed in the call table. A phone number goes out through the
// SIP routes (trunks in order, failing over as createCall does); a communication user is not
// reachable yet (calls.ErrUnsupportedTarget). The caller closes the leg with closeLeg.
func (e *callEnv) dialLeg(p legParams) (*call, error) {
	if p.target.Kind == calls.CommunicationUser {
		return e.dialUserLeg(p)
	}
	if p.target.Kind != calls.PhoneNumber {
		return nil, &dialError{code: 501, msg: "Calling a " + string(p.target.Kind) + " is not supported yet.", err: calls.ErrUnsupportedTarget}
	}
	c := e.newLegCall(p)
	cc := c.cc
	fail := func(code int, msg string, last *sip.Response, err error) (*call, error) {
		e.table.unregister(c.bIDLocked())
		if c.legB != nil {
			_ = c.legB.Close()
		}
		c.finish(code, last)
		return nil, &dialError{code: code, msg: msg, err: err}
	}
	trunks := e.trunks.outbound(p.target.ID)
	if len(trunks) == 0 {
		e.log.Info("no outbound route for an app's participant", "call_id", c.id, "number", p.target.ID)
		return fail(404, "No route reaches "+p.target.ID+".", nil, calls.ErrNoRoute)
	}
	var err error
	if c.legB, err = e.relay.NewUDPLeg(); err != nil {
		e.log.Error("no media ports", "err", err)
		return fail(503, "No media ports.", nil, calls.ErrUnavailable)
	}
	offer, err := sdp.Parse(plainOffer(p.codec.Name, p.codec.PT, 101))
	if err != nil {
		return fail(500, "Bad offer.", nil, err)
	}
	body := c.anchored(offer, c.legB, 1)
	code, reason := 503, "Service Unavailable"
	var last *sip.Response
	for _, t := range trunkTargets(trunks, p.target.ID, p.callerID) {
		if !t.trunk.up.Load() || !t.trunk.acquire() {
			continue
		}
		cc.SetTrunk(t.trunk.Name)
		res, err := c.legAttempt(t, body, p)
		if err == nil {
			c.trunk = t.trunk
			ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
			_, aerr := c.acceptAnswer(res.Body())
			_ = c.b.Ack(ctx)
			if aerr != nil {
				_ = c.b.Bye(ctx)
				cancel()
				t.trunk.release()
				return fail(488, "The participant's media is not acceptable.", nil, aerr)
			}
			cancel()
			select {
			case <-p.cancel: // answered as the CANCEL crossed its 200 (RFC 3261 §9.1): hang up
				bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.b.Bye(bctx)
				bcancel()
				t.trunk.release()
				return fail(487, "The invitation was cancelled.", nil, errCallerCancel)
			default:
			}
			cc.Answer(time.Now())
			c.answered.Store(true)
			return c, nil
		}
		t.trunk.release()
		var known bool
		if code, reason, last, known = attemptFailure(err); !known {
			e.log.Info("participant call attempt failed", "trunk", t.trunk.Name, "err", err)
		}
		e.m.attempt.WithLabelValues(t.trunk.Name, resultClass(code, err)).Inc()
		if code == 487 || !failover(code) {
			break
		}
	}
	msg := fmt.Sprintf("The participant's call failed: %d %s.", code, reason)
	if code == 487 {
		msg = "The invitation was cancelled."
	}
	return fail(code, msg, last, nil)
}

// legAttempt sends the INVITE with body to t and waits for the final response; closing
// p.cancel or the ring timeout cancels it (RFC 3261 §9.1).
func (c *call) legAttempt(t target, body []byte, p legParams) (*sip.Response, error) {
	s := c.env
	inv := sip.NewRequest(sip.INVITE, t.uri)
	if tp, ok := t.uri.UriParams.Get("transport"); ok && tp != "" {
		inv.SetTransport(strings.ToUpper(tp))
	}
	from := sip.FromHeader{DisplayName: p.display, Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: s.cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&from)
	toURI := t.uri
	toURI.UriParams = nil
	inv.AppendHeader(&sip.ToHeader{Address: toURI, Params: sip.NewParams()})
	mf := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&mf)
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(body)
	if p.sign {
		c.decorate(inv, t) // Identity (fraud.go)
	}
	ctx, cancel := context.WithCancelCause(s.stop())
	defer cancel(nil)
	bs, err := s.dialogs[strings.ToLower(inv.Transport())].WriteInvite(ctx, inv)
	if err != nil {
		return nil, fmt.Errorf("send invite: %w", err)
	}
	c.mu.Lock()
	old := c.bID
	c.b, c.bID = bs, bs.InviteRequest.CallID().Value()
	c.dlg[1] = peerDialog{callID: c.bID, local: fromTag(bs.InviteRequest.From())}
	c.mu.Unlock()
	c.cc.SetCallee(calls.Leg{ID: c.bID, Kind: calls.LegCarrier, Participant: calls.Phone(c.cc.To()), Trunk: t.trunk.Name})
	s.table.unregister(old)
	s.table.register(c.bID, c, 1)
	defer s.watchRing(p, cancel)()
	err = bs.WaitAnswer(ctx, sipgo.AnswerOptions{Username: t.trunk.Username, Password: t.trunk.Password, OnResponse: func(res *sip.Response) error {
		if res.IsSuccess() {
			c.confirmB(res, inv.Transport(), t.trunk)
		}
		if res.StatusCode > 100 && res.StatusCode < 200 {
			c.cc.Ring(time.Now())
		}
		return nil
	}})
	if err == nil {
		return bs.InviteResponse, nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, errCallerCancel) || errors.Is(cause, errRingTimeout) {
		return nil, cause
	}
	return nil, err
}

// newLegCall is the call record of a leg dialLeg places: telgw (the app) calling p.target
// with p's caller id, under the call's correlationId.
func (e *callEnv) newLegCall(p legParams) *call {
	cc := calls.NewCall(time.Now(), calls.Leg{Kind: calls.LegBot, Participant: calls.Participant{Kind: calls.App, ID: "callautomation"}})
	cc.CorrelationID = p.correlation
	cc.SetDirection(Outbound)
	cc.SetFrom(p.callerID)
	cc.SetTo(p.target.ID)
	cc.UpdateCaller(func(l *calls.Leg) { l.ID = cc.ID })
	c := &call{env: e, id: cc.ID, cc: cc, ended: make(chan struct{}), ackBody: make(chan []byte, 1), bot: true}
	c.origin[1].ID = uint64(time.Now().UnixNano())
	return c
}

// watchRing cancels an attempt to place a leg when p.cancel closes (errCallerCancel) or it
// rings longer than p.ring, the ring timeout by default (errRingTimeout), until the returned
// stop is called.
func (e *callEnv) watchRing(p legParams, cancel context.CancelCauseFunc) (stop func()) {
	ringFor := p.ring
	if ringFor <= 0 {
		ringFor = e.cfg.RingTimeout
	}
	done := make(chan struct{})
	go func() {
		ring := time.NewTimer(ringFor)
		defer ring.Stop()
		select {
		case <-done:
		case <-p.cancel:
			cancel(errCallerCancel)
		case <-ring.C:
			cancel(errRingTimeout)
		}
	}()
	return func() { close(done) }
}

// party is the added leg c as a person of a bot call.
func (c *call) party(p calls.Participant) *party {
	var leg calls.MediaLeg = c.legB
	if c.web != nil {
		leg = c.web
	}
	var info mediaInfo
	if c.web == nil {
		info = c.mediaInfo(1) // a WebRTC leg's: legInfoLocked (conference.go)
	}
	return &party{p: p, leg: leg, ended: c.ended, hungUp: "The participant hung up.", mark: c.end, info: info, sig: c, side: 1, bye: func(ctx context.Context) {
		c.end(calls.EndedByCaller)
		if c.endedBy == calls.EndedByCallee {
			return // they hung up first
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = c.b.Bye(ctx)
	}}
}

// closeLeg ends an added leg's life once its dialog is over: its trunk slot, its entry in the
// call table, its media ports and its CDR.
func (c *call) closeLeg() {
	if c.trunk != nil {
		c.trunk.release()
	}
	c.env.table.unregister(c.bIDLocked())
	if c.legB != nil {
		_ = c.legB.Close()
	}
	if c.web != nil {
		_ = c.web.Close()
	}
	c.cc.SetEndedBy(c.endedBy)
	c.finish(200, nil)
}
