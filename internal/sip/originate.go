package sip

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Dial implements calls.Dialer: it places an app's call (createCall) out through the SIP
// routes, in the background.
func (s *Service) Dial(conn *calls.Connection) { go s.b2b.originate(conn) }

var _ calls.Dialer = (*Service)(nil)

// originate places an app's call to a phone number: telgw is the caller (UAC) with its own
// media (a sink for now), trying the trunks of the first matching route in order. The app
// hears CallConnected when the callee answers, CreateCallFailed when nobody does, and
// CallDisconnected when the call ends.
func (s *b2bua) originate(conn *calls.Connection) {
	cc := conn.Call()
	if !s.table.begin() {
		conn.Failed(calls.ResultInformation{Code: 503, Message: "telgw is shutting down."})
		return
	}
	defer s.table.done()
	c := &call{env: s.callEnv, id: cc.ID, cc: cc, ended: make(chan struct{}), ackBody: make(chan []byte, 1), bot: true}
	defer func() { s.table.unregister(c.bIDLocked()) }()
	// Three targets or more: the first is called as a call of its own and the others ring with
	// it (ringOthers, conference_ring.go); the call engine invites them once the first answered
	// (calls.Connection.Connected), and those no invitation took when this returns (the first
	// never answered) are given up.
	pcmu := sdp.Codec{PT: 0, Name: "PCMU", Rate: 8000}
	defer c.dropPredials()
	if ts := conn.Targets(); len(ts) != 2 && len(ts) > 0 && ts[0].Kind == calls.CommunicationUser {
		c.ringOthers(conn, pcmu)
		s.originateUser(c, conn, ts[0])
		return
	} else if len(ts) == 2 {
		s.originateGroup(c, conn, ts)
		return
	}
	log := s.log.With("call_id", c.id, "number", cc.To())
	called := cc.To()
	if !c.admitApp(conn) { // the fraud policy (fraud.go)
		return
	}
	c.ringOthers(conn, pcmu)
	trunks := s.trunks.outbound(called)
	if len(trunks) == 0 {
		log.Info("no outbound route for an app's call")
		conn.Failed(calls.ResultInformation{Code: 404, Message: "No route reaches " + called + "."})
		c.finish(404, nil)
		return
	}
	var err error
	if c.legB, err = s.relay.NewUDPLeg(); err != nil {
		log.Error("no media ports", "err", err)
		conn.Failed(calls.ResultInformation{Code: 503, Message: "No media ports."})
		c.finish(503, nil)
		return
	}
	defer c.legB.Close()
	offer, err := sdp.Parse(plainOffer("PCMU", 0, 101))
	if err != nil {
		panic(err) // a constant
	}
	body := c.anchored(offer, c.legB, 1)
	code, reason := 503, "Service Unavailable"
	var last *sip.Response
	for _, t := range trunkTargets(trunks, called, cc.From()) {
		if !t.trunk.up.Load() || !t.trunk.acquire() {
			continue
		}
		c.cc.SetTrunk(t.trunk.Name)
		res, err := c.originateAttempt(conn, t, body)
		if err == nil {
			c.trunk = t.trunk
			c.talkBot(conn, res)
			t.trunk.release()
			return
		}
		t.trunk.release()
		var known bool
		if code, reason, last, known = attemptFailure(err); !known {
			log.Info("app's call attempt failed", "trunk", t.trunk.Name, "err", err)
		}
		s.m.attempt.WithLabelValues(t.trunk.Name, resultClass(code, err)).Inc()
		if code == 487 || !failover(code) {
			break
		}
	}
	conn.Failed(calls.ResultInformation{Code: code, Message: reason})
	c.finish(code, last)
}

// attemptFailure is the final status an attempt to place a leg for an app ended with: the
// callee's final response, 487 when the attempt was cancelled, 480 at the ring timeout, else
// 408 (known false: a transport failure, worth logging).
func attemptFailure(err error) (code int, reason string, last *sip.Response, known bool) {
	var dr *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &dr):
		return dr.Res.StatusCode, dr.Res.Reason, dr.Res, true
	case errors.Is(err, errCallerCancel):
		return 487, "Request Terminated", nil, true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errRingTimeout):
		return 480, "Temporarily Unavailable", nil, true
	}
	return 408, "Request Timeout", nil, false
}

// originateAttempt sends the INVITE with body to t (signed with Identity, fraud.go) and waits
// for the callee's final response; the app hanging up meanwhile cancels it (RFC 3261 §9.1),
// and so does the ring timeout.
func (c *call) originateAttempt(conn *calls.Connection, t target, body []byte) (*sip.Response, error) {
	return c.legAttempt(t, body, legParams{display: conn.DisplayName, cancel: conn.HangupRequested(), sign: true})
}

// talkBot completes an app's answered call (the callee's answer, the ACK) and holds it
// (holdBot, with the participants the app adds) until it is over.
func (c *call) talkBot(conn *calls.Connection, res *sip.Response) {
	s := c.env
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	_, err := c.acceptAnswer(res.Body())
	_ = c.b.Ack(ctx)
	if err != nil {
		s.log.Info("callee's answer not acceptable", "call_id", c.id, "err", err)
		_ = c.b.Bye(ctx)
		conn.Failed(calls.ResultInformation{Code: 488, Message: "The callee's media is not acceptable."})
		c.finish(488, nil)
		return
	}
	c.cc.Answer(time.Now())
	c.answered.Store(true)
	ri := c.holdBot(conn, calls.Phone(c.cc.To()), c.legB, 1, calls.EndedByCaller)
	c.cc.SetEndedBy(c.endedBy)
	conn.Disconnected(ri)
	c.finish(200, nil)
}
