package sip

import (
	"context"
	"sync"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// An app's call to three targets or more (createCall) rings them all at once, as ACS rings a
// group call's targets together: the first is the call's own leg (originate, originateUser),
// the others are dialled alongside it here; once the first answered, the call engine invites
// them (calls.Connection.Connected → Invite) and each invitation takes its target's leg
// (answered meanwhile, or still ringing) instead of dialling anew. When the first never
// answers the call fails and the others are cancelled or hung up.

// predials are the other targets of such a call, dialled by ringOthers.
type predials struct {
	mu    sync.Mutex
	calls map[calls.Participant]*predial
}

// predial is one target's leg being placed.
type predial struct {
	done   chan struct{} // closed once dialLeg returned: sub or err
	cancel chan struct{} // closed to give up ringing (CANCEL, RFC 3261 §9.1)
	once   sync.Once
	sub    *call
	err    error
}

func (pd *predial) stop() { pd.once.Do(func() { close(pd.cancel) }) }

// ringOthers starts placing the targets of conn after the first (codec: what the first leg is
// offered, so the legs can be mixed) when there are three or more.
func (c *call) ringOthers(conn *calls.Connection, codec sdp.Codec) {
	ts := conn.Targets()
	if len(ts) < 3 {
		return
	}
	ps := &predials{calls: map[calls.Participant]*predial{}}
	for _, t := range ts[1:] {
		pd := &predial{done: make(chan struct{}), cancel: make(chan struct{})}
		ps.calls[t] = pd
		go func() {
			defer close(pd.done)
			pd.sub, pd.err = c.env.dialLeg(legParams{target: t, callerID: c.cc.From(), display: conn.DisplayName, codec: codec,
				correlation: c.cc.CorrelationID, cancel: pd.cancel})
		}()
	}
	c.mu.Lock()
	c.predials = ps
	c.mu.Unlock()
}

// takePredial hands the leg being placed to target, if ringOthers started one, to its
// invitation (once).
func (c *call) takePredial(target calls.Participant) *predial {
	c.mu.Lock()
	ps := c.predials
	c.mu.Unlock()
	if ps == nil {
		return nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pd := ps.calls[target]
	delete(ps.calls, target)
	return pd
}

// dropPredials gives up the legs no invitation took (the call failed or ended first): those
// still ringing are cancelled, those answered hung up.
func (c *call) dropPredials() {
	c.mu.Lock()
	ps := c.predials
	c.mu.Unlock()
	if ps == nil {
		return
	}
	ps.mu.Lock()
	left := ps.calls
	ps.calls = map[calls.Participant]*predial{}
	ps.mu.Unlock()
	for _, pd := range left {
		pd.stop()
		pd.release()
	}
}

// release waits for dialLeg and hangs up and frees a leg that answered but will not be used.
func (pd *predial) release() {
	<-pd.done
	if pd.sub != nil {
		pd.sub.party(calls.Participant{}).bye(context.Background())
		pd.sub.closeLeg()
	}
}

// placed is the leg of inv's target: the one ringOthers placed for it, or, for an
// addParticipant, one dialled now; cancel gives up either.
func (b *botCall) placed(inv *calls.Invitation, cancel <-chan struct{}) (*call, error) {
	pd := b.main.takePredial(inv.Target)
	if pd == nil {
		return b.env.dialLeg(legParams{target: inv.Target, callerID: inv.CallerID, display: inv.DisplayName, ring: inv.Timeout,
			codec: b.codec, correlation: b.main.cc.CorrelationID, cancel: cancel})
	}
	select {
	case <-pd.done:
	case <-cancel:
		pd.stop()
		pd.release()
		return nil, &dialError{code: 487, msg: "The invitation was cancelled.", err: errCallerCancel}
	}
	return pd.sub, pd.err
}
