package sip

import (
	"context"
	"errors"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
)

// dialUserLeg is dialLeg for a communication user: the user's registered WebRTC devices ring
// (dialUser: fork, first answer wins) showing p.callerID and p.display, offered only the codec
// of the call's first leg with its payload type there, so the media is relayed between the two
// people without transcoding. p.cancel or p.ring ends the ringing (487/480). The returned call
// is filed in the call table under the device dialog's Call-ID (dialog matching covers it) and
// writes its own CDR, as a PSTN leg does.
func (e *callEnv) dialUserLeg(p legParams) (*call, error) {
	c := e.newLegCall(p)
	cc := c.cc

	codec := p.codec.Name
	if codec != webrtc.PCMU && codec != webrtc.PCMA {
		c.finish(488, nil)
		return nil, &dialError{code: 488, msg: "The call's codec (" + codec + ") cannot be relayed to a WebRTC device.", err: calls.ErrUnsupportedTarget}
	}
	ctx, cancel := context.WithCancelCause(e.stop())
	defer cancel(nil)
	defer e.watchRing(p, cancel)()
	from := p.callerID
	if from == "" {
		from = "telgw"
	}
	l, err := e.dialUser(ctx, p.target, userDial{callID: c.id, from: from, display: p.display, to: p.target.ID,
		codecs: []string{codec}, pts: map[string]uint8{codec: p.codec.PT}, dtmf: 101, ringing: func() { cc.Ring(time.Now()) }})
	if err != nil {
		code, msg := 480, "The participant's call failed."
		var le *legError
		if errors.As(err, &le) {
			code, msg = le.Code, le.Msg
		}
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errCallerCancel):
			code, msg = 487, "The invitation was cancelled."
		case errors.Is(cause, errRingTimeout):
			code, msg = 480, "Nobody answered in time."
		}
		c.finish(code, nil)
		return nil, &dialError{code: code, msg: msg, err: err}
	}
	select {
	case <-p.cancel: // answered as the cancel came: hang up (RFC 3261 §9.1)
		l.drop()
		c.finish(487, nil)
		return nil, &dialError{code: 487, msg: "The invitation was cancelled.", err: errCallerCancel}
	default:
	}
	c.web, c.webSide = l.web, 1
	c.mu.Lock()
	c.b, c.bID, c.dlg[1] = l.dialog, l.leg.ID, l.dlg
	c.mu.Unlock()
	cc.SetCallee(l.leg)
	e.table.register(l.leg.ID, c, 1)
	cc.Answer(time.Now())
	c.answered.Store(true)
	// The device's media ending (it went away without a BYE) ends the leg as its BYE would.
	go func() {
		select {
		case <-l.web.Done():
			c.end(calls.EndedByMediaTimeout)
		case <-c.ended:
		}
	}()
	return c, nil
}
