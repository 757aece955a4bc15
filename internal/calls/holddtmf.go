package calls

// Hold, unhold and continuous DTMF recognition (CallMedia_Hold, CallMedia_Unhold,
// CallMedia_StartContinuousDtmfRecognition, CallMedia_StopContinuousDtmfRecognition). Like the
// other media operations the engine validates and keeps the callbacks; a CallControl that also
// implements HoldControl / ContinuousDTMFControl serves them, the rest answer 400 NotSupported.

// HoldControl holds and unholds a person of a connected call.
type HoldControl interface {
	// Hold takes the target out of the call's audio (they hear op.Music, looped, or silence;
	// no one hears them) and, on a SIP leg, re-INVITEs them with a=sendonly. It returns at
	// once; a failure later is reported with op.Failed (HoldFailed).
	Hold(op *HoldOp) error
	// Unhold puts the target back (re-INVITE with a=sendrecv). Not held: nothing to do.
	Unhold(op *HoldOp) error
}

// ContinuousDTMFControl reports every tone a person presses until stopped.
type ContinuousDTMFControl interface {
	StartContinuousDTMF(op *ContinuousDTMFOp) error
	// StopContinuousDTMF stops it (ContinuousDtmfRecognitionStopped); false when none ran.
	StopContinuousDTMF(target Participant, op OperationParams) (bool, error)
}

// HoldOp is one hold or unhold.
type HoldOp struct {
	mediaOp
	Target Participant
	// Music is playSourceInfo (hold only); nil: silence.
	Music []PlaySource
}

// Failed sends HoldFailed (e.g. the re-INVITE was refused, or the music could not be loaded:
// 400/8535, 400/8536).
func (h *HoldOp) Failed(ri ResultInformation) {
	h.send("Microsoft.Communication.HoldFailed", mediaEventData{ResultInformation: ri})
}

// ContinuousDTMFOp is one continuous DTMF recognition: its ToneReceived carry a sequence id
// from 1.
type ContinuousDTMFOp struct {
	mediaOp
	Target Participant
	seq    int
}

// ToneReceived sends ContinuousDtmfRecognitionToneReceived for the next tone (ACS name).
// Not safe for concurrent use: one goroutine reports a recognition's tones.
func (c *ContinuousDTMFOp) ToneReceived(tone string) {
	c.seq++
	c.send("Microsoft.Communication.ContinuousDtmfRecognitionToneReceived", mediaEventData{Tone: tone, SequenceID: c.seq,
		ResultInformation: ResultInformation{Code: 200, Message: "Action completed successfully."}})
}

// ToneFailed sends ContinuousDtmfRecognitionToneFailed: tones were lost (pressed faster than
// they could be reported).
func (c *ContinuousDTMFOp) ToneFailed() {
	c.send("Microsoft.Communication.ContinuousDtmfRecognitionToneFailed", mediaEventData{
		ResultInformation: ResultInformation{Code: 500, SubCode: 8512, Message: "Action failed, tones were pressed faster than they could be reported."}})
}

// Stopped sends ContinuousDtmfRecognitionStopped with op's context (the stop request's).
func (c *ContinuousDTMFOp) Stopped(op OperationParams) {
	s := &mediaOp{conn: c.conn, op: op}
	s.send("Microsoft.Communication.ContinuousDtmfRecognitionStopped", mediaEventData{ResultInformation: ResultInformation{Code: 200, Message: "Action completed successfully."}})
}

// HoldParams is a hold request.
type HoldParams struct {
	Target Participant
	Music  *PlaySource
	Op     OperationParams
}

// Hold puts the target on hold, with music when given.
func (a *Automation) Hold(id string, p HoldParams) error {
	if err := checkTarget("targetParticipant", p.Target); err != nil {
		return err
	}
	var music []PlaySource
	if p.Music != nil {
		music = []PlaySource{*p.Music}
		if err := checkSources("playSourceInfo", music); err != nil {
			return err
		}
	}
	c, ctl, err := a.controlled(id)
	if err != nil {
		return err
	}
	h, ok := ctl.(HoldControl)
	if !ok {
		return ErrMediaNotSupported("callConnectionId", "hold", " on this call")
	}
	return h.Hold(&HoldOp{mediaOp: mediaOp{conn: c, op: p.Op}, Target: p.Target, Music: music})
}

// Unhold takes the target off hold.
func (a *Automation) Unhold(id string, target Participant, op OperationParams) error {
	if err := checkTarget("targetParticipant", target); err != nil {
		return err
	}
	c, ctl, err := a.controlled(id)
	if err != nil {
		return err
	}
	h, ok := ctl.(HoldControl)
	if !ok {
		return ErrMediaNotSupported("callConnectionId", "unhold", " on this call")
	}
	return h.Unhold(&HoldOp{mediaOp: mediaOp{conn: c, op: op}, Target: target})
}

func (a *Automation) continuous(id, op string) (*Connection, ContinuousDTMFControl, error) {
	c, ctl, err := a.controlled(id)
	if err != nil {
		return nil, nil, err
	}
	d, ok := ctl.(ContinuousDTMFControl)
	if !ok {
		return nil, nil, ErrMediaNotSupported("callConnectionId", op, " on this call")
	}
	return c, d, nil
}

// StartContinuousDTMF starts reporting the target's tones.
func (a *Automation) StartContinuousDTMF(id string, target Participant, op OperationParams) error {
	if err := checkTarget("targetParticipant", target); err != nil {
		return err
	}
	c, d, err := a.continuous(id, "startContinuousDtmfRecognition")
	if err != nil {
		return err
	}
	return d.StartContinuousDTMF(&ContinuousDTMFOp{mediaOp: mediaOp{conn: c, op: op}, Target: target})
}

// StopContinuousDTMF stops reporting the target's tones (ContinuousDtmfRecognitionStopped
// when a recognition ran).
func (a *Automation) StopContinuousDTMF(id string, target Participant, op OperationParams) error {
	if err := checkTarget("targetParticipant", target); err != nil {
		return err
	}
	_, d, err := a.continuous(id, "stopContinuousDtmfRecognition")
	if err != nil {
		return err
	}
	_, err = d.StopContinuousDTMF(target, op)
	return err
}
