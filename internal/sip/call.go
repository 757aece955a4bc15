package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/sip/digest"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// call is one B2BUA call: the caller's dialog (a, telgw as UAS) and the callee's (b, telgw as
// UAC), independent dialogs with their own Call-IDs, tags and CSeqs (RFC 7092 §3.1), and the
// media bridge between legA (facing the caller) and legB (facing the callee).
type call struct {
	env   *callEnv
	id    string
	cc    *calls.Call // the call as the call domain sees it: legs, route, timeline, its CDR
	trunk *trunk      // the trunk holding a slot for this call (outbound), released at the end

	a          *sipgo.DialogServerSession
	legA, legB *bridge.UDPLeg
	br         calls.MediaBridge

	// web is the WebRTC leg of a call to or from a WebRTC user (users.go); it stands in for
	// legA (webSide 0, the user called out) or legB (webSide 1, the user was called), and
	// webAnswer is telgw's SDP answer to the user's offer.
	web       *webrtc.Leg
	webSide   int
	webAnswer []byte

	// bot is set for a call an app controls (Call Automation, bot.go): its media ends at
	// telgw, there is no callee dialog (b is nil).
	bot bool

	// Cluster (peernode.go): fromPeer marks a call another node sent here for its user's
	// devices (that node writes the CDR); peers are the other nodes a call to a user forks
	// to, with the carrier's offer and the user.
	fromPeer  bool
	peers     []PeerNode
	peerOffer *sdp.Session
	peerUser  string

	mu     sync.Mutex // guards b, bID, dlg, last*, ackBody
	b      *sipgo.DialogClientSession
	bID    string
	lastTo [2][]byte // last SDP sent toward each side
	// answerB is the callee's answer to telgw's offer (acceptAnswer): the payload types it
	// receives (RFC 3264 §6.1), what telgw's own media toward it must send (botmedia.go).
	answerB []byte
	lastVer [2]string // o= version last received from each side
	dir     [2]string // media direction each side last declared
	ackBody chan []byte
	origin  [2]sdp.Origin
	// dlg is each leg's dialog, which in-dialog requests must match (dialog.go); guarded by mu.
	// dlg[2] is the dialog of a party that left by a transfer (refer.go), until its BYE.
	// dlg[groupSide] is the second leg of an app's group call (group.go).
	dlg [4]peerDialog
	// gone is that party's dialog; moved is closed when a transfer changed a leg (talk then
	// watches the new one). Both guarded by mu.
	gone  legDialog                  // the transferor's dialog
	aOut  *sipgo.DialogClientSession // the caller's side after a transfer replaced the caller
	moved chan struct{}
	group *outLeg // the second leg of a group call (group.go)
	// predials are the other targets of an app's call to three or more, rung with the first
	// (conference_ring.go); guarded by mu.
	predials *predials

	transferring atomic.Bool // a REFER is being carried out (one at a time)

	reinvite sync.Mutex  // one re-INVITE at a time (RFC 3261 §14.2: else 491)
	answered atomic.Bool // set once both legs are up (in-dialog requests read it)
	acked    atomic.Bool // the caller's ACK for the 2xx arrived
	ended    chan struct{}
	endOnce  sync.Once
	endedBy  string
	setupObs sync.Once

	fraud callFraud // policy admission, emergency, STIR/SHAKEN (fraud.go)
}

// target is one place to send the callee leg's INVITE.
type target struct {
	uri      sip.Uri
	fromUser string
	// toUser, when set, is the To header's user part (the number the caller dialled, so a PBX
	// serving several numbers on one route URI tells them apart; RFC 3261 §8.1.1.2).
	toUser string
	trunk  *trunk
}

var (
	errCallerCancel = errors.New("caller cancelled")
	errRingTimeout  = errors.New("ring timeout")
	errNoProgress   = errors.New("no response from trunk")
)

// b2bua turns new INVITEs into calls: from a carrier trunk to one of telgw's numbers (routed
// by the Router to a SIP URI or a WebRTC user), from a customer's endpoint (digest credentials)
// or a WebRTC user out through the trunks.
type b2bua struct {
	*callEnv
	router              Router      // calls.Router; also read by REFER (refer.go)
	creds               Credentials // nil: no customer endpoint can call out
	auth                *digest.Server
	rejectUnknownSource bool
	users               *userSide
}

// onInvite dispatches an INVITE: a re-INVITE to its dialog, a new one to the B2BUA.
func (s *Service) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.dlg.onReInvite(req, tx)
		return
	}
	s.b2b.onInvite(req, tx)
}

func (s *b2bua) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if check(req, tx) {
		return
	}
	// RFC 3261 §17.2.1: answer 100 at once so the caller's INVITE timers stop retransmitting.
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	if !s.table.begin() {
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	defer s.table.done()

	c := &call{env: s.callEnv, id: callID(req), ended: make(chan struct{}), ackBody: make(chan []byte, 1)}
	from := req.From().Address.User
	if n, err := e164.Normalize(from); err == nil {
		from = n
	}
	caller := calls.Leg{ID: c.id, Kind: calls.LegEndpoint, Participant: calls.Phone(from)}
	c.origin[0].ID, c.origin[1].ID = uint64(time.Now().UnixNano()), uint64(time.Now().UnixNano()+1)
	// A node of this cluster sending a call for a user's devices here (peernode.go): signed,
	// or refused.
	if fromPeerNode(req) {
		caller.Kind = calls.LegEndpoint
		s.users.peerInbound(c, req, tx, caller)
		return
	}
	// A WebSocket is never a trunk (RFC 7118 carries users' devices): whatever its source
	// address (a reverse proxy or a Kamailio on a trunk's host), it authenticates as a user.
	if s.users.fromUser(req) {
		caller.Kind = calls.LegWebRTC
		c.cc = calls.NewCall(time.Now(), caller)
		c.cc.SetFrom(from)
		c.cc.SetDirection(Outbound)
		s.users.outbound(c, req, tx)
		return
	}
	if t := s.trunks.of(req); t != nil {
		caller.Kind, caller.Trunk = calls.LegCarrier, t.Name
		c.cc = calls.NewCall(time.Now(), caller)
		c.cc.SetFrom(from)
		c.cc.SetDirection(Inbound)
		c.cc.SetTrunk(t.Name)
		s.inbound(c, req, tx, t)
		return
	}
	c.cc = calls.NewCall(time.Now(), caller)
	c.cc.SetFrom(from)
	c.cc.SetDirection(Outbound)
	s.outbound(c, req, tx)
}

// reject answers the caller's INVITE with a final response and records the call.
func (c *call) reject(req *sip.Request, tx sip.ServerTransaction, code int, reason string, res *sip.Response, hdrs ...sip.Header) {
	respond(tx, req, code, reason, hdrs...)
	c.finish(code, res)
}

func (s *b2bua) inbound(c *call, req *sip.Request, tx sip.ServerTransaction, t *trunk) {
	log := s.log.With("call_id", c.id, "trunk", t.Name)
	if t.InboundPassword != "" && !s.authorize(c, req, tx, Credential{Username: t.InboundUsername, Password: t.InboundPassword}) {
		return
	}
	if !t.acquire() {
		log.Info("trunk at capacity", "active", t.active.Load())
		c.reject(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	defer t.release()
	user := req.Recipient.User
	if user == "" {
		user = req.To().Address.User
	}
	e164, err := e164.Normalize(user)
	if err != nil {
		c.cc.SetTo(user)
		code, reason := Status(err)
		c.reject(req, tx, code, reason, nil)
		return
	}
	c.cc.SetTo(e164)
	c.verifyInbound(req, e164)
	ctx, cancel := context.WithTimeout(s.stop(), 5*time.Second)
	route, err := s.router.CallRoute(ctx, e164)
	cancel()
	if err == nil && route == nil && s.bots.OffersUnrouted() {
		route = calls.BotRoute{} // calls.incomingCallEvents: the apps hear of it (bot.go)
	}
	if err == nil && route == nil {
		err = calls.ErrNoRoute
	}
	if err != nil {
		code, reason := Status(err)
		log.Info("inbound call not routed", "number", e164, "code", code, "err", err)
		c.reject(req, tx, code, reason, nil)
		return
	}
	c.cc.SetRoute(route)
	var targets []target
	switch r := route.(type) {
	case UserRoute:
		s.users.inbound(c, req, tx, r.User)
		return
	case calls.BotRoute:
		s.bot(c, req, tx, r)
		return
	case SIPRoute:
		var u sip.Uri
		if err := sip.ParseUri(r.URI, &u); err != nil {
			log.Error("bad route uri", "number", e164, "err", err)
			c.reject(req, tx, 500, "Server Internal Error", nil)
			return
		}
		if u.User == "" {
			u.User = e164 // sip:pbx.example.com routes by the dialled number
		}
		targets = append(targets, target{uri: u, fromUser: c.cc.From(), toUser: e164})
	default:
		c.reject(req, tx, 480, "Temporarily Unavailable", nil)
		return
	}
	c.run(req, tx, targets)
}

// authorize checks digest credentials (RFC 3261 §22.3, proxy-style 407 since telgw routes the
// call on); it answers 407 (challenge) or 403 itself and returns false when the request may not
// go on.
func (s *b2bua) authorize(c *call, req *sip.Request, tx sip.ServerTransaction, cred Credential) bool {
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		h = req.GetHeader("Authorization")
	}
	var err error = digest.ErrMissing
	if h != nil {
		switch {
		case digest.Username(h.Value()) != cred.Username:
			err = digest.ErrMismatch
		case cred.Password != "":
			err = s.auth.Verify(h.Value(), string(req.Method), req.Recipient, cred.Password)
		default:
			err = s.auth.VerifyHA1(h.Value(), string(req.Method), req.Recipient, func(alg string) string {
				if alg == "SHA-256" {
					return cred.HA1SHA256
				}
				return cred.HA1MD5
			})
		}
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, digest.ErrMissing), errors.Is(err, digest.ErrStale):
		// Stale covers a replayed (nonce, nc): the replayer gets a challenge it cannot answer.
		tx.Respond(challenge(req, s.auth.Challenge("", errors.Is(err, digest.ErrStale))))
		// A challenge is not a call; no CDR.
	case errors.Is(err, digest.ErrURI):
		s.log.Info("digest-uri is not the Request-URI", "call_id", c.id, "src", req.Source())
		c.reject(req, tx, 403, "Forbidden", nil, sip.NewHeader("Warning", `399 telgw "credentials are for another Request-URI"`))
	default:
		c.reject(req, tx, 403, "Forbidden", nil)
	}
	return false
}

func challenge(req *sip.Request, value string) *sip.Response {
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", value))
	return res
}

func (s *b2bua) outbound(c *call, req *sip.Request, tx sip.ServerTransaction) {
	log := s.log.With("call_id", c.id)
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		h = req.GetHeader("Authorization")
	}
	if h == nil {
		// Not a trunk and no credentials: a call to one of telgw's numbers from an unknown
		// source is refused (403, or dropped), anything else is challenged.
		if s.creds == nil || s.ownNumber(req.Recipient.User) {
			log.Info("call from unknown source", "src", req.Source())
			if s.rejectUnknownSource {
				c.reject(req, tx, 403, "Forbidden", nil)
			} else {
				s.m.dropped.WithLabelValues("unknown-source").Inc()
			}
			return
		}
		tx.Respond(challenge(req, s.auth.Challenge("", false)))
		return
	}
	ctx, cancel := context.WithTimeout(s.stop(), 5*time.Second)
	cred, err := s.creds.SIPCredential(ctx, digest.Username(h.Value()))
	cancel()
	if err != nil {
		log.Info("unknown sip credential", "err", err)
		c.reject(req, tx, 403, "Forbidden", nil)
		return
	}
	if !s.authorize(c, req, tx, cred) {
		return
	}
	c.fraud.subject = policy.Subject{Credential: cred.Username, Number: c.cc.From()}
	if s.fraud.emergencyDialed(req) {
		// An emergency call goes out whatever number the endpoint presents: the callback
		// number is its own when it is one of the credential's, else the credential's first.
		if !slices.Contains(cred.Numbers, c.cc.From()) && len(cred.Numbers) > 0 {
			c.fraud.callback, c.fraud.subject.Number = cred.Numbers[0], cred.Numbers[0]
			c.cc.SetFrom(cred.Numbers[0])
		}
	} else if err := callerIDError(req, c.cc.From(), cred.Numbers); err != nil {
		log.Info("caller id not the endpoint's", "number", c.cc.From(), "err", err)
		c.reject(req, tx, 403, "Forbidden", nil, sip.NewHeader("Warning", `399 telgw "`+err.Error()+`"`))
		return
	}
	c.keepDiversion(req)
	called, trunks, ok := c.routeOut(req, tx)
	if !ok {
		return
	}
	c.run(req, tx, trunkTargets(trunks, called, c.cc.From()))
}

// routeOut finds the trunks for the number a call out dialled (sip:+1…@ or tel:+1…): it answers
// 484 for a number it cannot read and 404 when no route matches, and records the number in the
// CDR either way.
func (c *call) routeOut(req *sip.Request, tx sip.ServerTransaction) (string, []*trunk, bool) {
	if c.env.fraud.emergencyDialed(req) {
		return c.emergencyRoute(req, tx) // before any policy (emergency.go)
	}
	dialed := req.Recipient.User
	if dialed == "" && strings.EqualFold(req.Recipient.Scheme, "tel") {
		dialed = req.Recipient.Host
	}
	called, err := e164.Normalize(dialed)
	if err != nil {
		c.cc.SetTo(dialed)
		c.reject(req, tx, 484, "Address Incomplete", nil)
		return "", nil, false
	}
	c.cc.SetTo(called)
	if !c.admitPolicy(req, tx, called) {
		return "", nil, false
	}
	trunks := c.env.trunks.outbound(called)
	if len(trunks) == 0 {
		c.env.log.Info("no outbound route", "call_id", c.id, "number", called)
		c.reject(req, tx, 404, "Not Found", nil, sip.NewHeader("Warning", `399 telgw "no route"`))
		return "", nil, false
	}
	return called, trunks, true
}

// trunkTargets are the INVITE targets for a call from caller to called by trunks, in order,
// with each carrier's number format.
func trunkTargets(trunks []*trunk, called, caller string) []target {
	targets := make([]target, 0, len(trunks))
	for _, t := range trunks {
		user := t.Format.Called(called)
		if !strings.HasPrefix(called, "+") {
			user = called // an emergency dial string goes as dialled
		}
		u := sip.Uri{Scheme: "sip", User: user, Host: hostOf(t.Address), Port: portOf(t.Address), UriParams: sip.NewParams()}
		if t.Transport == "tcp" || t.Transport == "tls" {
			u.UriParams.Add("transport", t.Transport)
		}
		if t.Format.UserPhone {
			u.UriParams.Add("user", "phone")
		}
		fromUser := t.Format.User(caller)
		if caller == "" {
			fromUser = "anonymous" // an emergency call without a callback number
		}
		targets = append(targets, target{uri: u, fromUser: fromUser, trunk: t})
	}
	return targets
}

func (s *b2bua) ownNumber(user string) bool {
	e164, err := e164.Normalize(user)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(s.stop(), 5*time.Second)
	defer cancel()
	_, err = s.router.CallRoute(ctx, e164)
	return err == nil
}

func transportOf(req *sip.Request) string {
	switch strings.ToLower(req.Transport()) {
	case "tcp":
		return "tcp"
	case "tls":
		return "tls"
	case "ws", "wss":
		return "ws"
	}
	return "udp"
}

// anchored returns s re-addressed to leg and marshalled, with side's origin.
func (c *call) anchored(s *sdp.Session, leg *bridge.UDPLeg, side int) []byte {
	cp, _ := sdp.Parse(s.Marshal())
	sdp.Anchor(cp, leg.Local().Addr(), int(leg.Local().Port()), &c.origin[side])
	b := cp.Marshal()
	c.mu.Lock()
	c.lastTo[side] = b
	c.mu.Unlock()
	return b
}

// admit takes the caller's INVITE into a dialog (telgw as UAS) and counts the call as active;
// done undoes that when the call ends. When the INVITE cannot start a dialog it answers 400.
func (c *call) admit(req *sip.Request, tx sip.ServerTransaction) (done func(), ok bool) {
	s := c.env
	ua := s.dialogs[transportOf(req)]
	if c.fromPeer {
		ua = s.dialogs[peerTransport] // node-to-node: from the listener both ways (peernode.go)
	}
	a, err := ua.ReadInvite(req, tx)
	if err != nil {
		c.reject(req, tx, 400, "Bad Request", nil)
		return nil, false
	}
	c.a = a
	var t *trunk
	if c.cc.Direction() == Inbound {
		t = s.trunks.bySource(srcAddr(req))
	}
	c.setDialog(0, newPeerDialog(c.id, toTag(a.InviteRequest.To()), fromTag(a.InviteRequest.From()), transportOf(req), req.Source(), t))
	if !s.table.register(c.id, c, 0) {
		// The Call-ID is another call's: RFC 3261 §8.2.2.2 answers a merged request 482, and
		// the other call's in-dialog requests must keep finding it.
		c.reject(req, tx, 482, "Loop Detected", nil)
		return nil, false
	}
	active := s.m.active.WithLabelValues(string(c.cc.Direction()))
	active.Inc()
	return func() {
		active.Dec()
		s.table.unregister(c.id, c.bIDLocked())
	}, true
}

// run bridges the caller to the first target that answers.
func (c *call) run(req *sip.Request, tx sip.ServerTransaction, targets []target) {
	s := c.env
	log := s.log.With("call_id", c.id, "number", c.cc.To())
	done, ok := c.admit(req, tx)
	if !ok {
		return
	}
	defer done()

	var offer *sdp.Session
	var err error
	if len(req.Body()) > 0 {
		if offer, err = s.parseOffer(req.Body()); err != nil {
			log.Info("offer not acceptable", "err", err)
			c.answerA(488, "Not Acceptable Here", nil)
			return
		}
		c.lastVer[0], c.dir[0] = offer.Origin[2], offer.Direction(offer.Audio())
	}
	if c.legA, err = s.relay.NewUDPLeg(); err == nil {
		if c.legB, err = s.relay.NewUDPLeg(); err != nil {
			_ = c.legA.Close()
		}
	}
	if err != nil {
		log.Error("no media ports", "err", err)
		c.answerA(503, "Service Unavailable", nil)
		return
	}
	c.br = s.media.Bridge(c.legA, c.legB)
	defer c.br.Close()
	if offer != nil {
		c.legA.SetRemote(offer.Addr(offer.Audio()))
	}
	c.dial(req, targets, offer)
}

// dial tries targets in order with offer (nil: late offer) until one answers, then holds the
// call; when none does it answers the caller with the best failure.
func (c *call) dial(req *sip.Request, targets []target, offer *sdp.Session) {
	s := c.env
	log := s.log.With("call_id", c.id, "number", c.cc.To())
	code, reason := 503, "Service Unavailable"
	var last *sip.Response
	for i, t := range targets {
		if t.trunk != nil {
			if !t.trunk.up.Load() && !c.fraud.emergency {
				s.m.attempt.WithLabelValues(t.trunk.Name, "down").Inc()
				continue
			}
			if !t.trunk.acquire() && !c.emergencyAcquire(t.trunk) {
				s.m.attempt.WithLabelValues(t.trunk.Name, "capacity").Inc()
				continue
			}
			c.cc.SetTrunk(t.trunk.Name)
		}
		res, err := c.attempt(req, t, offer, i < len(targets)-1)
		if err == nil {
			c.trunk = t.trunk
			c.established(res, offer)
			if t.trunk != nil {
				t.trunk.release()
			}
			return
		}
		if t.trunk != nil {
			t.trunk.release()
		}
		var dr *sipgo.ErrDialogResponse
		switch {
		case errors.Is(err, errCallerCancel):
			log.Info("caller cancelled")
			c.finish(487, nil)
			return
		case errors.Is(err, errRingTimeout):
			code, reason, last = 480, "Temporarily Unavailable", nil
		case errors.As(err, &dr):
			code, reason, last = dr.Res.StatusCode, dr.Res.Reason, dr.Res
			if code == 401 || code == 407 {
				code, reason = 403, "Forbidden" // the callee's challenge is not the caller's to answer
			}
		default:
			code, reason, last = 408, "Request Timeout", nil
			log.Info("callee attempt failed", "trunk", c.cc.Trunk(), "err", err)
		}
		if t.trunk != nil {
			s.m.attempt.WithLabelValues(t.trunk.Name, resultClass(code, err)).Inc()
		}
		if !failover(code) && !errors.Is(err, errNoProgress) || i == len(targets)-1 {
			break
		}
		if code == 408 || errors.Is(err, errNoProgress) {
			code, reason = 503, "Service Unavailable"
		}
		log.Info("failing over", "trunk", c.cc.Trunk(), "code", code)
	}
	c.answerA(code, reason, last)
}

func resultClass(code int, err error) string {
	if errors.Is(err, errNoProgress) {
		return "timeout"
	}
	return fmt.Sprintf("%dxx", code/100)
}

func (c *call) bIDLocked() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bID
}

// answerA sends a final non-2xx response to the caller (if it is still waiting) and records it.
func (c *call) answerA(code int, reason string, from *sip.Response) {
	var hdrs []sip.Header
	if from != nil {
		// RFC 3326 Reason and Retry-After carry meaning the caller may use.
		for _, n := range []string{"Reason", "Retry-After", "Warning"} {
			for _, h := range from.GetHeaders(n) {
				hdrs = append(hdrs, sip.NewHeader(n, h.Value()))
			}
		}
	}
	_ = c.a.Respond(code, reason, nil, hdrs...)
	c.finish(code, from)
}

// attempt sends the callee leg's INVITE to t and waits for its final response. Provisional
// responses are relayed to the caller as they come (RFC 3261 §16.7 step 5 is for proxies; a
// B2BUA does the same so the caller hears ringing and early media).
//
// With more targets after this one, a target that gives no response but 100 within
// FailoverTimeout is abandoned; the last target has until the ring timeout (or the INVITE
// transaction's Timer B, RFC 3261 §17.1.1.2).
func (c *call) attempt(req *sip.Request, t target, offer *sdp.Session, more bool) (*sip.Response, error) {
	s := c.env
	inv := sip.NewRequest(sip.INVITE, t.uri)
	if tp, ok := t.uri.UriParams.Get("transport"); ok && tp != "" {
		inv.SetTransport(strings.ToUpper(tp))
	}
	from := sip.FromHeader{DisplayName: req.From().DisplayName, Address: sip.Uri{Scheme: "sip", User: t.fromUser, Host: s.cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&from)
	toURI := t.uri
	toURI.UriParams = nil
	if t.toUser != "" {
		toURI.User = t.toUser
	}
	inv.AppendHeader(&sip.ToHeader{Address: toURI, Params: sip.NewParams()})
	// RFC 3261 §16.6 step 3, kept by the B2BUA so loops through other B2BUAs still end.
	mf := sip.MaxForwardsHeader(70)
	if h := req.MaxForwards(); h != nil {
		mf = sip.MaxForwardsHeader(h.Val() - 1)
	}
	inv.AppendHeader(&mf)
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	inv.AppendHeader(sip.NewHeader("Supported", "timer"))
	if t.trunk != nil {
		// RFC 4028 §7.1: ask the carrier for session timers with telgw refreshing.
		inv.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", int(s.cfg.SessionExpires.Seconds()))))
	}
	if offer != nil {
		inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody(c.anchored(offer, c.legB, 1))
	}
	c.decorate(inv, t)
	ctx, cancel := context.WithCancelCause(s.stop())
	defer cancel(nil)
	bs, err := s.dialogs[strings.ToLower(inv.Transport())].WriteInvite(ctx, inv)
	if err != nil {
		return nil, fmt.Errorf("send invite: %w", err)
	}
	c.mu.Lock()
	old := c.bID
	c.b, c.bID = bs, bs.InviteRequest.CallID().Value()
	c.dlg[1] = peerDialog{callID: c.bID, local: fromTag(bs.InviteRequest.From())} // remote tag: the 2xx's
	c.mu.Unlock()
	callee := calls.Leg{ID: c.bID, Kind: calls.LegEndpoint, Participant: calls.Phone(c.cc.To())}
	if t.trunk != nil {
		callee.Kind, callee.Trunk = calls.LegCarrier, t.trunk.Name
	}
	c.cc.SetCallee(callee)
	s.table.unregister(old)
	s.table.register(c.bID, c, 1)

	progress := make(chan struct{})
	var progressOnce sync.Once
	anyResponse := make(chan struct{})
	var anyOnce sync.Once
	done := make(chan struct{})
	defer close(done)
	go func() {
		fail := time.NewTimer(s.cfg.FailoverTimeout)
		defer fail.Stop()
		if !more {
			fail.Stop()
		}
		ring := time.NewTimer(s.cfg.RingTimeout)
		defer ring.Stop()
		for {
			select {
			case <-done:
				return
			case <-c.a.Context().Done():
				cancel(errCallerCancel)
				return
			case <-progress:
				fail.Stop()
				progress = nil
			case <-fail.C:
				select {
				case <-anyResponse: // a 100 came: CANCEL (RFC 3261 §9.1) before moving on
					cancel(errNoProgress)
				default: // nothing at all: there is nothing to CANCEL
					cancel(sipgo.WaitAnswerForceCancelErr)
				}
				return
			case <-ring.C:
				cancel(errRingTimeout)
				return
			}
		}
	}()
	var user, pass string
	if t.trunk != nil {
		user, pass = t.trunk.Username, t.trunk.Password
	}
	err = bs.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: pass, OnResponse: func(res *sip.Response) error {
		anyOnce.Do(func() { close(anyResponse) })
		if res.IsSuccess() {
			c.confirmB(res, inv.Transport(), t.trunk)
		}
		if res.StatusCode > 100 && res.StatusCode < 200 {
			progressOnce.Do(func() { close(progress) })
			c.provisional(res)
		}
		return nil
	}})
	if err == nil {
		return bs.InviteResponse, nil
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCallerCancel), errors.Is(cause, errRingTimeout), errors.Is(cause, errNoProgress):
		return nil, cause
	case errors.Is(cause, sipgo.WaitAnswerForceCancelErr):
		return nil, errNoProgress
	}
	return nil, err
}

// provisional relays a 18x from the callee: ringing as is, a 183 (or 180) with SDP as early
// media (RFC 3261 §13.2.1; RFC 3960) after anchoring it.
func (c *call) provisional(res *sip.Response) {
	c.cc.Ring(time.Now())
	c.observeSetup()
	var body []byte
	var hdrs []sip.Header
	if len(res.Body()) > 0 {
		if ans, err := c.acceptAnswer(res.Body()); err == nil && c.web == nil {
			body = c.anchored(ans, c.legA, 0)
			hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
		}
		// A WebRTC caller already has telgw's answer (183 with SDP, sent when its INVITE
		// arrived): early media from the carrier flows to it through the bridge.
	}
	_ = c.a.Respond(res.StatusCode, res.Reason, body, hdrs...)
}

func (c *call) observeSetup() {
	c.setupObs.Do(func() {
		c.env.m.setup.WithLabelValues(string(c.cc.Direction())).Observe(time.Since(c.cc.Start()).Seconds())
	})
}

// acceptAnswer checks the callee's answer against the offer telgw sent it and points legB at
// the callee's media.
func (c *call) acceptAnswer(body []byte) (*sdp.Session, error) {
	ans, err := sdp.Parse(body)
	if err != nil {
		return nil, err
	}
	sent, err := sdp.Parse(c.lastSent(1))
	if err != nil {
		return nil, err
	}
	if err := sdp.FilterAnswer(ans, sent); err != nil {
		return nil, err
	}
	c.legB.SetRemote(ans.Addr(ans.Audio()))
	c.mu.Lock()
	c.lastVer[1], c.dir[1] = ans.Origin[2], ans.Direction(ans.Audio())
	c.answerB = body
	c.mu.Unlock()
	return ans, nil
}

func (c *call) lastSent(side int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastTo[side]
}

// end records who hung up and wakes the call goroutine; the first caller wins.
func (c *call) end(by string) {
	c.endOnce.Do(func() {
		c.endedBy = by
		close(c.ended)
	})
}

// finish ends the call with final status code (res: the callee's response, if any), writes
// the CDR the call model derives and counts the outcome.
func (c *call) finish(code int, res *sip.Response) {
	by := calls.EndedBySystem // unless the call recorded who ended it
	if code == 487 {
		by = calls.EndedByCaller
	} else if res != nil {
		by = calls.EndedByCallee
	}
	cdr := c.cc.End(time.Now(), calls.Outcome{Disposition: disposition(code), SIPCode: code, Q850: q850(res, code), EndedBy: by})
	c.endFraud(&cdr)
	s := c.env
	s.m.calls.WithLabelValues(string(cdr.Direction), cdr.Disposition).Inc()
	s.log.Info("call ended", "call_id", c.id, "trunk", cdr.Trunk, "number", cdr.To, "from", cdr.From,
		"direction", cdr.Direction, "code", code, "disposition", cdr.Disposition, "duration", cdr.Duration().Round(time.Millisecond))
	if s.cdrs == nil || c.fromPeer {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cdrs.CDRInsert(ctx, cdr); err != nil {
		s.log.Error("cdr insert", "call_id", c.id, "err", err)
	}
}

// sessionExpires reads RFC 4028 §4 Session-Expires: delta-seconds and refresher.
func sessionExpires(m interface{ GetHeader(string) sip.Header }) (time.Duration, string) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x") // RFC 4028 §4 compact form
	}
	if h == nil {
		return 0, ""
	}
	v := h.Value()
	secs, params, _ := strings.Cut(v, ";")
	var n int
	if _, err := fmt.Sscanf(strings.TrimSpace(secs), "%d", &n); err != nil || n <= 0 {
		return 0, ""
	}
	ref := ""
	for p := range strings.SplitSeq(params, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "refresher") {
			ref = strings.ToLower(val)
		}
	}
	return time.Duration(n) * time.Second, ref
}
