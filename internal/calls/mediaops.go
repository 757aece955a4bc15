package calls

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Media operations of a call connection (Call Automation's callMedia: play, recognize DTMF,
// choices and speech, sendDtmfTones, cancelAllMediaOperations; hold, unhold and continuous DTMF
// are in holddtmf.go). The engine validates the request, keeps the
// operation's context and sends its callbacks; the transport (the SIP edge) plays, listens and
// reports through the operation's methods. A CallControl that also implements MediaControl
// serves them; the rest answer 400 "not supported".

// MediaControl is the transport's media on a connected call connection. Each method returns at
// once (a problem error when the call cannot serve the operation, e.g. two people bridged) and
// reports the outcome through its argument.
type MediaControl interface {
	Play(op *PlayOp) error
	Recognize(op *RecognizeOp) error
	SendDTMF(op *DTMFOp) error
	// CancelMedia cancels every play and recognition under way (each reports Canceled).
	CancelMedia()
}

// PlaySourceKind is a PlaySource's kind.
type PlaySourceKind string

// Play source kinds the engine accepts (PlaySourceType).
const (
	FileSource PlaySourceKind = "file"
	TextSource PlaySourceKind = "text"
	SSMLSource PlaySourceKind = "ssml"
)

// PlaySource is one prompt: a file fetched from the app or text synthesised.
type PlaySource struct {
	Kind PlaySourceKind
	// URI is a FileSource's http(s) URL.
	URI string
	// CacheID is playSourceCacheId: a cached prompt under this id is played whatever the URI.
	CacheID string
	// Text, VoiceName, SourceLocale and VoiceKind are a TextSource's.
	Text, VoiceName, SourceLocale, VoiceKind string
	// SSML is an SsmlSource's ssmlText.
	SSML string
}

// ErrMediaNotSupported is an ACS-shaped 400 naming a media operation telgw does not serve
// (yet) on this call; field is the request field or "callConnectionId".
func ErrMediaNotSupported(field, op, why string) error {
	return problem.Invalid(field, "%s is not supported yet%s", op, why).WithCode("NotSupported")
}

// mediaOp is what every media operation shares: its connection and its callback target.
type mediaOp struct {
	conn *Connection
	op   OperationParams
}

// OperationContext is the app's operationContext.
func (m *mediaOp) OperationContext() string { return m.op.OperationContext }

// mediaEventData is the data of the play, recognize and DTMF callbacks.
type mediaEventData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	OperationContext  string            `json:"operationContext,omitempty"`
	ResultInformation ResultInformation `json:"resultInformation"`
	// RecognizeCompleted's.
	RecognitionType string        `json:"recognitionType,omitempty"`
	DtmfResult      *dtmfResult   `json:"dtmfResult,omitempty"`
	ChoiceResult    *choiceResult `json:"choiceResult,omitempty"`
	SpeechResult    *speechResult `json:"speechResult,omitempty"`
	// ContinuousDtmfRecognitionToneReceived's.
	Tone       string `json:"tone,omitempty"`
	SequenceID int    `json:"sequenceId,omitempty"`
}

// choiceResult is ChoiceResult: recognizedPhrase is absent when the choice was picked by tone.
type choiceResult struct {
	Label            string `json:"label"`
	RecognizedPhrase string `json:"recognizedPhrase,omitempty"`
}

// speechResult is SpeechResult (no confidence: the recogniser gives none).
type speechResult struct {
	Speech string `json:"speech"`
}

type dtmfResult struct {
	Tones []string `json:"tones"`
}

func (m *mediaOp) send(typ string, d mediaEventData) {
	c := m.conn
	d.CallConnectionID, d.ServerCallID, d.CorrelationID, d.OperationContext = c.ID, c.call.ID, c.call.CorrelationID, m.op.OperationContext
	c.sendData(c.uriFor(m.op), typ, d)
}

// ACS result information of media operations. The subcodes are ACS's MediaEventReasonCode
// (Azure SDK): 8510 initial silence, 8511 prompt failed, 8514 stop tone, 8531 max digits, 8532
// inter-digit timeout, 8533 DTMF option matched, 8534 incorrect tone, 8545 speech option matched,
// 8547 speech option not matched, 8563 speech not recognised, 8564 speech service error, 8535
// bad file format, 8536 download failed, 8508 canceled; the codes and messages are the
// recognize how-to's event-code table.
var (
	riPlayCompleted = ResultInformation{Code: 200, SubCode: 0, Message: "Action completed successfully."}
	riCanceled      = ResultInformation{Code: 400, SubCode: 8508, Message: "Action failed, the operation was cancelled."}
)

// PlayOp is one play (play or playToAll, or a recognize's prompt when reported as a play).
type PlayOp struct {
	mediaOp
	Sources []PlaySource
	// Targets are who hears it; empty: everyone (playToAll).
	Targets   []Participant
	Loop      bool
	Interrupt bool // interruptCallMediaOperation
}

// Started sends PlayStarted.
func (p *PlayOp) Started() {
	p.send("Microsoft.Communication.PlayStarted", mediaEventData{ResultInformation: ResultInformation{Code: 200, Message: "Action started."}})
}

// Completed sends PlayCompleted.
func (p *PlayOp) Completed() {
	p.send("Microsoft.Communication.PlayCompleted", mediaEventData{ResultInformation: riPlayCompleted})
}

// Failed sends PlayFailed with ri (e.g. 400/8535 bad file format, 400/8536 download failed).
func (p *PlayOp) Failed(ri ResultInformation) {
	p.send("Microsoft.Communication.PlayFailed", mediaEventData{ResultInformation: ri})
}

// Canceled sends PlayCanceled.
func (p *PlayOp) Canceled() {
	p.send("Microsoft.Communication.PlayCanceled", mediaEventData{ResultInformation: riCanceled})
}

// RecognizeOp is one startRecognizing.
type RecognizeOp struct {
	mediaOp
	Kind                  RecognizeKind
	Target                Participant
	MaxTones              int
	StopTones             []string // ACS tone names
	InterToneTimeout      time.Duration
	InitialSilenceTimeout time.Duration
	InterruptPrompt       bool
	// Prompt, when set, plays first (playPrompt / playPrompts).
	Prompt []PlaySource
	// InterruptMedia is interruptCallMediaOperation: plays under way are canceled first.
	InterruptMedia bool
	// Choices (choices), EndSilence (speechOptions.endSilenceTimeoutInMs: speech and
	// speechOrDtmf) and Language (speechLanguage, "" = en-US).
	Choices    []Choice
	EndSilence time.Duration
	Language   string
	// Ending, when set by the engine, runs once before the recognition's result is sent:
	// the person is free for the next recognition before the app can learn this one ended.
	Ending  func()
	endOnce sync.Once
}

// send sends the recognition's one result event, after Ending.
func (r *RecognizeOp) send(typ string, d mediaEventData) {
	r.endOnce.Do(func() {
		if r.Ending != nil {
			r.Ending()
		}
	})
	r.mediaOp.send(typ, d)
}

// RecognizeReason is why a recognition completed.
type RecognizeReason int

// How a DTMF recognition ends with tones.
const (
	MaxTonesReached RecognizeReason = iota
	StopToneDetected
	InterToneTimeout
)

// RecognizeKind is recognizeInputType.
type RecognizeKind string

// Recognize input types.
const (
	RecognizeDTMF         RecognizeKind = "dtmf"
	RecognizeChoices      RecognizeKind = "choices"
	RecognizeSpeech       RecognizeKind = "speech"
	RecognizeSpeechOrDTMF RecognizeKind = "speechOrDtmf"
)

// Choice is one of a choices recognition's options (Choice).
type Choice struct {
	Label   string
	Phrases []string
	Tone    string // ACS tone name; "" for none
}

// ChoiceBySpeech sends RecognizeCompleted: a phrase of the choice labelled label was said.
func (r *RecognizeOp) ChoiceBySpeech(label, phrase string) {
	r.send("Microsoft.Communication.RecognizeCompleted", mediaEventData{ResultInformation: ResultInformation{Code: 200, SubCode: 8545, Message: "Action completed, speech option matched."},
		RecognitionType: "choices", ChoiceResult: &choiceResult{Label: label, RecognizedPhrase: phrase}})
}

// ChoiceByTone sends RecognizeCompleted: the choice labelled label was picked by its tone.
func (r *RecognizeOp) ChoiceByTone(label string) {
	r.send("Microsoft.Communication.RecognizeCompleted", mediaEventData{ResultInformation: ResultInformation{Code: 200, SubCode: 8533, Message: "Action completed, DTMF option matched."},
		RecognitionType: "choices", ChoiceResult: &choiceResult{Label: label}})
}

// Speech sends RecognizeCompleted with what was said (speech, speechOrDtmf).
func (r *RecognizeOp) Speech(text string) {
	r.send("Microsoft.Communication.RecognizeCompleted", mediaEventData{ResultInformation: ResultInformation{Code: 200, SubCode: 8545, Message: "Action completed, speech recognized."},
		RecognitionType: "speech", SpeechResult: &speechResult{Speech: text}})
}

// NoMatch sends RecognizeFailed: what was said matched no choice.
func (r *RecognizeOp) NoMatch() {
	r.Failed(ResultInformation{Code: 400, SubCode: 8547, Message: "Action failed, speech option not matched."})
}

// IncorrectTone sends RecognizeFailed: the tone pressed is no choice's.
func (r *RecognizeOp) IncorrectTone() {
	r.Failed(ResultInformation{Code: 400, SubCode: 8534, Message: "Action failed, incorrect tone detected."})
}

// NotRecognized sends RecognizeFailed: speech was heard but nothing was recognised.
func (r *RecognizeOp) NotRecognized() {
	r.Failed(ResultInformation{Code: 400, SubCode: 8563, Message: "Action failed, speech could not be recognized."})
}

// RecognizerFailed sends RecognizeFailed: the speech recogniser failed.
func (r *RecognizeOp) RecognizerFailed() {
	r.Failed(ResultInformation{Code: 500, SubCode: 8564, Message: "Action failed, the speech recognizer failed."})
}

// Completed sends RecognizeCompleted with the tones (ACS names).
func (r *RecognizeOp) Completed(tones []string, why RecognizeReason) {
	ri := ResultInformation{Code: 200, SubCode: 8531, Message: "Action completed, max digits received."}
	switch why {
	case StopToneDetected:
		ri = ResultInformation{Code: 200, SubCode: 8514, Message: "Action completed as stop tone was detected."}
	case InterToneTimeout:
		ri = ResultInformation{Code: 200, SubCode: 8532, Message: "Action completed, inter-digit silence timeout reached."}
	}
	if tones == nil {
		tones = []string{}
	}
	r.send("Microsoft.Communication.RecognizeCompleted", mediaEventData{ResultInformation: ri, RecognitionType: "dtmf", DtmfResult: &dtmfResult{Tones: tones}})
}

// InitialSilence sends RecognizeFailed: nothing was pressed (or said) in time.
func (r *RecognizeOp) InitialSilence() {
	r.Failed(ResultInformation{Code: 400, SubCode: 8510, Message: "Action failed, initial silence timeout reached."})
}

// Failed sends RecognizeFailed with ri (the prompt could not play: 400/8535, 400/8536).
func (r *RecognizeOp) Failed(ri ResultInformation) {
	r.send("Microsoft.Communication.RecognizeFailed", mediaEventData{ResultInformation: ri})
}

// Canceled sends RecognizeCanceled.
func (r *RecognizeOp) Canceled() {
	r.send("Microsoft.Communication.RecognizeCanceled", mediaEventData{ResultInformation: riCanceled})
}

// DTMFOp is one sendDtmfTones.
type DTMFOp struct {
	mediaOp
	Target Participant
	Tones  []string // ACS tone names
}

// Completed sends SendDtmfTonesCompleted.
func (d *DTMFOp) Completed() {
	d.send("Microsoft.Communication.SendDtmfTonesCompleted", mediaEventData{ResultInformation: ResultInformation{Code: 200, Message: "Action completed successfully."}})
}

// Failed sends SendDtmfTonesFailed.
func (d *DTMFOp) Failed(ri ResultInformation) {
	d.send("Microsoft.Communication.SendDtmfTonesFailed", mediaEventData{ResultInformation: ri})
}

// ToneNames are the DTMF tone names of ACS (DtmfTone), in RFC 4733 §3.2 event order.
var ToneNames = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "asterisk", "pound", "a", "b", "c", "d"}

// checkTones checks tone names, lower-casing them in place (SDKs send "Pound" or "pound").
func checkTones(field string, tones []string) error {
	for i, t := range tones {
		t = strings.ToLower(t)
		tones[i] = t
		ok := false
		for _, n := range ToneNames {
			ok = ok || n == t
		}
		if !ok {
			return problem.Invalid(field, "%q is not a DTMF tone (zero … nine, asterisk, pound, a … d)", t).WithCode("BadRequest")
		}
	}
	return nil
}

func checkSources(field string, srcs []PlaySource) error {
	if len(srcs) == 0 {
		return problem.Invalid(field, "%s is required", field).WithCode("BadRequest")
	}
	if len(srcs) > 10 {
		return problem.Invalid(field, "%s holds at most 10 sources", field).WithCode("BadRequest")
	}
	for _, s := range srcs {
		switch s.Kind {
		case FileSource:
			if s.URI == "" {
				return problem.Invalid(field, "a file source needs file.uri").WithCode("BadRequest")
			}
		case TextSource:
			if s.Text == "" {
				return problem.Invalid(field, "a text source needs text.text").WithCode("BadRequest")
			}
		case SSMLSource:
			if strings.TrimSpace(s.SSML) == "" {
				return problem.Invalid(field, "an ssml source needs ssml.ssmlText").WithCode("BadRequest")
			}
		default:
			return ErrMediaNotSupported(field, fmt.Sprintf("A play source of kind %q", s.Kind), " (file, text and ssml are)")
		}
	}
	return nil
}

// media returns the connected connection and its media control, or a 400 naming op when the
// transport serves no media on it.
func (a *Automation) media(id, op string) (*Connection, MediaControl, error) {
	c, ctl, err := a.controlled(id)
	if err != nil {
		return nil, nil, err
	}
	m, ok := ctl.(MediaControl)
	if !ok {
		return nil, nil, ErrMediaNotSupported("callConnectionId", op, " on this call")
	}
	return c, m, nil
}

// PlayParams is a play request.
type PlayParams struct {
	Sources   []PlaySource
	Targets   []Participant
	Loop      bool
	Interrupt bool
	Op        OperationParams
}

// Play plays prompts to the targets (everyone when none); PlayStarted and PlayCompleted (or
// PlayFailed / PlayCanceled) follow.
func (a *Automation) Play(id string, p PlayParams) error {
	if err := checkSources("playSources", p.Sources); err != nil {
		return err
	}
	for _, t := range p.Targets {
		if err := checkTarget("playTo", t); err != nil {
			return err
		}
	}
	c, m, err := a.media(id, "play")
	if err != nil {
		return err
	}
	return m.Play(&PlayOp{mediaOp: mediaOp{conn: c, op: p.Op}, Sources: p.Sources, Targets: p.Targets, Loop: p.Loop, Interrupt: p.Interrupt})
}

// RecognizeParams is a recognize request (the REST edge converts seconds).
type RecognizeParams struct {
	Kind                  RecognizeKind // "" is dtmf
	Target                Participant
	MaxTones              int
	StopTones             []string
	InterToneTimeout      time.Duration
	InitialSilenceTimeout time.Duration
	InterruptPrompt       bool
	Prompt                []PlaySource
	InterruptMedia        bool
	Choices               []Choice
	EndSilence            time.Duration
	Language              string
	Op                    OperationParams
}

// maxChoices bounds a choices recognition (its phrases become one grammar).
const maxChoices = 30

// checkSpeech checks what choices, speech and speechOrDtmf add: ACS caps their initial
// silence at 20 s; en-US is the one language served.
func checkSpeech(p *RecognizeParams) error {
	if p.InitialSilenceTimeout < 0 || p.InitialSilenceTimeout > 20*time.Second {
		return problem.Invalid("recognizeOptions.initialSilenceTimeoutInSeconds", "initialSilenceTimeoutInSeconds must be 0–20 for %s", p.Kind).WithCode("BadRequest")
	}
	if p.Language != "" && !strings.EqualFold(p.Language, "en-US") {
		return ErrMediaNotSupported("recognizeOptions.speechLanguage", "speechLanguage "+strconv.Quote(p.Language), " (en-US is)")
	}
	switch p.Kind {
	case RecognizeChoices:
		if len(p.Choices) == 0 || len(p.Choices) > maxChoices {
			return problem.Invalid("recognizeOptions.choices", "choices must hold 1–%d choices", maxChoices).WithCode("BadRequest")
		}
		labels := map[string]bool{}
		for i := range p.Choices {
			c := &p.Choices[i]
			if strings.TrimSpace(c.Label) == "" || len(c.Label) > 256 {
				return problem.Invalid("recognizeOptions.choices", "every choice needs a label (at most 256 characters)").WithCode("BadRequest")
			}
			if labels[c.Label] {
				return problem.Invalid("recognizeOptions.choices", "label %q is given twice", c.Label).WithCode("BadRequest")
			}
			labels[c.Label] = true
			if len(c.Phrases) == 0 && c.Tone == "" {
				return problem.Invalid("recognizeOptions.choices", "choice %q needs phrases or a tone", c.Label).WithCode("BadRequest")
			}
			if len(c.Phrases) > 20 {
				return problem.Invalid("recognizeOptions.choices", "choice %q has more than 20 phrases", c.Label).WithCode("BadRequest")
			}
			for _, ph := range c.Phrases {
				if strings.TrimSpace(ph) == "" || len(ph) > 200 {
					return problem.Invalid("recognizeOptions.choices", "choice %q has an empty or over-long phrase", c.Label).WithCode("BadRequest")
				}
			}
			if c.Tone != "" {
				t := []string{c.Tone}
				if err := checkTones("recognizeOptions.choices", t); err != nil {
					return err
				}
				c.Tone = t[0]
			}
		}
	case RecognizeSpeech, RecognizeSpeechOrDTMF:
		if p.EndSilence < 100*time.Millisecond || p.EndSilence > 10*time.Second {
			return problem.Invalid("recognizeOptions.speechOptions.endSilenceTimeoutInMs", "endSilenceTimeoutInMs must be 100–10000").WithCode("BadRequest")
		}
	}
	return nil
}

// Recognize collects DTMF tones, a choice or speech from the target, after an optional prompt.
func (a *Automation) Recognize(id string, p RecognizeParams) error {
	if err := checkTarget("recognizeOptions.targetParticipant", p.Target); err != nil {
		return err
	}
	switch p.Kind {
	case "":
		p.Kind = RecognizeDTMF
	case RecognizeDTMF:
	case RecognizeChoices, RecognizeSpeech, RecognizeSpeechOrDTMF:
		if err := checkSpeech(&p); err != nil {
			return err
		}
	default:
		return problem.Invalid("recognizeInputType", "recognizeInputType must be dtmf, choices, speech or speechOrDtmf").WithCode("BadRequest")
	}
	if p.Kind == RecognizeChoices {
		// A choice's tone is one key; choices have no speechOptions: a second of quiet ends
		// the phrase.
		p.MaxTones, p.InterToneTimeout, p.EndSilence = 1, 2*time.Second, time.Second
	}
	if p.Kind == RecognizeSpeech {
		p.MaxTones, p.InterToneTimeout, p.StopTones = 1, 2*time.Second, nil // no keys
	}
	if p.MaxTones < 1 || p.MaxTones > 60 {
		return problem.Invalid("recognizeOptions.dtmfOptions.maxTonesToCollect", "maxTonesToCollect must be 1–60").WithCode("BadRequest")
	}
	if p.InterToneTimeout < time.Second || p.InterToneTimeout > 60*time.Second {
		return problem.Invalid("recognizeOptions.dtmfOptions.interToneTimeoutInSeconds", "interToneTimeoutInSeconds must be 1–60").WithCode("BadRequest")
	}
	if p.InitialSilenceTimeout < 0 || p.InitialSilenceTimeout > 300*time.Second {
		return problem.Invalid("recognizeOptions.initialSilenceTimeoutInSeconds", "initialSilenceTimeoutInSeconds must be 0–300").WithCode("BadRequest")
	}
	if err := checkTones("recognizeOptions.dtmfOptions.stopTones", p.StopTones); err != nil {
		return err
	}
	if len(p.Prompt) > 0 {
		if err := checkSources("playPrompts", p.Prompt); err != nil {
			return err
		}
	}
	c, m, err := a.media(id, "startRecognizing")
	if err != nil {
		return err
	}
	return m.Recognize(&RecognizeOp{mediaOp: mediaOp{conn: c, op: p.Op}, Kind: p.Kind, Target: p.Target, MaxTones: p.MaxTones, StopTones: p.StopTones,
		InterToneTimeout: p.InterToneTimeout, InitialSilenceTimeout: p.InitialSilenceTimeout, InterruptPrompt: p.InterruptPrompt,
		Prompt: p.Prompt, InterruptMedia: p.InterruptMedia, Choices: p.Choices, EndSilence: p.EndSilence, Language: p.Language})
}

// SendDTMF sends tones to the target as RFC 4733 events.
func (a *Automation) SendDTMF(id string, target Participant, tones []string, op OperationParams) error {
	if len(tones) == 0 || len(tones) > 18 {
		return problem.Invalid("tones", "tones must hold 1–18 tones").WithCode("BadRequest")
	}
	if err := checkTones("tones", tones); err != nil {
		return err
	}
	if err := checkTarget("targetParticipant", target); err != nil {
		return err
	}
	c, m, err := a.media(id, "sendDtmfTones")
	if err != nil {
		return err
	}
	return m.SendDTMF(&DTMFOp{mediaOp: mediaOp{conn: c, op: op}, Target: target, Tones: tones})
}

// CancelMedia cancels every play and recognition of the call (PlayCanceled, RecognizeCanceled).
func (a *Automation) CancelMedia(id string) error {
	_, m, err := a.media(id, "cancelAllMediaOperations")
	if err != nil {
		return err
	}
	m.CancelMedia()
	return nil
}
