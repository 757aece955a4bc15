package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// outLeg is a leg telgw placed (as UAC) and that answered: its confirmed dialog and its media,
// a plain RTP leg (a PBX, a carrier) or a WebRTC leg (a user's device). Call transfers (REFER,
// transferToParticipant), redirects and an app's calls hand it to a call.
type outLeg struct {
	dialog *sipgo.DialogClientSession
	res    *sip.Response // the 2xx
	dlg    peerDialog    // what the peer's in-dialog requests must match
	udp    *bridge.UDPLeg
	web    *webrtc.Leg
	leg    calls.Leg // as the call domain records it
	trunk  *trunk    // the trunk whose slot the leg holds until release (nil: none)
	sent   []byte    // telgw's last description toward the peer (plain RTP legs)
	origin sdp.Origin
	ver    string // the peer's o= version
	dir    string // the peer's media direction
}

// media is the leg's media endpoint.
func (l *outLeg) media() calls.MediaLeg {
	if l.web != nil {
		return l.web
	}
	return l.udp
}

// drop hangs up an answered leg nobody will use (BYE, RFC 3261 §15.1.1) and frees it.
func (l *outLeg) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = l.dialog.Bye(ctx)
	cancel()
	_ = l.media().Close()
	l.release()
}

// release gives back the trunk slot the leg held.
func (l *outLeg) release() {
	if l.trunk != nil {
		l.trunk.release()
		l.trunk = nil
	}
}

// legError is why a leg could not be placed: the SIP final response (or the one telgw stands
// in for: 480 nobody answered, 503 no media ports) and a sentence for apps.
type legError struct {
	Code   int
	Reason string
	Msg    string
}

func (e *legError) Error() string { return fmt.Sprintf("%d %s: %s", e.Code, e.Reason, e.Msg) }

// legFailure is err as a legError (408 for transport failures).
func legFailure(err error) *legError {
	var le *legError
	if errors.As(err, &le) {
		return le
	}
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) {
		return &legError{Code: dr.Res.StatusCode, Reason: dr.Res.Reason, Msg: "The callee answered " + fmt.Sprint(dr.Res.StatusCode) + "."}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errCallerCancel) {
		return &legError{Code: 487, Reason: "Request Terminated", Msg: "The call was cancelled."}
	}
	return &legError{Code: 408, Reason: "Request Timeout", Msg: "The callee could not be reached."}
}

// userDial describes a call telgw places to a communication user's devices.
type userDial struct {
	// callID labels the WebRTC legs' log lines.
	callID string
	// from and display are the caller id (user part of From) and display name the user sees.
	from, display string
	// to is the To header's user part (the number or user id that was called).
	to string
	// codecs are the G.711 codecs (PCMU, PCMA) the other side of the bridge can take, in
	// preference order; pts their payload types there and dtmf its telephone-event type (0:
	// none).
	codecs []string
	pts    map[string]uint8
	dtmf   uint8
	// ringing, when set, is called once on the first 180 or 183 from a device.
	ringing func()
}

// DialUser rings every registered device of the communication user p (RFC 3261 §16.7 parallel
// search, done by the B2BUA): each gets an INVITE with a WebRTC offer over its WebSocket; the
// first 2xx wins and the others are cancelled (RFC 3261 §9.1). The leg it returns is answered
// and acknowledged, its media connected (or given connectWait; the leg's own connect timeout
// then decides) and set to the other side's RTP format (o.codecs, o.pts, o.dtmf). ctx ending
// cancels the ringing. Failures are *legError: 480 with no device registered or nobody
// answering within the ring timeout, 486/6xx as the devices answered, 503 when telgw cannot
// serve users or has no media.
//
// It is the one way user targets are dialled: redirectCall, createCall, transfers and REFER
// to a number routed to a user; add-participant code plugs in here.
func (e *callEnv) dialUser(ctx context.Context, p calls.Participant, o userDial) (*outLeg, error) {
	if p.Kind != calls.CommunicationUser || p.ID == "" {
		return nil, &legError{Code: 400, Reason: "Bad Request", Msg: "The target is not a communication user."}
	}
	u := e.users
	if u == nil || u.Engine == nil || u.Registrar == nil {
		return nil, &legError{Code: 503, Reason: "Service Unavailable", Msg: "WebRTC users are not served."}
	}
	if len(o.codecs) == 0 {
		o.codecs = []string{webrtc.PCMU, webrtc.PCMA}
	}
	log := e.log.With("call_id", o.callID, "user", p.ID)
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	contacts := u.Registrar.Live(lctx, p.ID)
	lcancel()
	if len(contacts) == 0 {
		if u.Notify != nil {
			go u.Notify(context.WithoutCancel(e.stop()), p.ID, o.callID, o.from, o.to)
		}
		return nil, &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "The user has no registered device."}
	}
	ctx, cancelAll := context.WithCancelCause(ctx)
	defer cancelAll(nil)
	stop := context.AfterFunc(e.stop(), func() { cancelAll(errors.New("telgw is stopping")) })
	defer stop()

	results := make(chan *branch, len(contacts))
	var ringOnce sync.Once
	var wg sync.WaitGroup
	started := 0
	for _, ct := range contacts {
		leg, offer, err := u.Engine.Offer(ctx, webrtc.LegOptions{CallID: o.callID, Codecs: o.codecs})
		if err != nil {
			log.Error("webrtc offer", "err", err)
			continue
		}
		b := &branch{contact: ct, leg: leg}
		inv := sip.NewRequest(sip.INVITE, ct.URI)
		inv.SetDestination(ct.Source)
		inv.SetTransport(strings.ToUpper(ct.Transport))
		from := sip.FromHeader{DisplayName: o.display, Address: sip.Uri{Scheme: "sip", User: o.from, Host: e.cfg.Host}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(16))
		inv.AppendHeader(&from)
		inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uriUser(o.to), Host: e.cfg.Host}, Params: sip.NewParams()})
		inv.AppendHeader(sip.NewHeader("Allow", allowed))
		inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody([]byte(offer))
		bctx, bcancel := context.WithCancelCause(ctx)
		b.cancel = bcancel
		dlg, err := e.dialogs["ws"].WriteInvite(bctx, inv)
		if err != nil {
			log.Info("device unreachable", "contact", ct.URI.String(), "err", err)
			u.Registrar.Location.Remove(ct)
			bcancel(nil)
			_ = leg.Close()
			continue
		}
		b.dialog = dlg
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.err = dlg.WaitAnswer(bctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if (res.StatusCode == 180 || res.StatusCode == 183) && o.ringing != nil {
					ringOnce.Do(o.ringing)
				}
				return nil
			}})
			if b.err == nil {
				b.res = dlg.InviteResponse
			}
			results <- b
		}()
	}
	if started == 0 {
		return nil, &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "No device of the user could be reached."}
	}
	defer func() {
		go func() {
			wg.Wait()
			close(results)
			for b := range results {
				b.release()
			}
		}()
	}()
	ring := time.NewTimer(e.cfg.RingTimeout)
	defer ring.Stop()
	fail := &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "Nobody answered."}
	var win *branch
	for pending := started; pending > 0 && win == nil; {
		select {
		case b := <-results:
			pending--
			if b.err == nil {
				win = b
				cancelAll(errAnsweredElsewhere)
				break
			}
			b.release()
			var dr *sipgo.ErrDialogResponse
			if errors.As(b.err, &dr) {
				switch {
				case dr.Res.StatusCode >= 600:
					fail = &legError{Code: dr.Res.StatusCode, Reason: dr.Res.Reason, Msg: "The user declined the call."}
				case dr.Res.StatusCode == 486 && fail.Code < 600:
					fail = &legError{Code: 486, Reason: dr.Res.Reason, Msg: "The user is busy."}
				}
			}
		case <-ctx.Done():
			return nil, &legError{Code: 487, Reason: "Request Terminated", Msg: "The call was cancelled."}
		case <-ring.C:
			cancelAll(errRingTimeout)
			return nil, &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "Nobody answered in time."}
		}
	}
	if win == nil {
		return nil, fail
	}
	// The winner's own goroutine is done; only losers go to the cleanup.
	out := &outLeg{dialog: win.dialog, res: win.res, web: win.leg,
		dlg: newPeerDialog(win.dialog.InviteRequest.CallID().Value(), fromTag(win.dialog.InviteRequest.From()), toTag(win.res.To()), "ws", win.res.Source(), nil),
		leg: calls.Leg{ID: win.dialog.InviteRequest.CallID().Value(), Kind: calls.LegWebRTC, Participant: p}}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 32*time.Second)
	defer acancel()
	if err := win.leg.SetAnswer(string(win.res.Body())); err != nil {
		log.Info("device answer not acceptable", "err", err)
		_ = win.dialog.Ack(actx)
		out.drop()
		return nil, &legError{Code: 488, Reason: "Not Acceptable Here", Msg: "The device's media is not acceptable."}
	}
	if err := win.dialog.Ack(actx); err != nil {
		log.Info("ack to device failed", "err", err)
	}
	// RFC 8842 §5: the DTLS handshake follows the answer; wait for it so the first words reach
	// the device, but no longer than connectWait.
	if err := waitConnected(win.leg, e.stop(), connectWait); err != nil {
		log.Info("device media failed", "err", err)
		out.drop()
		return nil, &legError{Code: 480, Reason: "Temporarily Unavailable", Msg: "The device's media did not connect."}
	}
	m := win.leg.Media()
	pt, ok := o.pts[m.Codec]
	if !ok {
		pt = m.PayloadType
	}
	win.leg.SetPeerMedia(webrtc.Media{Codec: m.Codec, PayloadType: pt, DTMFPayloadType: o.dtmf, Direction: webrtc.SendRecv})
	out.dir = string(m.Direction)
	return out, nil
}

// DialUser places a call to the communication user p for code outside the B2BUA's own call
// flows (add participant): telgw's caller id from (a number, or "" for the app) with display
// name, ringing the user's devices until ctx ends or the ring timeout. The leg it returns is
// answered; Close hangs it up.
func (s *Service) DialUser(ctx context.Context, p calls.Participant, from, display string) (*AnsweredLeg, error) {
	if from == "" {
		from = "telgw"
	}
	l, err := s.b2b.dialUser(ctx, p, userDial{callID: p.ID, from: from, display: display, to: p.ID,
		codecs: []string{webrtc.PCMU}, pts: map[string]uint8{webrtc.PCMU: 0}, dtmf: 101})
	if err != nil {
		return nil, err
	}
	return &AnsweredLeg{l: l}, nil
}

// AnsweredLeg is a leg DialUser placed: its media (PCMU, payload type 0, telephone-event 101
// toward the device) and its record in the call domain.
type AnsweredLeg struct{ l *outLeg }

// Media is the leg's media endpoint, to bridge or to play to.
func (a *AnsweredLeg) Media() calls.MediaLeg { return a.l.media() }

// Leg is the leg as the call domain records it.
func (a *AnsweredLeg) Leg() calls.Leg { return a.l.leg }

// Done is closed when the device's media ends (it hung up, or its media failed).
func (a *AnsweredLeg) Done() <-chan struct{} { return a.l.web.Done() }

// Close hangs the leg up (BYE) and frees its media.
func (a *AnsweredLeg) Close() { a.l.drop() }

// redirectUser sends a waiting caller (an app's incoming call, redirectCall) to the devices
// of user: they ring, the first to answer is bridged to the caller (its RTP on legA) and the
// caller gets the 200 with its own offer narrowed to the codec the device chose. It holds the
// call until it ends. When nobody answers the caller gets the failure (480, 486, …).
func (c *call) redirectUser(offer *sdp.Session, user calls.Participant) {
	s := c.env
	c.cc.SetTo(user.ID)
	codecs, pts, dtmf := g711(offer.Audio())
	if len(codecs) == 0 {
		_ = c.legA.Close()
		c.answerA(488, "Not Acceptable Here", nil)
		return
	}
	ctx, cancel := context.WithCancel(c.a.Context())
	defer cancel()
	l, err := s.dialUser(ctx, user, userDial{callID: c.id, from: c.cc.From(), display: c.a.InviteRequest.From().DisplayName, to: user.ID,
		codecs: codecs, pts: pts, dtmf: dtmf, ringing: func() { _ = c.a.Respond(180, "Ringing", nil) }})
	if err != nil {
		_ = c.legA.Close()
		le := legFailure(err)
		if le.Code == 487 {
			c.cc.SetEndedBy(calls.EndedByCaller)
			c.finish(487, nil)
			return
		}
		c.answerA(le.Code, le.Reason, nil)
		return
	}
	c.bot = false
	c.web, c.webSide = l.web, 1
	c.mu.Lock()
	c.b, c.bID, c.dlg[1] = l.dialog, l.leg.ID, l.dlg
	c.dir[1] = l.dir
	c.mu.Unlock()
	c.cc.SetCallee(l.leg)
	s.table.register(l.leg.ID, c, 1)
	c.br = s.media.Bridge(c.legA, l.web)
	defer c.br.Close()
	m := l.web.Media()
	keep := []string{m.Codec + "/8000"}
	if dtmf != 0 && m.HasDTMF() {
		keep = append(keep, "TELEPHONE-EVENT/8000")
	}
	ans, _ := sdp.Parse(offer.Marshal())
	if err := sdp.FilterOffer(ans, keep); err != nil {
		_ = l.dialog.Bye(context.Background())
		c.answerA(488, "Not Acceptable Here", nil)
		return
	}
	setDirection(ans, answerDirection(c.dir[0]))
	actx, acancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer acancel()
	if err := c.ok(c.anchored(ans, c.legA, 0)); err != nil {
		c.cancelled(actx, err)
		return
	}
	if !c.acked.Load() {
		c.noAck(actx)
		return
	}
	c.talk(l.res)
}

// originateUser places an app's call (createCall) to a communication user: the user's devices
// ring showing the caller id and display name the app set, the first to answer is connected
// to telgw's own media (holdBot: the app's prompts, recognitions, the participants it adds),
// and the app hears CallConnected, CreateCallFailed when nobody answers, CallDisconnected at
// the end.
func (s *b2bua) originateUser(c *call, conn *calls.Connection, user calls.Participant) {
	ctx, cancel := context.WithCancel(s.stop())
	defer cancel()
	go func() {
		select {
		case <-conn.HangupRequested():
			cancel()
		case <-ctx.Done():
		}
	}()
	from := c.cc.From()
	if from == "" {
		from = "telgw"
	}
	l, err := s.dialUser(ctx, user, userDial{callID: c.id, from: from, display: conn.DisplayName, to: user.ID,
		codecs: []string{webrtc.PCMU}, pts: map[string]uint8{webrtc.PCMU: 0}, dtmf: 101,
		ringing: func() { c.cc.Ring(time.Now()) }})
	if err != nil {
		le := legFailure(err)
		conn.Failed(calls.ResultInformation{Code: le.Code, Message: le.Msg})
		c.finish(le.Code, nil)
		return
	}
	c.web, c.webSide = l.web, 1
	c.mu.Lock()
	c.b, c.bID, c.dlg[1] = l.dialog, l.leg.ID, l.dlg
	c.mu.Unlock()
	c.cc.SetCallee(l.leg)
	s.table.register(l.leg.ID, c, 1)
	defer s.table.unregister(l.leg.ID)
	defer func() { _ = l.web.Close() }()
	c.cc.Answer(time.Now())
	c.answered.Store(true)
	// The device's media ending (it went away without a BYE) ends the call as its BYE would.
	go func() {
		select {
		case <-l.web.Done():
			c.end(calls.EndedByMediaTimeout)
		case <-c.ended:
		}
	}()
	// A bot call like any other: the app's media toward her, the participants it adds.
	ri := c.holdBot(conn, user, l.web, 1, calls.EndedByCaller)
	c.cc.SetEndedBy(c.endedBy)
	conn.Disconnected(ri)
	c.finish(200, nil)
}

// uriUser escapes s for the user part of a SIP URI (RFC 3261 §25.1: a user id such as
// 8:acs:… has colons, which would read as user:password).
func uriUser(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
