package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// MediaDeps are what bot calls need to speak and listen (Call Automation's play, recognize
// and sendDtmfTones). Without them (Deps.Media nil) media operations answer 400.
type MediaDeps struct {
	// Scheduler paces every prompt's RTP.
	Scheduler *rtpmedia.Scheduler
	// Fetcher fetches FileSource prompts (through the SSRF guard's client) and caches prompts.
	Fetcher *playsrc.Fetcher
	// Synth speaks TextSource and SsmlSource prompts; nil: they fail (PlayFailed).
	Synth speech.Synthesizer
	// ASR recognises choices and speech (botrecognize.go); nil: those recognitions answer 400.
	ASR speech.Recognizer
}

// The media of a bot call (the app's side of a person's leg): telgw's anchored leg toward the
// person is where the app speaks (an rtpmedia.Player writing on the leg) and listens (RFC 4733
// telephone-events the leg's read loop hands to the party's partyMedia), on a SIP or WebRTC leg;
// with two people or more the call is mixed first (conference.go).

var _ calls.MediaControl = (*botCall)(nil)

// partyMedia is the app's media toward one person.
type partyMedia struct {
	player  *rtpmedia.Player
	codec   audio.Codec
	eventPT uint8 // what the person sends telephone-events with

	rxMu  sync.Mutex
	rx    dtmf.Receiver
	det   dtmf.Detector // in-band tones, on legs without telephone-event
	hdr   rtp.Header
	pcm   [480]int16 // one decoded packet (up to 60 ms)
	found []dtmf.Tone

	mu  sync.Mutex
	gen uint64       // bumped by CancelMedia: plays still loading are then canceled
	rec *recognition // the recognition under way
	// load serialises prompt loading so plays queue in request order; pending counts the plays
	// loading or queued, bounded by maxPendingPlays.
	load    sync.Mutex
	pending atomic.Int32

	// cont is the continuous DTMF recognition under way (botcontinuous.go); hold the hold
	// music playing (bothold.go, guarded by mu).
	cont atomic.Pointer[continuousDTMF]
	hold *holdMusic
}

// maxPendingPlays bounds the plays one person may have loading or queued: an app looping on
// play cannot pile up goroutines and prompts.
const maxPendingPlays = 32

// mediaInfo is what a person's leg negotiated: the codec and telephone-event payload type
// telgw sends with (the peer's answer when telgw offered, else telgw's answer) and the
// telephone-event payload type the person sends with (telgw's SDP: what telgw receives,
// RFC 3264 §5.1).
type mediaInfo struct {
	codec       sdp.Codec
	eventPT     uint8
	recvEventPT uint8
}

// mediaInfo reads side's negotiated media from the SDP exchanged with it.
func (c *call) mediaInfo(side int) mediaInfo {
	sent := c.lastSent(side)
	send := sent
	if side == 1 {
		c.mu.Lock()
		if c.answerB != nil {
			send = c.answerB
		}
		c.mu.Unlock()
	}
	return mediaInfo{codec: firstCodec(send), eventPT: eventPT(send), recvEventPT: eventPT(sent)}
}

// eventPT is the telephone-event/8000 payload type of an SDP body (RFC 4733 §7.1.1); 0: none.
func eventPT(body []byte) uint8 {
	if s, err := sdp.Parse(body); err == nil {
		if m := s.Audio(); m != nil {
			for _, co := range m.Codecs() {
				if co.Name == "TELEPHONE-EVENT" && co.Rate == 8000 {
					return co.PT
				}
			}
		}
	}
	return 0
}

var playSeq atomic.Uint64

// fromPerson takes one RTP packet the person sent while no one else hears it (the app's side):
// telephone-events (RFC 4733 §2.5) become tones for the recognition under way; on a leg that
// negotiated none, the G.711 audio is searched for in-band tones (Goertzel, ITU-T Q.24) while a
// recognition runs.
func (pm *partyMedia) fromPerson(pkt []byte) {
	pm.mu.Lock()
	r := pm.rec
	pm.mu.Unlock()
	cont := pm.cont.Load()
	if r == nil && cont == nil && pm.eventPT == 0 {
		return // in-band detection costs CPU: only while someone listens
	}
	pm.rxMu.Lock()
	n, err := pm.hdr.Unmarshal(pkt)
	if err != nil || n > len(pkt) {
		pm.rxMu.Unlock()
		return
	}
	listen := r != nil && r.frames != nil // a speech recognition hears the audio (botrecognize.go)
	var pcm []int16
	if pt := pm.hdr.PayloadType; pt == uint8(pm.codec) && len(pkt)-n <= len(pm.pcm) && (pm.eventPT == 0 || listen) {
		pcm = pm.codec.Decode(pm.pcm[:0], pkt[n:])
	}
	var tones []dtmf.Tone
	switch pt := pm.hdr.PayloadType; {
	case pm.eventPT != 0 && pt == pm.eventPT:
		if t, ok := pm.rx.Push(pm.hdr.Timestamp, pkt[n:]); ok {
			tones = append(pm.found[:0], t)
		}
	case pm.eventPT == 0 && pcm != nil:
		tones = pm.det.Process(pm.found[:0], pcm)
	}
	pm.found = tones[:0:cap(tones)]
	if listen && pcm != nil {
		r.hear(pcm)
	}
	pm.rxMu.Unlock()
	if cont != nil {
		for _, t := range tones {
			cont.push(t)
		}
	}
	if r == nil {
		return
	}
	for _, t := range tones {
		select {
		case r.tones <- t:
		default: // more than a recognition can take at once: a flood, dropped
		}
	}
}

// mediaFor returns the app's media toward target (SIP or WebRTC leg), or, for the zero
// participant, toward the one person on the call or (a play on a call with more) everyone;
// op names the operation in a 400.
func (b *botCall) mediaFor(target calls.Participant, field, op string) (*partyMedia, error) {
	md := b.env.mediaDeps
	if md == nil {
		return nil, calls.ErrMediaNotSupported("callConnectionId", op, ": this telgw serves no media")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.transferred {
		return nil, calls.ErrMediaNotSupported("callConnectionId", op, " on a call the app left")
	}
	return b.mediaForLocked(target, field, op) // conference.go
}

// closeMedia stops every party's player and recognition (the call is over).
func (b *botCall) closeMedia() {
	b.mu.Lock()
	ms := b.medias
	b.medias = nil
	b.mu.Unlock()
	for _, pm := range ms {
		pm.cancel()
		pm.player.Close()
	}
}

// cancel ends the plays and the recognition under way.
func (pm *partyMedia) cancel() {
	pm.mu.Lock()
	pm.gen++
	r := pm.rec
	pm.mu.Unlock()
	pm.player.CancelAll()
	if r != nil {
		r.stop()
	}
}

// loadFailure is a prompt that could not be loaded, as PlayFailed / RecognizeFailed tell it.
func loadFailure(err error) calls.ResultInformation {
	switch {
	case errors.Is(err, audio.ErrFormat):
		return calls.ResultInformation{Code: 400, SubCode: 8535, Message: "Action failed, file format is invalid."}
	case errors.Is(err, errSynth):
		return calls.ResultInformation{Code: 400, SubCode: 8535, Message: "Action failed, the text could not be synthesised."}
	}
	return calls.ResultInformation{Code: 400, SubCode: 8536, Message: "Action failed, file could not be downloaded."}
}

var errSynth = errors.New("speech synthesis failed")

// loadPrompt fetches or synthesises the sources and joins them into one prompt.
func (e *callEnv) loadPrompt(srcs []calls.PlaySource) ([]int16, error) {
	md := e.mediaDeps
	ctx, cancel := context.WithTimeout(e.stop(), 30*time.Second)
	defer cancel()
	var pcm []int16
	for _, s := range srcs {
		var part []int16
		var err error
		switch s.Kind {
		case calls.FileSource:
			part, err = md.Fetcher.File(ctx, s.URI, s.CacheID)
		case calls.TextSource, calls.SSMLSource:
			if md.Synth == nil {
				return nil, fmt.Errorf("%w: no synthesiser", errSynth)
			}
			req := speech.SynthRequest{Text: s.Text, VoiceName: s.VoiceName, Locale: s.SourceLocale, VoiceKind: s.VoiceKind}
			key := "tts:" + s.VoiceName + "|" + s.SourceLocale + "|" + s.VoiceKind + "|" + s.Text
			if s.Kind == calls.SSMLSource {
				req = speech.SynthRequest{Text: s.SSML, SSML: true} // speech.CleanSSML runs before espeak-ng
				key = "ssml:" + s.SSML
			}
			key = playsrc.CacheKey(s.CacheID, key)
			part, err = md.Fetcher.Load(ctx, key, func(ctx context.Context) ([]int16, error) {
				p, err := md.Synth.Synthesize(ctx, req)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", errSynth, err)
				}
				return p, nil
			})
		default:
			err = fmt.Errorf("%w: source kind %q", audio.ErrFormat, s.Kind)
		}
		if err != nil {
			return nil, err
		}
		pcm = append(pcm, part...)
	}
	return pcm, nil
}

// Play implements calls.MediaControl.
func (b *botCall) Play(op *calls.PlayOp) error {
	var target calls.Participant
	if len(op.Targets) > 1 {
		return b.playToSeveral(op) // conference.go
	}
	if len(op.Targets) == 1 {
		target = op.Targets[0]
	}
	pm, err := b.mediaFor(target, "playTo", "play")
	if err != nil {
		return err
	}
	if pm.pending.Add(1) > maxPendingPlays {
		pm.pending.Add(-1)
		return problem.Conflict("callConnectionId", "%d plays are already queued for this participant", maxPendingPlays).WithCode("Conflict")
	}
	pm.mu.Lock()
	gen := pm.gen
	pm.mu.Unlock()
	go func() {
		pm.load.Lock()
		defer pm.load.Unlock()
		pcm, err := b.env.loadPrompt(op.Sources)
		pm.mu.Lock()
		canceled := pm.gen != gen
		pm.mu.Unlock()
		switch {
		case canceled:
			pm.pending.Add(-1)
			op.Canceled()
			return
		case err != nil:
			pm.pending.Add(-1)
			b.env.log.Info("prompt not loaded", "call_id", b.main.id, "err", err)
			op.Failed(loadFailure(err))
			return
		}
		pm.player.Enqueue(&rtpmedia.Play{ID: "play-" + strconv.FormatUint(playSeq.Add(1), 10), PCM: pcm, Loop: op.Loop,
			OnStart: op.Started, OnDone: func(o rtpmedia.Outcome) {
				pm.pending.Add(-1)
				switch o {
				case rtpmedia.Completed:
					op.Completed()
				case rtpmedia.Canceled:
					op.Canceled()
				default:
					op.Failed(calls.ResultInformation{Code: 500, SubCode: 8500, Message: "Action failed, the media leg closed."})
				}
			}}, op.Interrupt)
	}()
	return nil
}

// SendDTMF implements calls.MediaControl: RFC 4733 events toward the person.
func (b *botCall) SendDTMF(op *calls.DTMFOp) error {
	pm, err := b.mediaFor(op.Target, "targetParticipant", "sendDtmfTones")
	if err != nil {
		return err
	}
	tones := make([]dtmf.Tone, 0, len(op.Tones))
	for _, n := range op.Tones {
		t, err := dtmf.ParseTone(n)
		if err != nil {
			return calls.ErrMediaNotSupported("tones", "tone "+n, "")
		}
		tones = append(tones, t)
	}
	err = pm.player.SendDTMF(tones, func(o rtpmedia.Outcome) {
		if o == rtpmedia.Completed {
			op.Completed()
			return
		}
		op.Failed(calls.ResultInformation{Code: 400, SubCode: 8508, Message: "Action failed, the operation was cancelled."})
	})
	if errors.Is(err, rtpmedia.ErrNoEvents) {
		return calls.ErrMediaNotSupported("targetParticipant", "sendDtmfTones", ": the participant's leg negotiated no telephone-event (RFC 4733)")
	}
	return err
}

// CancelMedia implements calls.MediaControl.
func (b *botCall) CancelMedia() {
	b.mu.Lock()
	ms := append([]*partyMedia(nil), b.medias...) // the people's and the app's voice in a conference
	b.mu.Unlock()
	for _, pm := range ms {
		pm.cancel()
	}
}

// recognition is one recognize under way on a party.
type recognition struct {
	op     *calls.RecognizeOp
	tones  chan dtmf.Tone
	prompt chan struct{} // closed when the prompt ended
	quit   chan struct{}
	once   sync.Once
	// frames carries the person's audio in 20 ms frames to a speech recognition
	// (botrecognize.go; nil for DTMF); acc gathers a frame (guarded by the party's rxMu).
	frames chan []int16
	acc    []int16
}

func (r *recognition) stop() { r.once.Do(func() { close(r.quit) }) }

// Recognize implements calls.MediaControl (recognizeInputType dtmf here; choices, speech and
// speechOrDtmf in botrecognize.go).
func (b *botCall) Recognize(op *calls.RecognizeOp) error {
	if op.Kind != calls.RecognizeDTMF && b.env.mediaDeps != nil && b.env.mediaDeps.ASR == nil {
		return calls.ErrMediaNotSupported("recognizeInputType", "recognizeInputType "+string(op.Kind), ": this telgw has no speech recogniser (pocketsphinx)")
	}
	pm, err := b.mediaFor(op.Target, "recognizeOptions.targetParticipant", "startRecognizing")
	if err != nil {
		return err
	}
	cfg := dtmf.CollectConfig{MaxTones: op.MaxTones, InterToneTimeout: op.InterToneTimeout,
		InitialSilenceTimeout: op.InitialSilenceTimeout, InterruptPrompt: op.InterruptPrompt}
	for _, n := range op.StopTones {
		t, err := dtmf.ParseTone(n)
		if err != nil {
			return calls.ErrMediaNotSupported("recognizeOptions.dtmfOptions.stopTones", "stop tone "+n, "")
		}
		cfg.StopTones = append(cfg.StopTones, t)
	}
	if err := cfg.Validate(); err != nil {
		return calls.ErrMediaNotSupported("recognizeOptions.dtmfOptions", "these DTMF options", ": "+err.Error())
	}
	r := &recognition{op: op, tones: make(chan dtmf.Tone, 64), prompt: make(chan struct{}), quit: make(chan struct{})}
	if op.Kind != calls.RecognizeDTMF {
		r.frames = make(chan []int16, 256) // 5 s of audio
	}
	pm.mu.Lock()
	if pm.rec != nil {
		pm.mu.Unlock()
		return calls.ErrMediaNotSupported("callConnectionId", "a second recognition", " while one is under way")
	}
	pm.rec = r
	gen := pm.gen
	pm.mu.Unlock()
	op.Ending = func() { pm.endRecognition(r) }
	if op.InterruptMedia {
		pm.player.CancelAll()
	}
	if r.frames != nil {
		go b.recognizeSpeech(pm, r, cfg, gen)
		return nil
	}
	go b.recognize(pm, r, cfg, gen)
	return nil
}

// endRecognition frees pm for the next recognition when r is the one under way.
func (pm *partyMedia) endRecognition(r *recognition) {
	pm.mu.Lock()
	if pm.rec == r {
		pm.rec = nil
	}
	pm.mu.Unlock()
}

func (b *botCall) recognize(pm *partyMedia, r *recognition, cfg dtmf.CollectConfig, gen uint64) {
	defer pm.endRecognition(r) // also when no result was sent
	op := r.op
	playID := ""
	if len(op.Prompt) > 0 {
		pm.load.Lock()
		pcm, err := b.env.loadPrompt(op.Prompt)
		pm.mu.Lock()
		canceled := pm.gen != gen
		pm.mu.Unlock()
		if canceled {
			pm.load.Unlock()
			op.Canceled()
			return
		}
		if err != nil {
			pm.load.Unlock()
			b.env.log.Info("prompt not loaded", "call_id", b.main.id, "err", err)
			op.Failed(loadFailure(err))
			return
		}
		playID = "prompt-" + strconv.FormatUint(playSeq.Add(1), 10)
		pm.player.Enqueue(&rtpmedia.Play{ID: playID, PCM: pcm, OnDone: func(rtpmedia.Outcome) { close(r.prompt) }}, false)
		pm.load.Unlock()
	}
	col, err := dtmf.NewCollector(cfg, time.Now(), playID != "")
	if err != nil { // validated above
		op.Failed(calls.ResultInformation{Code: 400, SubCode: 8500, Message: err.Error()})
		return
	}
	prompt := r.prompt
	if playID == "" {
		prompt = nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var out dtmf.Outcome
		timer.Stop()
		var fire <-chan time.Time
		if d := col.Deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
			fire = timer.C
		}
		select {
		case t := <-r.tones:
			out = col.Tone(t, time.Now())
			if out.InterruptPrompt {
				pm.player.Cancel(playID)
			}
		case <-prompt:
			prompt = nil
			out = col.PromptDone(time.Now())
		case <-fire:
			out = col.Tick(time.Now())
		case <-r.quit:
			out = col.Cancel()
			pm.player.Cancel(playID)
		case <-b.over: // the call ended as the recognition started
			out = col.Cancel()
		}
		if !out.Done {
			continue
		}
		if out.Reason != dtmf.InitialSilenceTimeout && out.Reason != dtmf.Canceled && prompt != nil {
			pm.player.Cancel(playID) // decided during the prompt: the prompt stops
		}
		if !reportDTMF(op, out) {
			op.InitialSilence()
		}
		return
	}
}

// reportDTMF sends the result of a DTMF collection that is done (RecognizeCompleted with the
// tones, or RecognizeCanceled) and is true; an initial silence it leaves to the caller (false):
// a DTMF recognition fails on it, a speechOrDtmf one lets the speech side decide.
func reportDTMF(op *calls.RecognizeOp, out dtmf.Outcome) bool {
	names := make([]string, len(out.Tones))
	for i, t := range out.Tones {
		names[i] = t.String()
	}
	switch out.Reason {
	case dtmf.MaxTonesReached:
		op.Completed(names, calls.MaxTonesReached)
	case dtmf.StopToneDetected:
		op.Completed(names, calls.StopToneDetected)
	case dtmf.InterToneTimeout:
		op.Completed(names, calls.InterToneTimeout)
	case dtmf.InitialSilenceTimeout:
		return false
	default:
		op.Canceled()
	}
	return true
}
