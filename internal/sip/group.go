package sip

import (
	"context"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// groupSide is the call-table side of the second leg of a group call (dlg[groupSide]).
const groupSide = 3

// originateGroup places an app's group call of two targets (createCall with two targets;
// without audio mixing a group has at most two people): each target gets a leg at once, a
// phone number through the SIP routes or a communication user's devices, and once both
// answered telgw bridges their media and the app hears CallConnected. When either cannot be
// reached the other is hung up and the app hears CreateCallFailed; when either hangs up the
// call ends for both.
func (s *b2bua) originateGroup(c *call, conn *calls.Connection, targets []calls.Participant) {
	ctx, cancel := context.WithCancel(s.stop())
	defer cancel()
	go func() {
		select {
		case <-conn.HangupRequested():
			cancel()
		case <-ctx.Done():
		}
	}()
	legs := make([]*outLeg, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			legs[i], errs[i] = s.dialTarget(ctx, c, conn, p)
			if errs[i] != nil {
				cancel() // the group cannot happen: stop ringing the other
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		for _, l := range legs {
			if l != nil {
				l.drop()
			}
		}
		le := legFailure(err)
		s.log.Info("group call failed", "call_id", c.id, "target", targets[i].ID, "code", le.Code)
		conn.Failed(calls.ResultInformation{Code: le.Code, Message: le.Msg})
		c.finish(le.Code, nil)
		return
	}
	a, b := legs[0], legs[1]
	c.mu.Lock()
	c.b, c.bID, c.dlg[1] = a.dialog, a.leg.ID, a.dlg
	c.dlg[groupSide], c.group = b.dlg, b
	c.mu.Unlock()
	c.cc.SetCallee(a.leg)
	c.cc.Transfer(-1, b.leg, time.Now()) // a further leg
	s.table.register(a.leg.ID, c, 1)
	s.table.register(b.leg.ID, c, groupSide)
	defer s.table.unregister(a.leg.ID, b.leg.ID)
	br := s.media.Bridge(a.media(), b.media())
	defer br.Close()
	defer a.release()
	defer b.release()
	c.cc.Answer(time.Now())
	c.answered.Store(true)
	br.Arm()
	conn.Connected()
	var aDone, bDone <-chan struct{}
	if a.web != nil {
		aDone = a.web.Done()
	}
	if b.web != nil {
		bDone = b.web.Done()
	}
	ri := calls.ResultInformation{Code: 200}
	select {
	case <-c.ended:
		ri.Message = "A participant hung up."
	case <-br.Done():
		c.end(calls.EndedByMediaTimeout)
		ri.Message = "The media stopped."
	case <-aDone:
		c.end(calls.EndedByMediaTimeout)
		ri.Message = "A participant's media ended."
	case <-bDone:
		c.end(calls.EndedByMediaTimeout)
		ri.Message = "A participant's media ended."
	case <-conn.HangupRequested():
		c.end(calls.EndedByCaller)
		ri.Message = "The app hung up."
	case <-s.stop().Done():
		c.end(calls.EndedBySystem)
		ri.Message = "telgw is shutting down."
	}
	// The leg that hung up has its dialog ended already: its Bye sends nothing.
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = a.dialog.Bye(bctx)
	_ = b.dialog.Bye(bctx)
	bcancel()
	c.cc.SetEndedBy(c.endedBy)
	conn.Disconnected(ri)
	c.finish(200, nil)
}

// dialTarget places one leg of an app's call: a communication user's devices, or a phone
// number through the outbound routes (telgw's media offer: PCMU and telephone-event).
func (s *b2bua) dialTarget(ctx context.Context, c *call, conn *calls.Connection, p calls.Participant) (*outLeg, error) {
	from := c.cc.From()
	if p.Kind == calls.CommunicationUser {
		if from == "" {
			from = "telgw"
		}
		return s.dialUser(ctx, p, userDial{callID: c.id, from: from, display: conn.DisplayName, to: p.ID,
			codecs: []string{webrtc.PCMU}, pts: map[string]uint8{webrtc.PCMU: 0}, dtmf: 101,
			ringing: func() { c.cc.Ring(time.Now()) }})
	}
	trunks := s.trunks.outbound(p.ID)
	if len(trunks) == 0 {
		return nil, &legError{Code: 404, Reason: "Not Found", Msg: "No route reaches " + p.ID + "."}
	}
	offer, err := sdp.Parse(plainOffer("PCMU", 0, 101))
	if err != nil {
		panic(err) // a constant
	}
	return s.dialSIP(ctx, trunkTargets(trunks, p.ID, from), offer, dialOpts{callID: c.id, display: conn.DisplayName, to: p})
}
