package sip

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
)

// Choices, speech and speechOrDtmf recognitions (startRecognizing with recognizeInputType other
// than dtmf). The relay goroutine decodes what the person sends (G.711) and hands it over in
// 20 ms frames (recognition.hear); this recognition's own goroutine runs a speech.Endpointer on
// them to find one utterance, then the recogniser (pocketsphinx: a process, run here, never on
// the media path) and, for choices, speech.MatchSpeech. Tones go as for DTMF: a choice's tone
// (speech.MatchTone) or, for speechOrDtmf, a dtmf.Collector.
//
// Timing (ACS): initialSilenceTimeout counts from the prompt's end (from the start without
// one) until the person starts speaking or presses a key; endSilenceTimeoutInMs of quiet ends
// the utterance. With interruptPrompt, speech (the endpointer's onset, 60 ms of voice) or a key
// during the prompt stops it (barge-in); without it, what is said during the prompt is
// ignored. Results:
//
//	choices, a phrase said     RecognizeCompleted 200/8545, choiceResult {label, recognizedPhrase}
//	choices, a choice's tone   RecognizeCompleted 200/8533, choiceResult {label}
//	choices, no phrase matched RecognizeFailed 400/8547; another tone: 400/8534
//	speech                     RecognizeCompleted 200/8545, speechResult {speech}; nothing
//	                           recognised: RecognizeFailed 400/8563
//	speechOrDtmf, keys         RecognizeCompleted as dtmf (8531/8514/8532)
//	nothing in time            RecognizeFailed 400/8510; recogniser failure 500/8564

// hear takes decoded audio the person sent (called by the relay with the party's rxMu held)
// and passes it on in 20 ms frames; frames the recognition cannot take at once are dropped.
func (r *recognition) hear(pcm []int16) {
	r.acc = append(r.acc, pcm...)
	for len(r.acc) >= audio.FrameSamples {
		f := make([]int16, audio.FrameSamples)
		copy(f, r.acc)
		r.acc = append(r.acc[:0], r.acc[audio.FrameSamples:]...)
		select {
		case r.frames <- f:
		default:
		}
	}
}

// maxUtterance bounds one utterance (ACS caps speech at about 20 s too).
const maxUtterance = 20 * time.Second

// asrSlots bounds the recogniser processes running at once (each takes a core while it runs):
// many callers talking at once queue for a slot instead of forking without limit.
var asrSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// startPrompt loads and queues the recognition's prompt, if any; it returns the play's id (""
// without a prompt) and false when the recognition already ended (canceled, or the prompt
// failed: reported).
func (b *botCall) startPrompt(pm *partyMedia, r *recognition, gen uint64) (string, bool) {
	op := r.op
	if len(op.Prompt) == 0 {
		return "", true
	}
	pm.load.Lock()
	defer pm.load.Unlock()
	pcm, err := b.env.loadPrompt(op.Prompt)
	pm.mu.Lock()
	canceled := pm.gen != gen
	pm.mu.Unlock()
	if canceled {
		op.Canceled()
		return "", false
	}
	if err != nil {
		b.env.log.Info("prompt not loaded", "call_id", b.main.id, "err", err)
		op.Failed(loadFailure(err))
		return "", false
	}
	id := "prompt-" + strconv.FormatUint(playSeq.Add(1), 10)
	pm.player.Enqueue(&rtpmedia.Play{ID: id, PCM: pcm, OnDone: func(rtpmedia.Outcome) { close(r.prompt) }}, false)
	return id, true
}

// asrResult is the recogniser's answer.
type asrResult struct {
	text string
	err  error
}

func (b *botCall) recognizeSpeech(pm *partyMedia, r *recognition, cfg dtmf.CollectConfig, gen uint64) {
	defer pm.endRecognition(r) // also when no result was sent
	op := r.op
	playID, ok := b.startPrompt(pm, r, gen)
	if !ok {
		return
	}
	prompting := playID != ""
	prompt := r.prompt
	if !prompting {
		prompt = nil
	}
	// The endpointer's own initial-silence count needs frames; a wall-clock timer below also
	// covers a person who sends no RTP at all (silence suppression).
	ep, err := speech.NewEndpointer(speech.EndpointConfig{EndSilence: op.EndSilence, MaxUtterance: maxUtterance}, prompting)
	if err != nil { // validated at the edge
		b.env.log.Error("endpointer", "call_id", b.main.id, "err", err)
		op.RecognizerFailed()
		return
	}
	var col *dtmf.Collector
	if op.Kind == calls.RecognizeSpeechOrDTMF {
		cfg.InitialSilenceTimeout = 0 // the timer below decides, for keys and speech alike
		if col, err = dtmf.NewCollector(cfg, time.Now(), prompting); err != nil {
			op.RecognizerFailed()
			return
		}
	}
	var silence <-chan time.Time
	startSilence := func() {
		if op.InitialSilenceTimeout > 0 {
			silence = time.After(op.InitialSilenceTimeout)
		}
	}
	if !prompting {
		startSilence()
	}
	stopPrompt := func() {
		if prompt != nil {
			pm.player.Cancel(playID)
		}
	}
	var interTone *time.Timer // speechOrDtmf: the collector's deadline
	var interC <-chan time.Time
	defer func() {
		if interTone != nil {
			interTone.Stop()
		}
	}()
	armCollector := func() {
		if col == nil {
			return
		}
		if interTone != nil {
			interTone.Stop()
			interC = nil
		}
		if d := col.Deadline(); !d.IsZero() {
			interTone = time.NewTimer(time.Until(d))
			interC = interTone.C
		}
	}
	// dtmfDone reports a speechOrDtmf collection that ended; true when the recognition is over.
	dtmfDone := func(out dtmf.Outcome) bool {
		if out.InterruptPrompt {
			stopPrompt()
		}
		if !out.Done {
			armCollector()
			return false
		}
		stopPrompt()
		return reportDTMF(op, out) // an initial silence: the speech side decides
	}
	heard := false // speech or a key: the initial silence is over
	var asr chan asrResult
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case f := <-r.frames:
			if asr != nil || prompt != nil && !op.InterruptPrompt {
				continue // recognising already, or listening only after the prompt
			}
			switch ep.Frame(f) {
			case speech.Speaking:
				if !heard {
					heard, silence = true, nil
					if op.InterruptPrompt {
						stopPrompt() // barge-in
					}
				}
			case speech.Utterance, speech.TooLongDone:
				heard, silence = true, nil
				stopPrompt()
				asr = make(chan asrResult, 1)
				pcm := ep.Audio()
				go func() {
					select { // at most asrSlots recognisers run at once, whatever the calls
					case asrSlots <- struct{}{}:
						defer func() { <-asrSlots }()
					case <-ctx.Done():
						asr <- asrResult{err: ctx.Err()}
						return
					}
					var phrases []string
					if op.Kind == calls.RecognizeChoices {
						for _, c := range op.Choices {
							phrases = append(phrases, c.Phrases...)
						}
					}
					text, err := b.env.mediaDeps.ASR.Recognize(ctx, pcm, speech.RecognizeOptions{Language: op.Language, Phrases: phrases})
					asr <- asrResult{text, err}
				}()
			}
		case res := <-asr:
			b.speechResult(op, res)
			return
		case t := <-r.tones:
			if asr != nil {
				continue
			}
			heard, silence = true, nil
			if op.Kind == calls.RecognizeChoices {
				stopPrompt()
				if label, ok := speech.MatchTone(choicesOf(op), t); ok {
					op.ChoiceByTone(label)
				} else {
					op.IncorrectTone()
				}
				return
			}
			if col != nil && dtmfDone(col.Tone(t, time.Now())) {
				return
			}
			if col == nil && op.InterruptPrompt {
				stopPrompt()
			}
		case <-interC:
			interC = nil
			if dtmfDone(col.Tick(time.Now())) {
				return
			}
		case <-prompt:
			prompt = nil
			ep.PromptDone()
			if col != nil {
				if dtmfDone(col.PromptDone(time.Now())) {
					return
				}
			}
			if !heard {
				startSilence()
			}
		case <-silence:
			stopPrompt()
			op.InitialSilence()
			return
		case <-r.quit:
			pm.player.Cancel(playID)
			op.Canceled()
			return
		case <-b.over:
			op.Canceled()
			return
		}
	}
}

// speechResult reports what the recogniser made of the utterance.
func (b *botCall) speechResult(op *calls.RecognizeOp, res asrResult) {
	if res.err != nil {
		if errors.Is(res.err, speech.ErrNoPhrases) {
			op.NoMatch() // no phrase of the choices is in the dictionary: nothing can match
			return
		}
		b.env.log.Info("speech recognition failed", "call_id", b.main.id, "err", res.err)
		op.RecognizerFailed()
		return
	}
	if op.Kind == calls.RecognizeChoices {
		if label, phrase, ok := speech.MatchSpeech(choicesOf(op), res.text); ok {
			op.ChoiceBySpeech(label, phrase)
			return
		}
		op.NoMatch()
		return
	}
	if res.text == "" {
		op.NotRecognized()
		return
	}
	op.Speech(res.text)
}

// choicesOf converts the request's choices for speech.MatchSpeech / MatchTone.
func choicesOf(op *calls.RecognizeOp) []speech.Choice {
	out := make([]speech.Choice, 0, len(op.Choices))
	for _, c := range op.Choices {
		sc := speech.Choice{Label: c.Label, Phrases: c.Phrases}
		if c.Tone != "" {
			if t, err := dtmf.ParseTone(c.Tone); err == nil {
				sc.Tone = &t
			}
		}
		out = append(out, sc)
	}
	return out
}
