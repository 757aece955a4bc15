package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Users is what the Service needs to serve WebRTC users (browsers and apps holding an ACS user
// access token with the voip scope): the registrar with its authenticator and location service,
// the WebRTC media engine, and the user's number.
type Users struct {
	// Registrar authenticates users' requests (Bearer token or digest with the token as
	// password) and keeps their devices' bindings.
	Registrar *registrar.Registrar
	// Engine creates the WebRTC media legs (ICE, DTLS-SRTP) bridged to the carriers' RTP.
	Engine *webrtc.Engine
	// Number returns the E.164 number assigned to user, the caller ID of its calls out; an
	// error (none assigned) refuses the call with 403.
	Number func(ctx context.Context, user string) (string, error)
	// Notify, when set, wakes user's devices (push notification) for a call that found none
	// registered. It runs in its own goroutine.
	Notify func(ctx context.Context, user, callID, from, to string)
	// Peers, when set, makes this node one of a cluster: calls fork to the user's devices on
	// other nodes too, and other nodes' calls for devices here are accepted (peernode.go).
	Peers *Peers
}

// userSide serves WebRTC users (Deps.Users): their REGISTER, calls routed to a user (forked to
// every registered device) and calls out from a device, each leg a WebRTC leg bridged to RTP.
type userSide struct {
	*callEnv
	ws wsConns // users' WebSocket connections (drain.go)
}

// onRegister hands REGISTER to the registrar (RFC 3261 §10.3) when WebRTC users are served.
func (s *userSide) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if s.users == nil || s.users.Registrar == nil {
		onUnknownMethod(req, tx)
		return
	}
	if check(req, tx) {
		return
	}
	s.users.Registrar.OnRegister(req, tx)
}

// dropBindingsOnClose wraps the WebSocket listener so that the bindings a connection carried
// are removed when it closes: a WebSocket Contact is reachable only over the connection that
// registered it (RFC 7118 §5), so calls must not fork to it any more.
func (s *userSide) dropBindingsOnClose(l net.Listener) net.Listener {
	if s.users == nil || s.users.Registrar == nil || s.users.Registrar.Location == nil {
		return l
	}
	return &bindingListener{Listener: l, loc: s.users.Registrar.Location, ws: &s.ws}
}

type bindingListener struct {
	net.Listener
	loc *registrar.Location
	ws  *wsConns
}

func (l *bindingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	bc := &bindingConn{Conn: c, loc: l.loc, ws: l.ws}
	l.ws.add(bc)
	return bc, nil
}

// bindingConn removes its bindings from the location service when closed (by the peer, an
// error, or telgw).
type bindingConn struct {
	net.Conn
	loc  *registrar.Location
	ws   *wsConns
	once sync.Once
}

func (c *bindingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.ws.remove(c)
		c.loc.RemoveSource(c.RemoteAddr().String())
	})
	return err
}

// Unwrap returns the accepted connection (e.g. one whose Unwrap leads to a *tls.Conn).
func (c *bindingConn) Unwrap() net.Conn { return c.Conn }

// fromUser reports whether req is a WebRTC user's: it came over SIP over WebSocket (WS or WSS,
// RFC 7118), which carriers never use, and users are served.
func (s *userSide) fromUser(req *sip.Request) bool {
	return transportOf(req) == "ws" && s.users != nil
}

// g711 returns the G.711 codecs of a filtered carrier offer in its preference order, and the
// offer's payload type numbering of each and of telephone-event.
func g711(m *sdp.Media) (names []string, pts map[string]uint8, dtmf uint8) {
	pts = map[string]uint8{}
	for _, c := range m.Codecs() {
		switch c.Name {
		case webrtc.PCMU, webrtc.PCMA:
			if c.Rate == 8000 {
				if _, dup := pts[c.Name]; !dup {
					names = append(names, c.Name)
					pts[c.Name] = c.PT
				}
			}
		case "TELEPHONE-EVENT":
			if c.Rate == 8000 && dtmf == 0 {
				dtmf = c.PT
			}
		}
	}
	return names, pts, dtmf
}

// branch is one forked INVITE to a user's device, or to another node holding devices of the
// user (peer set; its media is plain RTP on udp, peernode.go).
type branch struct {
	contact registrar.Contact
	leg     *webrtc.Leg
	dialog  *sipgo.DialogClientSession
	cancel  context.CancelCauseFunc
	res     *sip.Response
	err     error

	peer   *PeerNode
	udp    *bridge.UDPLeg
	body   []byte     // the offer sent to peer
	origin sdp.Origin // its o= line
}

var errAnsweredElsewhere = errors.New("answered elsewhere")

// connectWait bounds how long an answered call to a WebRTC user waits for the device's media
// to connect before the carrier gets its 200.
const connectWait = 3 * time.Second

// waitConnected waits for leg's EventConnected: nil when connected or after max (the leg's own
// connect timeout then decides), the failure when the leg failed, errCallerCancel when the
// caller went away.
func waitConnected(leg *webrtc.Leg, caller context.Context, max time.Duration) error {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case ev := <-leg.Events():
		if ev.Kind == webrtc.EventFailed {
			return ev.Err
		}
		return nil
	case <-t.C:
		return nil
	case <-caller.Done():
		return errCallerCancel
	}
}

// inbound forks a carrier's call to every registered device of user (RFC 3261 §16.7
// parallel search, done by the B2BUA): each device gets its own INVITE with a WebRTC offer over
// its WebSocket; the first 2xx wins and the others are cancelled (RFC 3261 §9.1). No device
// registered: 480 and a push notification.
func (s *userSide) inbound(c *call, req *sip.Request, tx sip.ServerTransaction, user string) {
	log := s.log.With("call_id", c.id, "number", c.cc.To(), "user", user)
	u := s.users
	if u == nil || u.Engine == nil || u.Registrar == nil {
		log.Info("call routed to a user, but WebRTC users are not served")
		c.reject(req, tx, 480, "Temporarily Unavailable", nil)
		return
	}
	lctx, lcancel := context.WithTimeout(s.stop(), 5*time.Second)
	contacts := u.Registrar.Live(lctx, user) // bindings of revoked tokens or deleted users go
	c.peers = s.peerHolders(lctx, c, user)   // other nodes holding devices of user (cluster)
	lcancel()
	if len(contacts) == 0 && len(c.peers) == 0 {
		log.Info("user has no registered device")
		if u.Notify != nil {
			go u.Notify(context.WithoutCancel(s.stop()), user, c.id, c.cc.From(), c.cc.To())
		}
		c.reject(req, tx, 480, "Temporarily Unavailable", nil, sip.NewHeader("Warning", `399 telgw "no device registered"`))
		return
	}
	if len(req.Body()) == 0 {
		// A late offer would need telgw to offer the carrier before any device answered.
		c.reject(req, tx, 488, "Not Acceptable Here", nil, sip.NewHeader("Warning", `399 telgw "an SDP offer is required for calls to WebRTC users"`))
		return
	}
	done, ok := c.admit(req, tx)
	if !ok {
		return
	}
	defer done()

	offer, err := s.parseOffer(req.Body())
	var codecs []string
	var pts map[string]uint8
	var dtmf uint8
	if err == nil {
		if codecs, pts, dtmf = g711(offer.Audio()); len(codecs) == 0 {
			err = errors.New("no G.711 codec offered")
		}
	}
	if err != nil {
		log.Info("offer not acceptable", "err", err)
		c.answerA(488, "Not Acceptable Here", nil)
		return
	}
	c.lastVer[0], c.dir[0] = offer.Origin[2], offer.Direction(offer.Audio())
	if c.legA, err = s.relay.NewUDPLeg(); err != nil {
		log.Error("no media ports", "err", err)
		c.answerA(503, "Service Unavailable", nil)
		return
	}
	c.legA.SetRemote(offer.Addr(offer.Audio()))
	c.peerOffer, c.peerUser = offer, user

	win, code, reason := c.fork(req, contacts, codecs)
	if win == nil {
		_ = c.legA.Close()
		if code == 487 {
			c.finish(487, nil)
			return
		}
		c.answerA(code, reason, nil)
		return
	}
	if win.peer != nil {
		s.peerAnswered(c, win, offer, user)
		return
	}
	c.web, c.webSide = win.leg, 1
	c.mu.Lock()
	c.b, c.bID = win.dialog, win.dialog.InviteRequest.CallID().Value()
	c.dlg[1] = newPeerDialog(c.bID, fromTag(win.dialog.InviteRequest.From()), toTag(win.res.To()), "ws", win.res.Source(), nil)
	c.mu.Unlock()
	c.cc.SetCallee(calls.Leg{ID: c.bID, Kind: calls.LegWebRTC, Participant: calls.User(user)})
	s.table.register(c.bID, c, 1)
	c.br = s.media.Bridge(c.legA, win.leg)
	defer c.br.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	if err := win.leg.SetAnswer(string(win.res.Body())); err != nil {
		log.Info("device answer not acceptable", "err", err)
		_ = win.dialog.Ack(ctx)
		_ = win.dialog.Bye(ctx)
		c.answerA(488, "Not Acceptable Here", nil)
		return
	}
	if err := win.dialog.Ack(ctx); err != nil {
		log.Info("ack to device failed", "err", err)
	}
	// Answer the carrier once ICE and DTLS are up (RFC 8842 §5: the DTLS handshake follows the
	// answer), so the first words of the call reach the device; a slow connection does not hold
	// the answer longer than connectWait.
	switch err := waitConnected(win.leg, c.a.Context(), connectWait); {
	case errors.Is(err, errCallerCancel):
		_ = win.dialog.Bye(ctx)
		c.cc.SetEndedBy(calls.EndedByCaller)
		c.finish(487, nil)
		return
	case err != nil:
		log.Info("device media failed", "err", err)
		_ = win.dialog.Bye(ctx)
		c.answerA(480, "Temporarily Unavailable", nil)
		return
	}
	select {
	case <-c.ended: // the device hung up (BYE) before the carrier got its answer
		c.answerA(480, "Temporarily Unavailable", nil)
		return
	default:
	}
	m := win.leg.Media()
	win.leg.SetPeerMedia(webrtc.Media{Codec: m.Codec, PayloadType: pts[m.Codec], DTMFPayloadType: dtmf, Direction: webrtc.SendRecv})
	c.dir[1] = string(m.Direction)
	// The carrier's answer: its own offer narrowed to the codec the device chose (and
	// telephone-event), anchored on legA.
	keep := []string{m.Codec + "/8000"}
	if dtmf != 0 && m.HasDTMF() {
		keep = append(keep, "TELEPHONE-EVENT/8000")
	}
	ans, _ := sdp.Parse(offer.Marshal())
	if err := sdp.FilterOffer(ans, keep); err != nil {
		_ = win.dialog.Bye(ctx)
		c.answerA(488, "Not Acceptable Here", nil)
		return
	}
	setDirection(ans, answerDirection(c.dir[0]))
	if err := c.ok(c.anchored(ans, c.legA, 0)); err != nil {
		c.cancelled(ctx, err)
		return
	}
	if !c.acked.Load() {
		c.noAck(ctx)
		return
	}
	c.talk(win.res)
}

// fork sends the INVITEs and waits for the first 2xx. Without one it returns the final code
// for the caller (487 when the caller cancelled).
func (c *call) fork(req *sip.Request, contacts []registrar.Contact, codecs []string) (*branch, int, string) {
	s := c.env
	u := s.users
	log := s.log.With("call_id", c.id)
	ctx, cancelAll := context.WithCancelCause(s.stop())
	defer cancelAll(nil)
	results := make(chan *branch, len(contacts)+len(c.peers))
	var ringOnce sync.Once
	var wg sync.WaitGroup
	started, offerFailed := 0, false
	wait := func(b *branch, bctx context.Context) {
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.err = b.dialog.WaitAnswer(bctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if res.StatusCode == 180 || res.StatusCode == 183 {
					ringOnce.Do(func() {
						c.cc.Ring(time.Now())
						c.observeSetup()
						_ = c.a.Respond(180, "Ringing", nil)
					})
				}
				return nil
			}})
			if b.err == nil {
				b.res = b.dialog.InviteResponse
			}
			results <- b
		}()
	}
	for _, ct := range contacts {
		leg, offer, err := u.Engine.Offer(ctx, webrtc.LegOptions{CallID: c.id, Codecs: codecs})
		if err != nil {
			log.Error("webrtc offer", "err", err)
			offerFailed = true
			continue
		}
		b := &branch{contact: ct, leg: leg}
		inv := sip.NewRequest(sip.INVITE, ct.URI)
		inv.SetDestination(ct.Source)
		inv.SetTransport(strings.ToUpper(ct.Transport))
		from := sip.FromHeader{DisplayName: req.From().DisplayName, Address: sip.Uri{Scheme: "sip", User: c.cc.From(), Host: s.cfg.Host}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(16))
		inv.AppendHeader(&from)
		inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.cc.To(), Host: s.cfg.Host}, Params: sip.NewParams()})
		inv.AppendHeader(sip.NewHeader("Allow", allowed))
		inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody([]byte(offer))
		c.decorate(inv, target{}) // the caller's verstat on From (fraud.go)
		bctx, bcancel := context.WithCancelCause(ctx)
		b.cancel = bcancel
		dlg, err := s.dialogs["ws"].WriteInvite(bctx, inv)
		if err != nil {
			// The device's connection is gone: forget its binding.
			log.Info("device unreachable", "contact", ct.URI.String(), "err", err)
			u.Registrar.Location.Remove(ct)
			bcancel(nil)
			_ = leg.Close()
			continue
		}
		b.dialog = dlg
		wait(b, bctx)
	}
	// The user's devices on other nodes: one INVITE per node, which forks it to its own.
	for _, n := range c.peers {
		b, bctx, err := c.invitePeer(ctx, req, n, c.peerUser)
		if err != nil {
			log.Info("node unreachable", "node", n.ID, "addr", n.Addr, "err", err)
			continue
		}
		wait(b, bctx)
	}
	if started == 0 {
		if offerFailed {
			return nil, 503, "Service Unavailable" // telgw's fault, not the user's
		}
		return nil, 480, "Temporarily Unavailable"
	}
	// Losers are cleaned up in the background: a branch whose 2xx crossed the winner's gets ACK
	// and BYE (RFC 3261 §13.2.2.4), the others' legs are closed.
	defer func() {
		go func() {
			wg.Wait()
			close(results)
			for b := range results {
				b.release()
			}
		}()
	}()
	ring := time.NewTimer(s.cfg.RingTimeout)
	defer ring.Stop()
	code, reason := 480, "Temporarily Unavailable"
	for pending := started; pending > 0; {
		select {
		case b := <-results:
			pending--
			if b.err == nil {
				cancelAll(errAnsweredElsewhere)
				return b, 200, "OK"
			}
			b.release()
			var dr *sipgo.ErrDialogResponse
			if errors.As(b.err, &dr) {
				switch {
				case dr.Res.StatusCode >= 600:
					code, reason = dr.Res.StatusCode, dr.Res.Reason
				case dr.Res.StatusCode == 486 && code < 600:
					code, reason = 486, dr.Res.Reason
				}
			}
		case <-c.a.Context().Done():
			cancelAll(errCallerCancel)
			return nil, 487, "Request Terminated"
		case <-ring.C:
			cancelAll(errRingTimeout)
			return nil, 480, "Temporarily Unavailable"
		}
	}
	return nil, code, reason
}

// release frees a branch that did not win: a crossed 2xx is acknowledged and hung up.
func (b *branch) release() {
	if b.err == nil && b.dialog != nil && b.res != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = b.dialog.Ack(ctx)
		_ = b.dialog.Bye(ctx)
		cancel()
	}
	if b.dialog != nil {
		_ = b.dialog.Close()
	}
	b.closeMedia()
}

// outbound places a WebRTC user's call out through the trunks: the user is authenticated
// by its token, its assigned number is the caller ID, and telgw answers its offer at once with
// a 183 (early media: the carrier's ringback reaches the browser) and the same answer in the
// 2xx once the carrier answers.
func (s *userSide) outbound(c *call, req *sip.Request, tx sip.ServerTransaction) {
	u := s.users
	log := s.log.With("call_id", c.id)
	ctx, cancel := context.WithTimeout(s.stop(), 5*time.Second)
	claims, err := u.Registrar.Auth.Authenticate(ctx, req)
	cancel()
	if err != nil {
		res := u.Registrar.Auth.Reject(req, err)
		_ = tx.Respond(res)
		if !errors.Is(err, registrar.ErrChallenge) {
			log.Info("webrtc call not authenticated", "err", err)
			c.finish(res.StatusCode, nil)
		}
		return
	}
	user := claims.Identity
	c.cc.UpdateCaller(func(l *calls.Leg) { l.Participant = calls.User(user) })
	log = log.With("user", user)
	ctx, cancel = context.WithTimeout(s.stop(), 5*time.Second)
	from, err := u.Number(ctx, user)
	cancel()
	emergency := s.fraud.emergencyDialed(req)
	if err != nil && emergency {
		from, err = s.fraud.emergency.CallbackNumber, nil // 911 needs no number of one's own
	}
	if err != nil {
		log.Info("user has no number", "err", err)
		c.reject(req, tx, 403, "Forbidden", nil, sip.NewHeader("Warning", `399 telgw "no phone number is assigned to you"`))
		return
	}
	c.cc.SetFrom(from)
	c.fraud.subject = policy.Subject{User: user, Number: from}
	called, trunks, ok := c.routeOut(req, tx)
	if !ok {
		return
	}
	if len(req.Body()) == 0 {
		c.reject(req, tx, 488, "Not Acceptable Here", nil, sip.NewHeader("Warning", `399 telgw "an SDP offer is required"`))
		return
	}
	done, ok := c.admit(req, tx)
	if !ok {
		return
	}
	defer done()

	actx, acancel := context.WithTimeout(s.stop(), 10*time.Second)
	leg, answer, err := u.Engine.Answer(actx, string(req.Body()), webrtc.LegOptions{CallID: c.id, Codecs: s.g711Prefs()})
	acancel()
	if err != nil {
		log.Info("webrtc offer not acceptable", "err", err)
		if errors.Is(err, webrtc.ErrNotAcceptable) {
			c.answerA(488, "Not Acceptable Here", nil)
		} else {
			c.answerA(500, "Server Internal Error", nil)
		}
		return
	}
	m := leg.Media()
	c.web, c.webSide, c.webAnswer = leg, 0, []byte(answer)
	c.dir[0] = string(m.Direction)
	if c.legB, err = s.relay.NewUDPLeg(); err != nil {
		_ = leg.Close()
		log.Error("no media ports", "err", err)
		c.answerA(503, "Service Unavailable", nil)
		return
	}
	c.br = s.media.Bridge(leg, c.legB)
	defer c.br.Close()
	// The carrier's offer: the codec the browser chose, and telephone-event if it offered it.
	var dtmf uint8
	if m.HasDTMF() {
		dtmf = 101
	}
	leg.SetPeerMedia(webrtc.Media{Codec: m.Codec, PayloadType: m.PayloadType, DTMFPayloadType: dtmf, Direction: webrtc.SendRecv})
	offer, err := sdp.Parse(plainOffer(m.Codec, m.PayloadType, dtmf))
	if err != nil {
		c.answerA(500, "Server Internal Error", nil)
		return
	}
	_ = c.a.Respond(183, "Session Progress", c.webAnswer, sip.NewHeader("Content-Type", "application/sdp"))
	c.dial(req, trunkTargets(trunks, called, from), offer)
}

// g711Prefs is the G.711 codec order of Config.Codecs, for the WebRTC legs.
func (s *userSide) g711Prefs() []string {
	var out []string
	for _, k := range s.cfg.Codecs {
		name, _, _ := strings.Cut(strings.ToUpper(k), "/")
		if name == webrtc.PCMU || name == webrtc.PCMA {
			out = append(out, name)
		}
	}
	return out
}

// plainOffer is an RTP/AVP offer (RFC 3264 §5) of one G.711 codec and telephone-event (RFC 4733
// §7.1.1) when dtmf is set; Anchor fills in telgw's address and port.
func plainOffer(codec string, pt, dtmf uint8) []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=telgw 0 0 IN IP4 0.0.0.0\r\ns=telgw\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n")
	if dtmf != 0 {
		fmt.Fprintf(&b, "m=audio 9 RTP/AVP %d %d\r\na=rtpmap:%d %s/8000\r\na=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", pt, dtmf, pt, codec, dtmf, dtmf)
	} else {
		fmt.Fprintf(&b, "m=audio 9 RTP/AVP %d\r\na=rtpmap:%d %s/8000\r\n", pt, pt, codec)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}

// answerDirection is what telgw answers to an offer with direction d (RFC 3264 §6.1).
func answerDirection(d string) string {
	switch d {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// setDirection replaces the audio section's direction attribute (RFC 3264 §5.1).
func setDirection(s *sdp.Session, dir string) {
	m := s.Audio()
	if m == nil {
		return
	}
	out := m.Lines[:0]
	for _, l := range m.Lines {
		switch l {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
			continue
		}
		out = append(out, l)
	}
	m.Lines = append(out, "a="+dir)
	kept := s.Lines[:0]
	for _, l := range s.Lines {
		switch l {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
			continue
		}
		kept = append(kept, l)
	}
	s.Lines = kept
}

// webReinvite answers a re-INVITE on a call with a WebRTC leg without relaying it: the browser's
// (hold, unhold, ICE restart) is answered by its WebRTC leg, the carrier's (hold, a new media
// address, a session refresh) by telgw with its last description in the matching direction.
// Media direction changes reach the bridge's media timeout either way.
func (c *call) webReinvite(req *sip.Request, tx sip.ServerTransaction, side int) {
	s := c.env
	reply := func(body []byte) { s.answerReinvite(req, tx, body) }
	if side == c.webSide {
		if len(req.Body()) == 0 {
			respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 telgw "re-INVITE without offer is not supported on WebRTC legs"`))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ans, err := c.web.Reanswer(ctx, string(req.Body()))
		if err != nil {
			respond(tx, req, 488, "Not Acceptable Here")
			return
		}
		c.mu.Lock()
		c.dir[side] = string(c.web.Media().Direction)
		c.mu.Unlock()
		c.updateSending()
		reply([]byte(ans))
		return
	}
	if len(req.Body()) == 0 {
		reply(c.lastSent(side))
		return
	}
	off, err := s.parseOffer(req.Body())
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	c.legFor(side).SetRemote(off.Addr(off.Audio()))
	last, err := sdp.Parse(c.lastSent(side))
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	dir := off.Direction(off.Audio())
	setDirection(last, answerDirection(dir))
	c.mu.Lock()
	c.lastVer[side], c.dir[side] = off.Origin[2], dir
	c.mu.Unlock()
	c.updateSending()
	reply(c.anchored(last, c.legFor(side), side))
}
