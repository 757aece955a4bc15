package sip

import (
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// Continuous DTMF recognition (startContinuousDtmfRecognition): every tone the person presses
// (RFC 4733 events, or in-band tones on a leg without telephone-event) becomes a
// ContinuousDtmfRecognitionToneReceived with a sequence id, alongside plays and recognitions
// (a tone during a DTMF recognition is reported to both, as ACS does), until stopped
// (ContinuousDtmfRecognitionStopped) or the call ends. The relay goroutine only queues the tone;
// one goroutine per recognition sends the callbacks in order.

var _ calls.ContinuousDTMFControl = (*botCall)(nil)

// continuousDTMF is one continuous recognition on a party.
type continuousDTMF struct {
	op    *calls.ContinuousDTMFOp
	tones chan dtmf.Tone
	lost  chan struct{} // a tone was dropped (queue full): ToneFailed
	quit  chan calls.OperationParams
	done  chan struct{}
}

// maxQueuedTones bounds the tones waiting to be reported (a flood from the person is dropped
// with ToneFailed rather than held).
const maxQueuedTones = 64

// push queues a tone the person pressed; it never blocks the relay.
func (c *continuousDTMF) push(t dtmf.Tone) {
	select {
	case c.tones <- t:
	default:
		select {
		case c.lost <- struct{}{}:
		default:
		}
	}
}

func (c *continuousDTMF) run(over <-chan struct{}) {
	defer close(c.done)
	for {
		select {
		case t := <-c.tones:
			c.op.ToneReceived(t.String())
		case <-c.lost:
			c.op.ToneFailed()
		case op := <-c.quit:
			for len(c.tones) > 0 { // tones pressed before the stop are still reported
				c.op.ToneReceived((<-c.tones).String())
			}
			c.op.Stopped(op)
			return
		case <-over:
			return
		}
	}
}

// StartContinuousDTMF implements calls.ContinuousDTMFControl.
func (b *botCall) StartContinuousDTMF(op *calls.ContinuousDTMFOp) error {
	pm, err := b.mediaFor(op.Target, "targetParticipant", "startContinuousDtmfRecognition")
	if err != nil {
		return err
	}
	c := &continuousDTMF{op: op, tones: make(chan dtmf.Tone, maxQueuedTones), lost: make(chan struct{}, 1),
		quit: make(chan calls.OperationParams, 1), done: make(chan struct{})}
	if !pm.cont.CompareAndSwap(nil, c) {
		return nil // already running: ACS answers 200 too
	}
	go c.run(b.over)
	return nil
}

// StopContinuousDTMF implements calls.ContinuousDTMFControl.
func (b *botCall) StopContinuousDTMF(target calls.Participant, op calls.OperationParams) (bool, error) {
	pt := b.find(target)
	if pt == nil {
		return false, calls.ErrMediaNotSupported("targetParticipant", "stopContinuousDtmfRecognition", " toward "+target.ID+", who is not on the call")
	}
	pm := pt.mediaPtr.Load()
	if pm == nil {
		return false, nil
	}
	c := pm.cont.Swap(nil)
	if c == nil {
		return false, nil
	}
	c.quit <- op
	return true, nil
}
