package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Blind call transfer by SIP REFER (RFC 3515, RFC 5589 §6) received in a bridged call's dialog.
//
// Who may transfer where (toll fraud: a REFER makes telgw place a call, so it goes through the
// same routing and policy as a call the referring side could place itself):
//   - The REFER must match its dialog like any in-dialog request (Call-ID, both tags, source;
//     dialog.go): anything else is 481 and changes nothing.
//   - The Refer-To target must be a telephone number (sip:/sips: user part or tel:); a URI
//     naming a host is refused (403): telgw never sends a call to a host a peer names.
//   - One of telgw's own numbers is reached as a carrier's call to it would be: its route (a
//     PBX's SIP URI or a WebRTC user; a number routed to an app is refused, 403). Any leg may
//     transfer there.
//   - Any other number goes out through the outbound routes (trunks), exactly as a call out:
//     only a customer's leg (a PBX or endpoint, kind endpoint) or a WebRTC user's may do that.
//     A carrier's leg may not (403): a carrier could otherwise make telgw dial any number at
//     the customer's expense. A number no route reaches: 202, then NOTIFY 404.
//   - The new leg's caller id is the transferee's (the party who stays), as for a forwarded
//     call; Referred-By (RFC 3892) is passed on.
//
// Either leg may transfer: the caller's (a carrier, a customer's endpoint, a WebRTC user
// calling out) or the callee's (a PBX, a WebRTC user, a carrier on a call out); the target's
// leg takes the transferor's side. Attended transfer (Refer-To with Replaces, RFC 3891) gets
// 501, as does a REFER on a call an app controls (transferToParticipant is the app's way).
//
// The transfer target is offered only the codecs the transferee already agreed to, so the
// transferee's session does not change: it keeps its dialog and telgw's media address, and
// needs no re-INVITE. Once the target answers, the transferee's media is re-bridged to it,
// the REFER's implicit subscription gets NOTIFY 200 OK (message/sipfrag, RFC 3420) and the
// transferor a BYE. When the target cannot be reached the NOTIFY carries the failure and the
// call goes on as before.

// Results of telgw_sip_refer_total.
const (
	referTransferred = "transferred" // the target answered, the transferee is bridged to it
	referFailed      = "failed"      // 202, then the target could not be reached
	referNoDialog    = "no-dialog"   // 481
	referForbidden   = "forbidden"   // 403: the policy refused the target
	referBad         = "bad-request" // 400
	referUnsupported = "unsupported" // 501: attended transfer, app calls
	referPending     = "pending"     // 491: a transfer is already under way
)

// referTarget is what a REFER's Refer-To asks for.
type referTarget struct {
	number string // E.164
}

var (
	errReferMissing  = errors.New("exactly one Refer-To is required")
	errReferSyntax   = errors.New("Refer-To is not a SIP, SIPS or tel URI")
	errReferReplaces = errors.New("Refer-To with Replaces (attended transfer) is not supported")
	errReferMethod   = errors.New("Refer-To may only ask for an INVITE")
	errReferNumber   = errors.New("Refer-To is not a telephone number")
)

// parseReferTo reads the Refer-To header values of a REFER (RFC 3515 §2.1: exactly one,
// §2.4.1: else 400). Its errors say which response to give (referToStatus).
func parseReferTo(values []string) (referTarget, error) {
	if len(values) != 1 || strings.TrimSpace(values[0]) == "" {
		return referTarget{}, errReferMissing
	}
	v := strings.TrimSpace(values[0])
	if strings.Contains(strings.ToLower(v), "replaces") {
		// RFC 3891 §3 (Replaces as an escaped URI header of the Refer-To): attended transfer.
		return referTarget{}, errReferReplaces
	}
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
		return referTarget{}, errReferSyntax
	}
	if u.Headers != nil {
		// RFC 3515 §2.2: a method other than INVITE (the default) is not a transfer.
		if m, ok := u.Headers.Get("method"); ok && !strings.EqualFold(m, "INVITE") {
			return referTarget{}, errReferMethod
		}
	}
	if m, ok := u.UriParams.Get("method"); ok && !strings.EqualFold(m, "INVITE") {
		return referTarget{}, errReferMethod
	}
	var digits string
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
		digits = u.User
	case "tel":
		// RFC 3966: tel:+1-212-555-0123;params (sipgo keeps a tel URI's text whole).
		digits, _, _ = strings.Cut(u.String()[len("tel:"):], ";")
	default:
		return referTarget{}, errReferSyntax
	}
	if digits == "" {
		return referTarget{}, errReferNumber
	}
	n, err := e164.Normalize(digits)
	if err != nil {
		return referTarget{}, errReferNumber
	}
	return referTarget{number: n}, nil
}

// referToStatus is the response to a REFER whose Refer-To parseReferTo refused.
func referToStatus(err error) (int, string, string) {
	switch {
	case errors.Is(err, errReferReplaces), errors.Is(err, errReferMethod):
		return 501, "Not Implemented", referUnsupported
	case errors.Is(err, errReferNumber):
		return 403, "Forbidden", referForbidden
	}
	return 400, "Bad Request", referBad
}

// referPlan is where a transfer goes: a SIP target list (a PBX route, the trunks) or a user.
type referPlan struct {
	targets []target
	user    calls.Participant
	noRoute bool // nothing reaches the number: 202 and NOTIFY 404
}

// referRoute applies the transfer policy (see the top of this file) for a REFER from the
// leg of kind from to number, whose new leg shows callerID.
func (s *dialogs) referRoute(ctx context.Context, from calls.LegKind, number, callerID string) (referPlan, error) {
	route, err := s.router.CallRoute(ctx, number)
	switch {
	case err == nil && route != nil:
		switch r := route.(type) {
		case SIPRoute:
			var u sip.Uri
			if err := sip.ParseUri(r.URI, &u); err != nil {
				return referPlan{}, fmt.Errorf("route of %s: %w", number, err)
			}
			if u.User == "" {
				u.User = number
			}
			return referPlan{targets: []target{{uri: u, fromUser: callerID, toUser: number}}}, nil
		case UserRoute:
			return referPlan{user: calls.User(r.User)}, nil
		}
		return referPlan{}, fmt.Errorf("%s is answered by an app: %w", number, calls.ErrForbidden)
	case err == nil, errors.Is(err, calls.ErrUnknownNumber):
		// Not one of telgw's numbers (or one without a route): out through the trunks.
	default:
		return referPlan{}, err
	}
	if from == calls.LegCarrier {
		return referPlan{}, fmt.Errorf("a carrier's leg may only transfer to this service's numbers: %w", calls.ErrForbidden)
	}
	trunks := s.trunks.outbound(number)
	if len(trunks) == 0 {
		return referPlan{noRoute: true}, nil
	}
	return referPlan{targets: trunkTargets(trunks, number, callerID)}, nil
}

// onRefer handles a REFER (RFC 3515 §2.4) inside a call's dialog.
func (s *dialogs) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	count := func(r string) { s.m.refer.WithLabelValues(r).Inc() }
	ref, ok := s.match(req, tx)
	if !ok {
		count(referNoDialog)
		return
	}
	c, side := ref.c, ref.side
	warn := func(code int, reason, result, text string) {
		count(result)
		respond(tx, req, code, reason, sip.NewHeader("Warning", `399 telgw "`+text+`"`))
	}
	switch {
	case c.bot:
		warn(501, "Not Implemented", referUnsupported, "this call is controlled by an app: transfer it with transferToParticipant")
		return
	case !c.answered.Load():
		warn(491, "Request Pending", referPending, "the call is not answered yet")
		return
	}
	var values []string
	for _, n := range []string{"Refer-To", "r"} {
		for _, h := range req.GetHeaders(n) {
			values = append(values, h.Value())
		}
	}
	tgt, err := parseReferTo(values)
	if err != nil {
		code, reason, result := referToStatus(err)
		warn(code, reason, result, err.Error())
		return
	}
	legs := c.cc.Legs()
	kind := legs[min(side, len(legs)-1)].Kind
	callerID := c.cc.From() // the transferee's number: the caller's when the callee transfers
	if side == 0 {
		callerID = c.cc.To()
	}
	ctx, cancel := context.WithTimeout(s.stop(), 5*time.Second)
	plan, err := s.referRoute(ctx, kind, tgt.number, callerID)
	cancel()
	if errors.Is(err, calls.ErrForbidden) {
		s.log.Info("refer refused", "call_id", c.id, "number", tgt.number, "leg", kind, "err", err)
		warn(403, "Forbidden", referForbidden, "transfer target not allowed")
		return
	}
	if err != nil {
		s.log.Error("refer route", "call_id", c.id, "number", tgt.number, "err", err)
		warn(500, "Server Internal Error", referFailed, "routing failed")
		return
	}
	adm, v := c.admitTransfer(plan.targets, tgt.number, side) // the fraud policy (fraud.go)
	if v != nil {
		code, reason, hdrs := policyStatus(v)
		count(referForbidden)
		respond(tx, req, code, reason, hdrs...)
		return
	}
	if !c.transferring.CompareAndSwap(false, true) {
		adm.End(0)
		warn(491, "Request Pending", referPending, "a transfer is already under way")
		return
	}
	if !s.table.begin() {
		adm.End(0)
		c.transferring.Store(false)
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	// RFC 4488 §4: Refer-Sub: false asks for no implicit subscription (no NOTIFYs).
	subscribe := true
	if h := req.GetHeader("Refer-Sub"); h != nil && strings.EqualFold(strings.TrimSpace(h.Value()), "false") {
		subscribe = false
	}
	res := sip.NewResponseFromRequest(req, 202, "Accepted", nil)
	if !subscribe {
		res.AppendHeader(sip.NewHeader("Refer-Sub", "false"))
	}
	_ = tx.Respond(res)
	x := &transfer{c: c, side: side, number: tgt.number, plan: plan, subscribe: subscribe, cseq: req.CSeq().SeqNo}
	if h := req.GetHeader("Referred-By"); h != nil {
		x.referredBy = h.Value()
	}
	if h := req.GetHeader("b"); h != nil && x.referredBy == "" {
		x.referredBy = h.Value()
	}
	x.dialog, x.target = c.peer(side), c.remoteTarget(side)
	c.mu.Lock()
	x.oldID = c.dlg[side].callID
	c.mu.Unlock()
	go func() {
		defer s.table.done()
		defer c.transferring.Store(false)
		if x.run(s) {
			count(referTransferred)
			c.keepTransfer(adm)
		} else {
			adm.End(0)
			count(referFailed)
		}
	}()
}

// transfer is one REFER being carried out.
type transfer struct {
	c          *call
	side       int // the transferor's side: 0 (the caller's leg) or 1 (the callee's)
	number     string
	plan       referPlan
	subscribe  bool
	cseq       uint32
	referredBy string
	dialog     legDialog // the transferor's dialog (NOTIFYs go there)
	target     sip.Uri   // its remote target
	oldID      string    // its Call-ID
}

// run places the new leg and, once it answered, swaps it in for the transferor. It reports
// whether the transfer happened.
func (x *transfer) run(s *dialogs) bool {
	c := x.c
	log := s.log.With("call_id", c.id, "number", x.number)
	x.notify(100, "Trying", false)
	if x.plan.noRoute {
		log.Info("refer: no route to the target")
		x.notify(404, "Not Found", true)
		return false
	}
	ctx, cancel := context.WithCancel(s.stop())
	defer cancel()
	go func() { // the call ended meanwhile
		select {
		case <-c.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	l, err := x.dial(ctx, s)
	if err != nil {
		le := legFailure(err)
		log.Info("refer: target not reached", "code", le.Code, "err", err)
		x.notify(le.Code, le.Reason, true)
		return false
	}
	if !x.swap(s, l) {
		l.drop()
		x.notify(487, "Request Terminated", true)
		return false
	}
	log.Info("call transferred", "leg", l.leg.Kind)
	x.notify(200, "OK", true)
	// RFC 5589 §6: the transferor's part in the call is over.
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = x.dialog.Bye(bctx)
	bcancel()
	// A BYE from the transferor that crossed telgw's is answered by the side-2 dialog until now.
	s.table.unregister(x.oldID)
	return true
}

// dial places the new leg.
func (x *transfer) dial(ctx context.Context, s *dialogs) (*outLeg, error) {
	c := x.c
	base, codecs, pts, dtmf, err := x.transfereeMedia()
	if err != nil {
		return nil, &legError{Code: 488, Reason: "Not Acceptable Here", Msg: err.Error()}
	}
	display := ""
	if x.side == 1 && c.a != nil && c.a.InviteRequest != nil {
		display = c.a.InviteRequest.From().DisplayName // the caller stays: its name
	}
	if x.plan.user.ID != "" {
		if c.web != nil && c.webSide != x.side {
			return nil, &legError{Code: 488, Reason: "Not Acceptable Here", Msg: "a WebRTC caller cannot be transferred to a WebRTC user"}
		}
		return s.dialUser(ctx, x.plan.user, userDial{callID: c.id, from: c.cc.From(), display: display, to: x.number,
			codecs: codecs, pts: pts, dtmf: dtmf})
	}
	return s.dialSIP(ctx, x.plan.targets, base, dialOpts{callID: c.id, display: display, referredBy: x.referredBy, to: calls.Phone(x.number)})
}

// transfereeMedia is what the transferee's session agreed to: the description telgw sent it
// (to offer the target the same codecs) and its G.711 codecs with their payload types.
func (x *transfer) transfereeMedia() (*sdp.Session, []string, map[string]uint8, uint8, error) {
	c := x.c
	var body []byte
	if c.web != nil && c.webSide == 0 {
		m := c.web.Media()
		var dtmf uint8
		if m.HasDTMF() {
			dtmf = 101
		}
		body = plainOffer(m.Codec, m.PayloadType, dtmf)
	} else {
		body = c.lastSent(0)
	}
	base, err := sdp.Parse(body)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("the transferee's session: %w", err)
	}
	setDirection(base, "sendrecv")
	codecs, pts, dtmf := g711(base.Audio())
	return base, codecs, pts, dtmf, nil
}

// swap puts l in the transferor's place: the call's dialog and media on that side, the
// bridge, the call record. The transferor's dialog stays known (side 2) until its BYE. It
// reports false when the call ended meanwhile.
func (x *transfer) swap(s *dialogs, l *outLeg) bool {
	c := x.c
	c.reinvite.Lock() // no re-INVITE is relayed while the legs change
	defer c.reinvite.Unlock()
	select {
	case <-c.ended:
		return false
	default:
	}
	rb, ok := c.br.(interface{ Replace(int, bridge.Leg) })
	if !ok {
		return false
	}
	side := x.side
	s.table.register(l.leg.ID, c, side)
	c.mu.Lock()
	c.dlg[2], c.gone = c.dlg[side], x.dialog
	c.dlg[side] = l.dlg
	if side == 1 {
		c.b, c.bID = l.dialog, l.leg.ID
	} else {
		c.aOut = l.dialog
	}
	c.lastVer[side], c.dir[side] = l.ver, l.dir
	if l.udp != nil {
		if side == 1 {
			c.legB = l.udp
		} else {
			c.legA = l.udp
		}
		c.lastTo[side], c.origin[side] = l.sent, l.origin
		if c.web != nil && c.webSide == side {
			c.web = nil
		}
	} else {
		c.web, c.webSide, c.webAnswer = l.web, side, nil
	}
	if c.moved != nil {
		close(c.moved)
		c.moved = nil
	}
	c.mu.Unlock()
	s.table.register(x.oldID, c, 2)
	rb.Replace(side, l.media())
	c.cc.Transfer(side, l.leg, time.Now())
	c.updateSending()
	go func() {
		<-c.ended
		l.release()
		if side == 0 {
			s.table.unregister(l.leg.ID) // the call's own clean-up knows the caller's first Call-ID only
		}
	}()
	return true
}

// notify sends the REFER subscription's NOTIFY (RFC 3515 §2.4.4-5): the status line of the
// new call as message/sipfrag (RFC 3420), the subscription terminated with the final one.
func (x *transfer) notify(code int, reason string, final bool) {
	if !x.subscribe {
		return
	}
	req := sip.NewRequest(sip.NOTIFY, x.target)
	// RFC 3515 §2.4.6: the id is the REFER's CSeq sequence number.
	req.AppendHeader(sip.NewHeader("Event", fmt.Sprintf("refer;id=%d", x.cseq)))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody(fmt.Appendf(nil, "SIP/2.0 %d %s\r\n", code, reason))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = x.dialog.Do(ctx, req)
}

// dialOpts describe a leg dialSIP places.
type dialOpts struct {
	callID     string
	display    string
	referredBy string
	to         calls.Participant
}

// dialSIP places a plain RTP leg: an INVITE offering base (re-addressed to a new media leg)
// to each target in turn (trunk failover as for calls out) until one answers. The leg it
// returns is answered and acknowledged, and holds its trunk's slot until released.
func (e *callEnv) dialSIP(ctx context.Context, targets []target, base *sdp.Session, o dialOpts) (*outLeg, error) {
	media, err := e.relay.NewUDPLeg()
	if err != nil {
		return nil, &legError{Code: 503, Reason: "Service Unavailable", Msg: "No media ports."}
	}
	origin := sdp.Origin{ID: uint64(time.Now().UnixNano())}
	cp, _ := sdp.Parse(base.Marshal())
	sdp.Anchor(cp, media.Local().Addr(), int(media.Local().Port()), &origin)
	body := cp.Marshal()
	var last error = &legError{Code: 503, Reason: "Service Unavailable", Msg: "No trunk is available."}
	for i, t := range targets {
		if t.trunk != nil {
			if !t.trunk.up.Load() {
				e.m.attempt.WithLabelValues(t.trunk.Name, "down").Inc()
				continue
			}
			if !t.trunk.acquire() {
				e.m.attempt.WithLabelValues(t.trunk.Name, "capacity").Inc()
				continue
			}
		}
		l, err := e.inviteLeg(ctx, t, body, o)
		if err == nil {
			ans, aerr := sdp.Parse(l.res.Body())
			if aerr == nil {
				aerr = sdp.FilterAnswer(ans, cp)
			}
			actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 32*time.Second)
			_ = l.dialog.Ack(actx)
			acancel()
			if aerr != nil {
				l.udp = media
				l.drop()
				return nil, &legError{Code: 488, Reason: "Not Acceptable Here", Msg: "The target's media is not acceptable."}
			}
			media.SetRemote(ans.Addr(ans.Audio()))
			l.udp, l.sent, l.origin = media, body, origin
			l.ver, l.dir = ans.Origin[2], ans.Direction(ans.Audio())
			return l, nil
		}
		if t.trunk != nil {
			t.trunk.release()
		}
		le := legFailure(err)
		last = le
		if t.trunk != nil {
			e.m.attempt.WithLabelValues(t.trunk.Name, resultClass(le.Code, err)).Inc()
		}
		if le.Code == 487 || !failover(le.Code) || i == len(targets)-1 {
			break
		}
	}
	_ = media.Close()
	return nil, last
}

// inviteLeg sends one INVITE with body to t and waits for its 2xx (the ring timeout, or ctx
// ending, cancels it: RFC 3261 §9.1).
func (e *callEnv) inviteLeg(ctx context.Context, t target, body []byte, o dialOpts) (*outLeg, error) {
	inv := sip.NewRequest(sip.INVITE, t.uri)
	if tp, ok := t.uri.UriParams.Get("transport"); ok && tp != "" {
		inv.SetTransport(strings.ToUpper(tp))
	}
	from := sip.FromHeader{DisplayName: o.display, Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: e.cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&from)
	toURI := t.uri
	toURI.UriParams = nil
	if t.toUser != "" {
		toURI.User = t.toUser
	}
	inv.AppendHeader(&sip.ToHeader{Address: toURI, Params: sip.NewParams()})
	mf := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&mf)
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	if o.referredBy != "" {
		inv.AppendHeader(sip.NewHeader("Referred-By", o.referredBy)) // RFC 3892 §3
	}
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(body)
	ictx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	bs, err := e.dialogs[strings.ToLower(inv.Transport())].WriteInvite(ictx, inv)
	if err != nil {
		return nil, fmt.Errorf("send invite: %w", err)
	}
	ring := time.AfterFunc(e.cfg.RingTimeout, func() { cancel(errRingTimeout) })
	defer ring.Stop()
	var user, pass string
	if t.trunk != nil {
		user, pass = t.trunk.Username, t.trunk.Password
	}
	var confirmed atomic.Pointer[peerDialog]
	err = bs.WaitAnswer(ictx, sipgo.AnswerOptions{Username: user, Password: pass, OnResponse: func(res *sip.Response) error {
		if res.IsSuccess() {
			d := newPeerDialog(bs.InviteRequest.CallID().Value(), fromTag(bs.InviteRequest.From()), toTag(res.To()), transportName(inv.Transport()), res.Source(), t.trunk)
			confirmed.Store(&d)
		}
		return nil
	}})
	if err != nil {
		_ = bs.Close()
		if cause := context.Cause(ictx); errors.Is(cause, errRingTimeout) {
			return nil, &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "Nobody answered in time."}
		}
		return nil, err
	}
	d := confirmed.Load()
	if d == nil {
		dd := newPeerDialog(bs.InviteRequest.CallID().Value(), fromTag(bs.InviteRequest.From()), toTag(bs.InviteResponse.To()), transportName(inv.Transport()), bs.InviteResponse.Source(), t.trunk)
		d = &dd
	}
	leg := calls.Leg{ID: bs.InviteRequest.CallID().Value(), Kind: calls.LegEndpoint, Participant: o.to}
	if t.trunk != nil {
		leg.Kind, leg.Trunk = calls.LegCarrier, t.trunk.Name
	}
	return &outLeg{dialog: bs, res: bs.InviteResponse, dlg: *d, leg: leg, trunk: t.trunk}, nil
}
