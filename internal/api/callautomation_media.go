package api

import (
	"net/http"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

// Call Automation's callMedia operations (CallMedia_* of the 2025-05-15 spec), served on
// POST /calling/callConnections/{callConnectionId}:{action}:
//
//	:play                            CallMedia_Play (play and playToAll) → 202
//	:recognize                       CallMedia_Recognize (dtmf, choices, speech, speechOrDtmf) → 202
//	:sendDtmfTones                   CallMedia_SendDtmfTones → 202 {operationContext}
//	:cancelAllMediaOperations        CallMedia_CancelAllMediaOperations → 202
//	:hold, :unhold                   CallMedia_Hold, CallMedia_Unhold → 200
//	:startContinuousDtmfRecognition  CallMedia_StartContinuousDtmfRecognition → 200
//	:stopContinuousDtmfRecognition   CallMedia_StopContinuousDtmfRecognition → 200
//
// The spec's other media operations answer 400 NotSupported naming the operation (not 404):
// start/stop/updateTranscription, start/stopMediaStreaming.

// unsupportedMedia are the spec's media operations telgw does not serve.
var unsupportedMedia = map[string]bool{
	"startTranscription": true, "stopTranscription": true, "updateTranscription": true,
	"startMediaStreaming": true, "stopMediaStreaming": true,
}

// playSourceJSON is PlaySource.
type playSourceJSON struct {
	Kind              string `json:"kind"`
	PlaySourceCacheID string `json:"playSourceCacheId"`
	File              *struct {
		URI string `json:"uri"`
	} `json:"file"`
	Text *struct {
		Text         string `json:"text"`
		SourceLocale string `json:"sourceLocale"`
		VoiceKind    string `json:"voiceKind"`
		VoiceName    string `json:"voiceName"`
		// CustomVoiceEndpointID names an Azure custom neural voice: refused.
		CustomVoiceEndpointID string `json:"customVoiceEndpointId"`
	} `json:"text"`
	SSML *struct {
		SSMLText              string `json:"ssmlText"`
		CustomVoiceEndpointID string `json:"customVoiceEndpointId"`
	} `json:"ssml"`
}

func (s *playSourceJSON) source(field string) (calls.PlaySource, error) {
	out := calls.PlaySource{Kind: calls.PlaySourceKind(s.Kind), CacheID: s.PlaySourceCacheID}
	switch s.Kind {
	case "file":
		if s.File == nil {
			return out, problem.Invalid(field, "a file source needs file").WithCode("BadRequest")
		}
		if err := checkCallbackURI(s.File.URI); err != nil {
			return out, problem.Invalid(field, "file.uri must be an absolute http or https URL").WithCode("BadRequest")
		}
		out.URI = s.File.URI
	case "text":
		if s.Text == nil {
			return out, problem.Invalid(field, "a text source needs text").WithCode("BadRequest")
		}
		if s.Text.CustomVoiceEndpointID != "" {
			return out, calls.ErrMediaNotSupported(field, "customVoiceEndpointId", " (custom neural voices need Azure; telgw speaks with espeak-ng)")
		}
		out.Text, out.SourceLocale, out.VoiceKind, out.VoiceName = s.Text.Text, s.Text.SourceLocale, s.Text.VoiceKind, s.Text.VoiceName
	case "ssml":
		if s.SSML == nil {
			return out, problem.Invalid(field, "an ssml source needs ssml").WithCode("BadRequest")
		}
		if s.SSML.CustomVoiceEndpointID != "" {
			return out, calls.ErrMediaNotSupported(field, "customVoiceEndpointId", " (custom neural voices need Azure; telgw speaks with espeak-ng)")
		}
		out.SSML = s.SSML.SSMLText
	case "":
		return out, problem.Invalid(field, "kind is required").WithCode("BadRequest")
	}
	return out, nil
}

func sources(field string, in []playSourceJSON) ([]calls.PlaySource, error) {
	out := make([]calls.PlaySource, 0, len(in))
	for i := range in {
		s, err := in[i].source(field)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

type playJSON struct {
	PlaySources                 []playSourceJSON `json:"playSources"`
	PlayTo                      []identifierJSON `json:"playTo"`
	InterruptCallMediaOperation bool             `json:"interruptCallMediaOperation"`
	PlayOptions                 *struct {
		Loop bool `json:"loop"`
	} `json:"playOptions"`
	midCallOpJSON
}

func (h *callAutomationHandlers) play(w http.ResponseWriter, r *http.Request, id string) error {
	var req playJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	p := calls.PlayParams{Interrupt: req.InterruptCallMediaOperation, Op: op, Loop: req.PlayOptions != nil && req.PlayOptions.Loop}
	if p.Sources, err = sources("playSources", req.PlaySources); err != nil {
		return err
	}
	for i := range req.PlayTo {
		t, err := req.PlayTo[i].participant("playTo")
		if err != nil {
			return err
		}
		p.Targets = append(p.Targets, t)
	}
	if err := h.a.Play(id, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type recognizeJSON struct {
	RecognizeInputType          string           `json:"recognizeInputType"`
	PlayPrompt                  *playSourceJSON  `json:"playPrompt"`
	PlayPrompts                 []playSourceJSON `json:"playPrompts"`
	InterruptCallMediaOperation bool             `json:"interruptCallMediaOperation"`
	RecognizeOptions            *struct {
		InterruptPrompt                  *bool           `json:"interruptPrompt"`
		InitialSilenceTimeoutInSeconds   *int            `json:"initialSilenceTimeoutInSeconds"`
		TargetParticipant                *identifierJSON `json:"targetParticipant"`
		SpeechLanguage                   string          `json:"speechLanguage"`
		SpeechRecognitionModelEndpointID string          `json:"speechRecognitionModelEndpointId"`
		Choices                          []struct {
			Label   string   `json:"label"`
			Phrases []string `json:"phrases"`
			Tone    string   `json:"tone"`
		} `json:"choices"`
		SpeechOptions *struct {
			EndSilenceTimeoutInMs *int64 `json:"endSilenceTimeoutInMs"`
		} `json:"speechOptions"`
		DtmfOptions *struct {
			InterToneTimeoutInSeconds *int     `json:"interToneTimeoutInSeconds"`
			MaxTonesToCollect         *int     `json:"maxTonesToCollect"`
			StopTones                 []string `json:"stopTones"`
		} `json:"dtmfOptions"`
	} `json:"recognizeOptions"`
	midCallOpJSON
}

func (h *callAutomationHandlers) recognize(w http.ResponseWriter, r *http.Request, id string) error {
	var req recognizeJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	kind := calls.RecognizeKind(req.RecognizeInputType)
	switch kind {
	case calls.RecognizeDTMF, calls.RecognizeChoices, calls.RecognizeSpeech, calls.RecognizeSpeechOrDTMF:
	case "":
		return problem.Invalid("recognizeInputType", "recognizeInputType is required").WithCode("BadRequest")
	default:
		return problem.Invalid("recognizeInputType", "recognizeInputType must be dtmf, choices, speech or speechOrDtmf").WithCode("BadRequest")
	}
	ro := req.RecognizeOptions
	if ro == nil {
		return problem.Invalid("recognizeOptions", "recognizeOptions is required").WithCode("BadRequest")
	}
	if ro.SpeechRecognitionModelEndpointID != "" {
		return calls.ErrMediaNotSupported("recognizeOptions.speechRecognitionModelEndpointId", "speechRecognitionModelEndpointId", " (custom speech models need Azure)")
	}
	// ACS defaults: one tone, 2 s between tones, 5 s of initial silence, prompt interruptible,
	// 2 s of end silence (the SDK's).
	p := calls.RecognizeParams{Kind: kind, MaxTones: 1, InterToneTimeout: 2 * time.Second, InitialSilenceTimeout: 5 * time.Second,
		InterruptPrompt: true, InterruptMedia: req.InterruptCallMediaOperation, Op: op, EndSilence: 2 * time.Second, Language: ro.SpeechLanguage}
	for _, c := range ro.Choices {
		p.Choices = append(p.Choices, calls.Choice{Label: c.Label, Phrases: c.Phrases, Tone: c.Tone})
	}
	if so := ro.SpeechOptions; so != nil && so.EndSilenceTimeoutInMs != nil {
		ms := *so.EndSilenceTimeoutInMs
		if ms < 0 || ms > 3_600_000 {
			return problem.Invalid("recognizeOptions.speechOptions.endSilenceTimeoutInMs", "endSilenceTimeoutInMs must be 100–10000").WithCode("BadRequest")
		}
		p.EndSilence = time.Duration(ms) * time.Millisecond
	}
	if p.Target, err = ro.TargetParticipant.participant("recognizeOptions.targetParticipant"); err != nil {
		return err
	}
	if ro.InterruptPrompt != nil {
		p.InterruptPrompt = *ro.InterruptPrompt
	}
	if ro.InitialSilenceTimeoutInSeconds != nil {
		if s := *ro.InitialSilenceTimeoutInSeconds; s < 0 || s > 3600 {
			return problem.Invalid("recognizeOptions.initialSilenceTimeoutInSeconds", "initialSilenceTimeoutInSeconds must be 0–300").WithCode("BadRequest")
		}
		p.InitialSilenceTimeout = time.Duration(*ro.InitialSilenceTimeoutInSeconds) * time.Second
	}
	if d := ro.DtmfOptions; d != nil {
		if d.MaxTonesToCollect != nil {
			p.MaxTones = *d.MaxTonesToCollect
		}
		if d.InterToneTimeoutInSeconds != nil {
			p.InterToneTimeout = time.Duration(*d.InterToneTimeoutInSeconds) * time.Second
		}
		p.StopTones = d.StopTones
	}
	prompts := req.PlayPrompts
	if req.PlayPrompt != nil {
		prompts = append([]playSourceJSON{*req.PlayPrompt}, prompts...)
	}
	if p.Prompt, err = sources("playPrompts", prompts); err != nil {
		return err
	}
	if err := h.a.Recognize(id, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type sendDtmfJSON struct {
	Tones             []string        `json:"tones"`
	TargetParticipant *identifierJSON `json:"targetParticipant"`
	midCallOpJSON
}

func (h *callAutomationHandlers) sendDtmf(w http.ResponseWriter, r *http.Request, id string) error {
	var req sendDtmfJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	t, err := req.TargetParticipant.participant("targetParticipant")
	if err != nil {
		return err
	}
	if err := h.a.SendDTMF(id, t, req.Tones, op); err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, operationContextJSON{op.OperationContext})
	return nil
}

func (h *callAutomationHandlers) cancelAllMedia(w http.ResponseWriter, r *http.Request, id string) error {
	if err := h.a.CancelMedia(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mediaAction serves a media operation; handled is false when act is none.
func (h *callAutomationHandlers) mediaAction(w http.ResponseWriter, r *http.Request, id, act string) (handled bool, err error) {
	switch {
	case act == "play":
		return true, h.play(w, r, id)
	case act == "recognize":
		return true, h.recognize(w, r, id)
	case act == "sendDtmfTones":
		return true, h.sendDtmf(w, r, id)
	case act == "cancelAllMediaOperations":
		return true, h.cancelAllMedia(w, r, id)
	case act == "hold":
		return true, h.hold(w, r, id)
	case act == "unhold":
		return true, h.unhold(w, r, id)
	case act == "startContinuousDtmfRecognition", act == "stopContinuousDtmfRecognition":
		return true, h.continuousDtmf(w, r, id, act == "startContinuousDtmfRecognition")
	case unsupportedMedia[act]:
		return true, calls.ErrMediaNotSupported("path", act, "")
	}
	return false, nil
}

type holdJSON struct {
	TargetParticipant *identifierJSON `json:"targetParticipant"`
	PlaySourceInfo    *playSourceJSON `json:"playSourceInfo"`
	midCallOpJSON
}

func (h *callAutomationHandlers) hold(w http.ResponseWriter, r *http.Request, id string) error {
	var req holdJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	p := calls.HoldParams{Op: op}
	if p.Target, err = req.TargetParticipant.participant("targetParticipant"); err != nil {
		return err
	}
	if req.PlaySourceInfo != nil {
		s, err := req.PlaySourceInfo.source("playSourceInfo")
		if err != nil {
			return err
		}
		p.Music = &s
	}
	if err := h.a.Hold(id, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// targetOpJSON is UnholdRequest and ContinuousDtmfRecognitionRequest.
type targetOpJSON struct {
	TargetParticipant *identifierJSON `json:"targetParticipant"`
	midCallOpJSON
}

func (h *callAutomationHandlers) unhold(w http.ResponseWriter, r *http.Request, id string) error {
	var req targetOpJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	t, err := req.TargetParticipant.participant("targetParticipant")
	if err != nil {
		return err
	}
	if err := h.a.Unhold(id, t, op); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *callAutomationHandlers) continuousDtmf(w http.ResponseWriter, r *http.Request, id string, start bool) error {
	var req targetOpJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	t, err := req.TargetParticipant.participant("targetParticipant")
	if err != nil {
		return err
	}
	if start {
		err = h.a.StartContinuousDTMF(id, t, op)
	} else {
		err = h.a.StopContinuousDTMF(id, t, op)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
