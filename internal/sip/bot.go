package sip

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// bot hands a carrier's call to a number routed to an app (Call Automation): the caller hears
// ringing (180) while the app decides; telgw publishes IncomingCall and carries out the app's
// decision: answer (telgw terminates the media), reject (the final response the reason maps
// to) or redirect (out through the SIP routes). Nobody deciding within the ring timeout: 480.
func (s *b2bua) bot(c *call, req *sip.Request, tx sip.ServerTransaction, r calls.BotRoute) {
	log := s.log.With("call_id", c.id, "number", c.cc.To())
	if !s.bots.Enabled() {
		log.Info("call routed to an app, but no incoming call publisher is configured")
		c.reject(req, tx, 480, "Temporarily Unavailable", nil)
		return
	}
	if len(req.Body()) == 0 {
		// A late offer would need telgw to offer the carrier media of its own first.
		c.reject(req, tx, 488, "Not Acceptable Here", nil, sip.NewHeader("Warning", `399 telgw "an SDP offer is required for calls to apps"`))
		return
	}
	offer, err := s.parseOffer(req.Body())
	var ans *sdp.Session
	if err == nil {
		ans, err = botAnswer(offer)
	}
	if err != nil {
		log.Info("offer not acceptable", "err", err)
		c.reject(req, tx, 488, "Not Acceptable Here", nil)
		return
	}
	c.bot = true
	done, ok := c.admit(req, tx)
	if !ok {
		return
	}
	defer done()
	c.lastVer[0], c.dir[0] = offer.Origin[2], offer.Direction(offer.Audio())
	if c.legA, err = s.relay.NewUDPLeg(); err != nil {
		log.Error("no media ports", "err", err)
		c.answerA(503, "Service Unavailable", nil)
		return
	}
	closeA := true
	defer func() {
		if closeA {
			_ = c.legA.Close()
		}
	}()
	c.legA.SetRemote(offer.Addr(offer.Audio()))
	c.cc.SetCallee(calls.Leg{ID: c.id, Kind: calls.LegBot, Participant: calls.Participant{Kind: calls.App, ID: r.URL}})

	octx, ocancel := context.WithTimeout(s.stop(), 5*time.Second)
	in, err := s.bots.Offer(octx, calls.OfferParams{Call: c.cc, Route: r, CallerDisplayName: req.From().DisplayName,
		CustomContext: customContext(req), Expires: time.Now().Add(s.cfg.RingTimeout)})
	ocancel()
	if err != nil {
		log.Info("incoming call not offered to the app", "err", err)
		c.answerA(480, "Temporarily Unavailable", nil)
		return
	}
	defer in.Close()
	_ = c.a.Respond(180, "Ringing", nil)
	c.cc.Ring(time.Now())
	c.observeSetup()

	ring := time.NewTimer(s.cfg.RingTimeout)
	defer ring.Stop()
	for {
		select {
		case <-ring.C:
			in.Close()
			log.Info("app did not answer in time")
			c.answerA(480, "Temporarily Unavailable", nil)
			return
		case <-c.a.Context().Done():
			in.Close()
			c.cc.SetEndedBy(calls.EndedByCaller)
			c.finish(487, nil) // the transaction layer answered the CANCEL and the INVITE (487)
			return
		case <-s.stop().Done():
			in.Close()
			c.answerA(503, "Service Unavailable", nil)
			return
		case d := <-in.Decisions():
			switch d.Kind {
			case calls.DecideReject:
				c.answerA(d.SIPCode, d.Reason, nil)
				d.Done(nil)
				return
			case calls.DecideRedirect:
				if d.Target.Kind == calls.CommunicationUser {
					if s.callEnv.users == nil || s.callEnv.users.Engine == nil {
						d.Done(fmt.Errorf("redirect to a user: WebRTC users are not served: %w", calls.ErrUnavailable))
						continue
					}
					d.Done(nil)
					closeA = false
					c.redirectUser(offer, d.Target)
					return
				}
				called := d.Target.ID
				trunks := s.trunks.outbound(called)
				if len(trunks) == 0 {
					d.Done(fmt.Errorf("redirect to %s: %w", called, calls.ErrNoRoute))
					continue // the caller keeps ringing; the app may decide again
				}
				d.Done(nil)
				closeA = false
				c.redirect(req, offer, called, trunks)
				return
			case calls.DecideAnswer:
				c.answerBot(d, ans)
				return
			}
		}
	}
}

// redirect sends the caller on to called through trunks, as an inbound call routed there.
func (c *call) redirect(req *sip.Request, offer *sdp.Session, called string, trunks []*trunk) {
	s := c.env
	var err error
	if c.legB, err = s.relay.NewUDPLeg(); err != nil {
		_ = c.legA.Close()
		s.log.Error("no media ports", "call_id", c.id, "err", err)
		c.answerA(503, "Service Unavailable", nil)
		return
	}
	c.bot = false
	c.br = s.media.Bridge(c.legA, c.legB)
	defer c.br.Close()
	c.cc.SetTo(called)
	c.dial(req, trunkTargets(trunks, called, c.cc.From()), offer)
}

// answerBot answers the caller with telgw's own media (the app's side of the call: prompts
// and DTMF, botmedia.go) and holds the call (holdBot, with the
// participants the app adds) until it is over.
func (c *call) answerBot(d *calls.Decision, ans *sdp.Session) {
	conn := d.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	setDirection(ans, answerDirection(c.dir[0]))
	if err := c.ok(c.anchored(ans, c.legA, 0)); err != nil {
		select {
		case <-c.ended: // the caller's BYE overtook its ACK: answered, and hung up at once
			d.Done(nil)
			c.cc.Answer(time.Now())
			conn.Disconnected(calls.ResultInformation{Code: 200, Message: "The caller hung up."})
			c.cc.SetEndedBy(calls.EndedByCaller)
			c.finish(200, nil)
		default:
			d.Done(fmt.Errorf("caller gone before the answer completed: %w", calls.ErrUnavailable))
			c.cc.SetEndedBy(calls.EndedByCaller)
			c.finish(487, nil)
		}
		return
	}
	d.Done(nil)
	if !c.acked.Load() {
		c.env.log.Info("no ACK for 2xx", "call_id", c.id)
		c.end(calls.EndedBySystem)
		c.byeCaller(ctx)
		conn.Disconnected(calls.ResultInformation{Code: 408, Message: "The caller did not acknowledge the answer."})
		c.cc.SetEndedBy(calls.EndedBySystem)
		c.finish(408, nil)
		return
	}
	c.cc.Answer(time.Now())
	c.answered.Store(true)
	// The app's leg is the app that answered: its callbackUri (the CDR keeps the host).
	c.cc.SetCallee(calls.Leg{ID: c.id, Kind: calls.LegBot, Participant: calls.Participant{Kind: calls.App, ID: conn.Properties().CallbackURI}, State: calls.Answered})
	ri := c.holdBot(conn, calls.Phone(c.cc.From()), c.legA, 0, calls.EndedByCallee)
	c.cc.SetEndedBy(c.endedBy)
	conn.Disconnected(ri)
	c.finish(200, nil)
}

// byeCaller sends BYE to the caller unless the caller ended the call.
func (c *call) byeCaller(ctx context.Context) {
	if c.endedBy == calls.EndedByCaller {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = c.a.Bye(ctx)
}

// botAnswer is telgw's answer to the caller's (filtered) offer when an app answers: the
// offer's first audio codec and telephone-event (RFC 3264 §6.1).
func botAnswer(offer *sdp.Session) (*sdp.Session, error) {
	m := offer.Audio()
	if m == nil {
		return nil, fmt.Errorf("no audio stream")
	}
	keep := []string{}
	for _, co := range m.Codecs() {
		if co.Name != "TELEPHONE-EVENT" {
			keep = append(keep, co.Key())
			break
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("no audio codec")
	}
	keep = append(keep, "TELEPHONE-EVENT/8000")
	ans, err := sdp.Parse(offer.Marshal())
	if err != nil {
		return nil, err
	}
	if err := sdp.FilterOffer(ans, keep); err != nil {
		return nil, err
	}
	return ans, nil
}

// customContext collects the INVITE's custom headers for IncomingCall (X-MS-Custom-* and
// User-To-User, as ACS passes them).
func customContext(req *sip.Request) map[string]string {
	var out map[string]string
	for _, h := range req.Headers() {
		n := h.Name()
		if strings.HasPrefix(strings.ToLower(n), "x-ms-custom-") || strings.EqualFold(n, "User-To-User") {
			if out == nil {
				out = map[string]string{}
			}
			out[n] = h.Value()
		}
	}
	return out
}
