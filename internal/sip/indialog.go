package sip

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// established completes the offer/answer across both legs once the callee answered, then holds
// the call until either side hangs up, the media times out or the service stops.
func (c *call) established(res *sip.Response, offer *sdp.Session) {
	s := c.env
	c.observeSetup()
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	fail := func(code int, reason string, err error) {
		s.log.Info("call setup failed after answer", "call_id", c.id, "err", err)
		_ = c.b.Bye(ctx)
		c.answerA(code, reason, nil)
	}
	if offer != nil {
		ans, err := c.acceptAnswer(res.Body())
		if err != nil {
			_ = c.b.Ack(ctx)
			fail(488, "Not Acceptable Here", err)
			return
		}
		if err := c.b.Ack(ctx); err != nil {
			fail(500, "Server Internal Error", err)
			return
		}
		toA := c.webAnswer
		if c.web == nil {
			toA = c.anchored(ans, c.legA, 0)
		}
		if err := c.ok(toA); err != nil {
			c.cancelled(ctx, err)
			return
		}
		if !c.acked.Load() {
			c.noAck(ctx)
			return
		}
	} else {
		// Late offer (RFC 3264 §4, RFC 3261 §13.2.1): the callee's 2xx carries the offer and the
		// caller's ACK the answer.
		bo, err := s.parseOffer(res.Body())
		if err != nil {
			_ = c.b.Ack(ctx)
			fail(488, "Not Acceptable Here", err)
			return
		}
		c.legB.SetRemote(bo.Addr(bo.Audio()))
		c.mu.Lock()
		c.lastVer[1], c.dir[1] = bo.Origin[2], bo.Direction(bo.Audio())
		c.mu.Unlock()
		toA := c.anchored(bo, c.legA, 0)
		if err := c.ok(toA); err != nil {
			_ = c.b.Ack(ctx)
			c.cancelled(ctx, err)
			return
		}
		if !c.acked.Load() {
			_ = c.b.Ack(ctx)
			c.noAck(ctx)
			return
		}
		var body []byte
		select {
		case body = <-c.ackBody:
		default:
		}
		ans, err := sdp.Parse(body)
		if err == nil {
			sent, _ := sdp.Parse(toA)
			err = sdp.FilterAnswer(ans, sent)
		}
		if err != nil {
			// RFC 3261 §13.3.1.4 leaves a bad answer in an ACK to the UAS: end the call.
			_ = c.b.Ack(ctx)
			s.log.Info("bad answer in ack", "call_id", c.id, "err", err)
			c.end("system")
			c.hangup(ctx)
			c.finish(488, nil)
			return
		}
		c.legA.SetRemote(ans.Addr(ans.Audio()))
		c.mu.Lock()
		c.lastVer[0], c.dir[0] = ans.Origin[2], ans.Direction(ans.Audio())
		c.mu.Unlock()
		ack := sip.NewRequest(sip.ACK, c.b.InviteResponse.Contact().Address)
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(c.anchored(ans, c.legB, 1))
		if err := c.b.WriteAck(ctx, ack); err != nil {
			s.log.Info("ack to callee failed", "call_id", c.id, "err", err)
		}
	}
	c.talk(res)
}

// talk holds an answered call until either side hangs up, the media times out or the service
// stops, then hangs up the other side and writes the CDR.
func (c *call) talk(res *sip.Response) {
	s := c.env
	c.cc.Answer(time.Now())
	c.answered.Store(true)
	c.br.Arm()
	c.updateSending()
	if se, ref := sessionExpires(res); se > 0 && ref != "uas" && c.trunk != nil {
		go c.refresher(se)
	}
	// A WebRTC leg that fails (ICE or DTLS never completed or broke, consent lost, no media)
	// closes itself: that ends the call too, unless a transfer (refer.go) replaced it.
	for held := true; held; {
		webDone, moved := c.watchLegs()
		select {
		case <-c.ended:
			held = false
		case <-c.br.Done():
			c.end("media-timeout")
			held = false
		case <-webDone:
			if now, _ := c.watchLegs(); now == webDone {
				c.end("media-timeout")
				held = false
			}
		case <-moved:
		case <-s.stop().Done():
			c.end("system")
			held = false
		}
	}
	c.hangup(context.Background())
	c.cc.SetEndedBy(c.endedBy)
	c.finish(200, nil)
}

// watchLegs is what talk watches of the legs now: the WebRTC leg's end (nil: none) and the
// signal that a transfer changed a leg.
func (c *call) watchLegs() (web <-chan struct{}, moved <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moved == nil {
		c.moved = make(chan struct{})
	}
	if c.web != nil {
		web = c.web.Done()
	}
	return web, c.moved
}

// cancelled handles a caller that went away (CANCEL, no ACK) while telgw was answering it, or
// whose BYE overtook its ACK (sipgo handles each request in its own goroutine): that call was
// answered and hung up by the caller.
func (c *call) cancelled(ctx context.Context, err error) {
	select {
	case <-c.ended:
		c.cc.Answer(time.Now())
		c.hangup(ctx)
		c.cc.SetEndedBy(c.endedBy)
		c.finish(200, nil)
		return
	default:
	}
	c.env.log.Info("caller gone before answer completed", "call_id", c.id, "err", err)
	_ = c.b.Bye(ctx)
	c.cc.SetEndedBy(calls.EndedByCaller)
	c.finish(487, nil)
}

// noAck ends a call whose caller never acknowledged the 2xx: RFC 3261 §13.3.1.4 confirms the
// dialog after 64*T1 but says the session SHOULD be terminated with a BYE (to both legs here).
func (c *call) noAck(ctx context.Context) {
	c.env.log.Info("no ACK for 2xx", "call_id", c.id)
	c.end("system")
	c.hangup(ctx)
	c.cc.SetEndedBy(calls.EndedBySystem)
	c.finish(408, nil)
}

// ok sends the caller the 2xx with body and waits for its ACK (RFC 3261 §13.3.1.4). It echoes
// the caller's session timer (RFC 4028 §9) with the caller as refresher.
func (c *call) ok(body []byte) error {
	res := sip.NewSDPResponseFromRequest(c.a.InviteRequest, body)
	if se, _ := sessionExpires(c.a.InviteRequest); se > 0 {
		res.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", int(se.Seconds()))))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	return c.a.WriteResponse(res)
}

// hangup sends BYE (RFC 3261 §15.1.1) to the leg(s) that did not end the call.
func (c *call) hangup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	if c.endedBy != "caller" {
		go func() {
			defer close(done)
			_ = c.peer(0).Bye(ctx)
		}()
	} else {
		close(done)
	}
	if c.endedBy != "callee" {
		_ = c.peer(1).Bye(ctx)
	}
	<-done
}

// legDialog is one of a call's dialogs, as telgw's UAS (the caller's) or UAC (the callee's,
// or a transfer target's).
type legDialog interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
	Bye(ctx context.Context) error
	ReadBye(req *sip.Request, tx sip.ServerTransaction) error
}

// peer is the dialog on side 0 or 1 now: a transfer (refer.go) may have replaced either.
func (c *call) peer(side int) legDialog {
	c.mu.Lock()
	defer c.mu.Unlock()
	if side == 0 {
		if c.aOut != nil {
			return c.aOut
		}
		return c.a
	}
	return c.b
}

// updateSending tells the media timeout which legs should be sending (RFC 3264 §5.1: a side
// that declared sendonly or sendrecv sends; recvonly and inactive do not).
func (c *call) updateSending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, d := range c.dir {
		c.br.SetSending(i, d == "" || d == "sendrecv" || d == "sendonly")
	}
}

// refresher refreshes the callee leg's session (RFC 4028 §10) at half the interval with a
// re-INVITE carrying the unchanged description; a failed refresh ends the call.
func (c *call) refresher(se time.Duration) {
	t := time.NewTicker(se / 2)
	defer t.Stop()
	for {
		select {
		case <-c.ended:
			return
		case <-t.C:
			c.reinvite.Lock()
			res, err := c.sendReinvite(1, c.lastSent(1))
			c.reinvite.Unlock()
			if err != nil || res.StatusCode == 408 || res.StatusCode == 481 {
				c.env.log.Info("session refresh failed", "call_id", c.id, "err", err)
				c.end("system")
				return
			}
		}
	}
}

// remoteTarget is where in-dialog requests to side go: the peer's Contact (RFC 3261 §12.2.1.1).
func (c *call) remoteTarget(side int) sip.Uri {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case side != 0:
		return c.b.InviteResponse.Contact().Address
	case c.aOut != nil:
		return c.aOut.InviteResponse.Contact().Address
	}
	return c.a.InviteRequest.Contact().Address
}

// sendReinvite sends an in-dialog INVITE with body to side and ACKs a 2xx.
func (c *call) sendReinvite(side int, body []byte) (*sip.Response, error) {
	req := sip.NewRequest(sip.INVITE, c.remoteTarget(side))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	d := c.peer(side)
	res, err := d.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsSuccess() {
		err = d.WriteRequest(sip.NewRequest(sip.ACK, c.remoteTarget(side)))
	}
	return res, err
}

// dialogs handles the requests inside a call's dialogs (RFC 3261 §12.2.2): it finds the call and
// leg a request belongs to (match) and acts on it: ACK, BYE, re-INVITE (answered or relayed),
// INFO (relayed).
type dialogs struct {
	*callEnv
	sourceCheck bool   // Config.DialogSourceCheck
	router      Router // where a REFER's target number goes (refer.go)
}

func (s *dialogs) onAck(req *sip.Request, tx sip.ServerTransaction) {
	ref, ok := s.match(req, tx)
	if !ok || ref.side != 0 || ref.c.a == nil || ref.c.peer(0) != legDialog(ref.c.a) {
		// ACK to a re-INVITE from the callee or a transfer target, or to a final non-2xx:
		// nothing to do.
		return
	}
	if cs := req.CSeq(); cs != nil && cs.SeqNo == ref.c.a.InviteRequest.CSeq().SeqNo {
		if len(req.Body()) > 0 {
			select {
			case ref.c.ackBody <- req.Body():
			default:
			}
		}
		ref.c.acked.Store(true)
	}
	_ = ref.c.a.ReadAck(req, tx)
}

func (s *dialogs) onBye(req *sip.Request, tx sip.ServerTransaction) {
	ref, ok := s.match(req, tx)
	if !ok {
		return
	}
	c := ref.c
	if ref.side == groupSide {
		c.mu.Lock()
		g := c.group
		c.mu.Unlock()
		if g == nil || g.dialog.ReadBye(req, tx) != nil {
			respond(tx, req, 200, "OK")
		}
		c.end(calls.EndedByCallee)
		return
	}
	if ref.side == 2 {
		// The transferor's BYE (refer.go), crossing telgw's: the call goes on.
		c.mu.Lock()
		gone := c.gone
		c.mu.Unlock()
		if gone == nil || gone.ReadBye(req, tx) != nil {
			respond(tx, req, 200, "OK")
		}
		return
	}
	if ref.side == 0 {
		// Mark the end first: ReadBye wakes a 2xx still waiting for an ACK the BYE overtook.
		c.end("caller")
		if err := c.peer(0).ReadBye(req, tx); err != nil {
			respond(tx, req, 200, "OK")
		}
		return
	}
	c.mu.Lock()
	b := c.b
	c.mu.Unlock()
	if err := b.ReadBye(req, tx); err != nil {
		respond(tx, req, 200, "OK")
	}
	c.end("callee")
}

// onInfo relays INFO (e.g. application/dtmf-relay, RFC 6086) to the other leg and its
// final response back.
func (s *dialogs) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	ref, ok := s.match(req, tx)
	if !ok {
		return
	}
	c := ref.c
	if !c.answered.Load() {
		respond(tx, req, 491, "Request Pending")
		return
	}
	if c.bot {
		respond(tx, req, 200, "OK") // no other leg; DTMF for apps comes with part 2
		return
	}
	other := 1 - ref.side
	out := sip.NewRequest(req.Method, c.remoteTarget(other))
	if ct := req.ContentType(); ct != nil {
		out.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	for _, n := range []string{"Info-Package", "Content-Disposition"} {
		if h := req.GetHeader(n); h != nil {
			out.AppendHeader(sip.NewHeader(n, h.Value()))
		}
	}
	out.SetBody(req.Body())
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	res, err := c.peer(other).Do(ctx, out)
	if err != nil {
		respond(tx, req, 408, "Request Timeout")
		return
	}
	respond(tx, req, res.StatusCode, res.Reason)
}

// onReInvite handles an INVITE inside a dialog (RFC 3261 §14.2). A session refresh (RFC 4028)
// or any offer whose o= version did not change (RFC 3264 §8) is answered by telgw with the last
// description it sent that side; a real change (hold, unhold, new address) is relayed to the
// other leg as its own re-INVITE and the answer relayed back.
func (s *dialogs) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	ref, ok := s.match(req, tx)
	if !ok {
		return
	}
	c, side := ref.c, ref.side
	if !c.answered.Load() {
		respond(tx, req, 491, "Request Pending")
		return
	}
	if !c.reinvite.TryLock() {
		// RFC 3261 §14.2: a re-INVITE while one is pending gets 491.
		respond(tx, req, 491, "Request Pending")
		return
	}
	defer c.reinvite.Unlock()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	if c.web != nil {
		c.webReinvite(req, tx, side)
		return
	}
	reply := func(body []byte) { s.answerReinvite(req, tx, body) }
	if c.bot {
		// telgw is the caller's media peer: a refresh or a new address gets the same answer.
		if off, err := s.parseOffer(req.Body()); err == nil && len(req.Body()) > 0 {
			c.legFor(side).SetRemote(off.Addr(off.Audio()))
			c.mu.Lock()
			c.lastVer[side], c.dir[side] = off.Origin[2], off.Direction(off.Audio())
			c.mu.Unlock()
		}
		reply(c.lastSent(side))
		return
	}
	if len(req.Body()) == 0 {
		// No offer: telgw offers what it last sent (RFC 3261 §14.2 with RFC 3264 §8).
		reply(c.lastSent(side))
		return
	}
	off, err := s.parseOffer(req.Body())
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	c.mu.Lock()
	unchanged := off.Origin[2] == c.lastVer[side]
	c.mu.Unlock()
	if unchanged {
		reply(c.lastSent(side))
		return
	}
	other := 1 - side
	c.legFor(side).SetRemote(off.Addr(off.Audio()))
	res, err := c.sendReinvite(other, c.anchored(off, c.legFor(other), other))
	if err != nil {
		respond(tx, req, 408, "Request Timeout")
		return
	}
	if !res.IsSuccess() {
		respond(tx, req, res.StatusCode, res.Reason)
		return
	}
	ans, err := sdp.Parse(res.Body())
	if err == nil {
		sent, _ := sdp.Parse(c.lastSent(other))
		err = sdp.FilterAnswer(ans, sent)
	}
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	c.legFor(other).SetRemote(ans.Addr(ans.Audio()))
	c.mu.Lock()
	c.lastVer[side], c.dir[side] = off.Origin[2], off.Direction(off.Audio())
	c.lastVer[other], c.dir[other] = ans.Origin[2], ans.Direction(ans.Audio())
	c.mu.Unlock()
	c.updateSending()
	reply(c.anchored(ans, c.legFor(side), side))
}

func (c *call) legFor(side int) *bridge.UDPLeg {
	if side == 0 {
		return c.legA
	}
	return c.legB
}
