package api

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/calls"
)

// fakeMedia is a transport that serves media operations by recording them.
type fakeMedia struct {
	fakeControl
	mu       sync.Mutex
	plays    []*calls.PlayOp
	recs     []*calls.RecognizeOp
	dtmf     []*calls.DTMFOp
	canceled int
	holds    []*calls.HoldOp
	unholds  []*calls.HoldOp
	cont     []*calls.ContinuousDTMFOp
	stops    []calls.OperationParams
}

func (f *fakeMedia) Hold(op *calls.HoldOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holds = append(f.holds, op)
	return nil
}

func (f *fakeMedia) Unhold(op *calls.HoldOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unholds = append(f.unholds, op)
	return nil
}

func (f *fakeMedia) StartContinuousDTMF(op *calls.ContinuousDTMFOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cont = append(f.cont, op)
	return nil
}

func (f *fakeMedia) StopContinuousDTMF(_ calls.Participant, op calls.OperationParams) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, op)
	return true, nil
}

func (f *fakeMedia) Play(op *calls.PlayOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plays = append(f.plays, op)
	return nil
}

func (f *fakeMedia) Recognize(op *calls.RecognizeOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, op)
	return nil
}

func (f *fakeMedia) SendDTMF(op *calls.DTMFOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dtmf = append(f.dtmf, op)
	return nil
}

func (f *fakeMedia) CancelMedia() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canceled++
}

// answerWith offers a bot call whose transport, once answered, is ctl; it returns the
// incomingCallContext to answer.
func answerWith(t *testing.T, a *calls.Automation, pub capturePublisher, ctl calls.CallControl) string {
	t.Helper()
	c := calls.NewCall(time.Now(), calls.Leg{ID: uuid.NewString(), Kind: calls.LegCarrier, Participant: calls.Phone("+12125550199")})
	c.SetFrom("+12125550199")
	c.SetTo("+14155550100")
	c.SetDirection(calls.Inbound)
	in, err := a.Offer(context.Background(), calls.OfferParams{Call: c, Route: calls.BotRoute{URL: "http://app.example/cb"}, Expires: time.Now().Add(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ic := <-pub.ch
	done := make(chan struct{})
	go func() {
		defer close(done)
		d := <-in.Decisions()
		d.Conn.Attach(ctl, calls.Phone("+12125550199"))
		d.Done(nil)
		d.Conn.Connected()
	}()
	t.Cleanup(func() { <-done; in.Close() })
	return ic.IncomingCallContext
}

func TestCallAutomationMedia(t *testing.T) {
	t.Parallel()
	a, pub, _, srv, _ := automationServer(t)
	answer := func(ctl calls.CallControl) string {
		token := answerWith(t, a, pub, ctl)
		var conn callConnectionJSON
		if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, `{"incomingCallContext":"`+token+`","callbackUri":"https://app.example/cb"}`, true, &conn); code != 200 {
			t.Fatalf("answer: %d", code)
		}
		return "/calling/callConnections/" + conn.CallConnectionID
	}
	fm := &fakeMedia{}
	base := answer(fm)
	const caller = `{"kind":"phoneNumber","phoneNumber":{"value":"+12125550199"}}`

	if code := call(t, srv, "POST", base+":play"+caVersion, `{"playSources":[{"kind":"file","file":{"uri":"https://app.example/a.wav"},"playSourceCacheId":"a"},`+
		`{"kind":"text","text":{"text":"hi","voiceName":"en-US-JennyNeural"}}],"playTo":[`+caller+`],"playOptions":{"loop":true},`+
		`"interruptCallMediaOperation":true,"operationContext":"p1"}`, true, nil); code != 202 {
		t.Fatalf("play: %d", code)
	}
	if code := call(t, srv, "POST", base+":recognize"+caVersion, `{"recognizeInputType":"dtmf","playPrompt":{"kind":"file","file":{"uri":"https://app.example/p.wav"}},`+
		`"recognizeOptions":{"targetParticipant":`+caller+`,"interruptPrompt":false,"initialSilenceTimeoutInSeconds":7,`+
		`"dtmfOptions":{"maxTonesToCollect":4,"interToneTimeoutInSeconds":3,"stopTones":["Pound"]}},"operationContext":"r1"}`, true, nil); code != 202 {
		t.Fatalf("recognize: %d", code)
	}
	var sent struct {
		OperationContext string `json:"operationContext"`
	}
	if code := call(t, srv, "POST", base+":sendDtmfTones"+caVersion, `{"tones":["one","asterisk"],"targetParticipant":`+caller+`,"operationContext":"d1"}`, true, &sent); code != 202 || sent.OperationContext != "d1" {
		t.Fatalf("sendDtmfTones: %d %+v", code, sent)
	}
	if code := call(t, srv, "POST", base+":cancelAllMediaOperations"+caVersion, `{}`, true, nil); code != 202 {
		t.Fatalf("cancelAllMediaOperations: %d", code)
	}
	// hold (with music as the SDK sends it), unhold, continuous DTMF: 200.
	if code := call(t, srv, "POST", base+":hold"+caVersion, `{"targetParticipant":`+caller+`,"playSourceInfo":{"kind":"ssml","ssml":{"ssmlText":"<speak>hold on</speak>"}},"operationContext":"h1"}`, true, nil); code != 200 {
		t.Fatalf("hold: %d", code)
	}
	if code := call(t, srv, "POST", base+":unhold"+caVersion, `{"targetParticipant":`+caller+`,"operationContext":"u1"}`, true, nil); code != 200 {
		t.Fatalf("unhold: %d", code)
	}
	if code := call(t, srv, "POST", base+":startContinuousDtmfRecognition"+caVersion, `{"targetParticipant":`+caller+`,"operationContext":"c1"}`, true, nil); code != 200 {
		t.Fatalf("startContinuousDtmfRecognition: %d", code)
	}
	if code := call(t, srv, "POST", base+":stopContinuousDtmfRecognition"+caVersion, `{"targetParticipant":`+caller+`,"operationContext":"c2"}`, true, nil); code != 200 {
		t.Fatalf("stopContinuousDtmfRecognition: %d", code)
	}
	// choices and speech.
	if code := call(t, srv, "POST", base+":recognize"+caVersion, `{"recognizeInputType":"choices","recognizeOptions":{"targetParticipant":`+caller+`,`+
		`"initialSilenceTimeoutInSeconds":10,"speechLanguage":"en-US","choices":[{"label":"Billing","phrases":["billing","bills"],"tone":"One"},{"label":"Sales","phrases":["sales"]}]},"operationContext":"ch"}`, true, nil); code != 202 {
		t.Fatalf("recognize choices: %d", code)
	}
	if code := call(t, srv, "POST", base+":recognize"+caVersion, `{"recognizeInputType":"speechOrDtmf","recognizeOptions":{"targetParticipant":`+caller+`,`+
		`"speechOptions":{"endSilenceTimeoutInMs":700},"dtmfOptions":{"maxTonesToCollect":3}},"operationContext":"sp"}`, true, nil); code != 202 {
		t.Fatalf("recognize speechOrDtmf: %d", code)
	}
	fm.mu.Lock()
	p, r, d := fm.plays[0], fm.recs[0], fm.dtmf[0]
	if len(p.Sources) != 2 || p.Sources[0].URI != "https://app.example/a.wav" || p.Sources[0].CacheID != "a" || p.Sources[1].Text != "hi" ||
		p.Sources[1].VoiceName != "en-US-JennyNeural" || !p.Loop || !p.Interrupt || len(p.Targets) != 1 || p.OperationContext() != "p1" {
		t.Errorf("play %+v", p)
	}
	if r.MaxTones != 4 || r.InterToneTimeout != 3*time.Second || r.InitialSilenceTimeout != 7*time.Second || r.InterruptPrompt ||
		len(r.StopTones) != 1 || r.StopTones[0] != "pound" || len(r.Prompt) != 1 || r.Target.ID != "+12125550199" || r.OperationContext() != "r1" {
		t.Errorf("recognize %+v", r)
	}
	if strings.Join(d.Tones, ",") != "one,asterisk" || d.Target.ID != "+12125550199" {
		t.Errorf("dtmf %+v", d)
	}
	if fm.canceled != 1 {
		t.Errorf("canceled %d", fm.canceled)
	}
	if len(fm.holds) != 1 || fm.holds[0].Music[0].SSML != "<speak>hold on</speak>" || fm.holds[0].OperationContext() != "h1" ||
		len(fm.unholds) != 1 || fm.unholds[0].OperationContext() != "u1" || len(fm.cont) != 1 || fm.cont[0].OperationContext() != "c1" ||
		len(fm.stops) != 1 || fm.stops[0].OperationContext != "c2" {
		t.Errorf("hold %+v unhold %+v continuous %+v %+v", fm.holds, fm.unholds, fm.cont, fm.stops)
	}
	if ch, sp := fm.recs[1], fm.recs[2]; ch.Kind != calls.RecognizeChoices || len(ch.Choices) != 2 || ch.Choices[0].Tone != "one" ||
		ch.Choices[1].Label != "Sales" || ch.InitialSilenceTimeout != 10*time.Second ||
		sp.Kind != calls.RecognizeSpeechOrDTMF || sp.EndSilence != 700*time.Millisecond || sp.MaxTones != 3 {
		t.Errorf("choices %+v speech %+v", ch, sp)
	}
	fm.mu.Unlock()

	for _, tc := range []struct{ name, path, body, target string }{
		{"no sources", ":play", `{"playSources":[]}`, "playSources"},
		{"relative file", ":play", `{"playSources":[{"kind":"file","file":{"uri":"/a.wav"}}]}`, "playSources"},
		{"empty ssml", ":play", `{"playSources":[{"kind":"ssml","ssml":{"ssmlText":" "}}]}`, "playSources"},
		{"custom voice", ":play", `{"playSources":[{"kind":"ssml","ssml":{"ssmlText":"<speak/>","customVoiceEndpointId":"x"}}]}`, "playSources"},
		{"custom text voice", ":play", `{"playSources":[{"kind":"text","text":{"text":"hi","customVoiceEndpointId":"x"}}]}`, "playSources"},
		{"bad input type", ":recognize", `{"recognizeInputType":"video","recognizeOptions":{"targetParticipant":` + caller + `}}`, "recognizeInputType"},
		{"no choices", ":recognize", `{"recognizeInputType":"choices","recognizeOptions":{"targetParticipant":` + caller + `}}`, "recognizeOptions.choices"},
		{"choice without label", ":recognize", `{"recognizeInputType":"choices","recognizeOptions":{"targetParticipant":` + caller + `,"choices":[{"phrases":["a"]}]}}`, "recognizeOptions.choices"},
		{"choice bad tone", ":recognize", `{"recognizeInputType":"choices","recognizeOptions":{"targetParticipant":` + caller + `,"choices":[{"label":"a","phrases":["a"],"tone":"ten"}]}}`, "recognizeOptions.choices"},
		{"choices 21 s", ":recognize", `{"recognizeInputType":"choices","recognizeOptions":{"targetParticipant":` + caller + `,"initialSilenceTimeoutInSeconds":21,"choices":[{"label":"a","phrases":["a"]}]}}`, "recognizeOptions.initialSilenceTimeoutInSeconds"},
		{"german", ":recognize", `{"recognizeInputType":"speech","recognizeOptions":{"targetParticipant":` + caller + `,"speechLanguage":"de-DE"}}`, "recognizeOptions.speechLanguage"},
		{"custom model", ":recognize", `{"recognizeInputType":"speech","recognizeOptions":{"targetParticipant":` + caller + `,"speechRecognitionModelEndpointId":"m"}}`, "recognizeOptions.speechRecognitionModelEndpointId"},
		{"end silence", ":recognize", `{"recognizeInputType":"speech","recognizeOptions":{"targetParticipant":` + caller + `,"speechOptions":{"endSilenceTimeoutInMs":50}}}`, "recognizeOptions.speechOptions.endSilenceTimeoutInMs"},
		{"no target", ":recognize", `{"recognizeInputType":"dtmf","recognizeOptions":{}}`, "recognizeOptions.targetParticipant"},
		{"zero tones", ":recognize", `{"recognizeInputType":"dtmf","recognizeOptions":{"targetParticipant":` + caller + `,"dtmfOptions":{"maxTonesToCollect":0}}}`, "recognizeOptions.dtmfOptions.maxTonesToCollect"},
		{"bad stop tone", ":recognize", `{"recognizeInputType":"dtmf","recognizeOptions":{"targetParticipant":` + caller + `,"dtmfOptions":{"stopTones":["hash"]}}}`, "recognizeOptions.dtmfOptions.stopTones"},
		{"bad tone", ":sendDtmfTones", `{"tones":["ten"],"targetParticipant":` + caller + `}`, "tones"},
		{"no tones", ":sendDtmfTones", `{"tones":[],"targetParticipant":` + caller + `}`, "tones"},
		{"hold without target", ":hold", `{}`, "targetParticipant"},
		{"unhold without target", ":unhold", `{}`, "targetParticipant"},
		{"hold bad music", ":hold", `{"targetParticipant":` + caller + `,"playSourceInfo":{"kind":"file"}}`, "playSourceInfo"},
		{"continuous dtmf without target", ":startContinuousDtmfRecognition", `{}`, "targetParticipant"},
		{"transcription", ":startTranscription", `{}`, "path"},
		{"streaming", ":startMediaStreaming", `{}`, "path"},
	} {
		var e ErrorBody
		if code := call(t, srv, "POST", base+tc.path+caVersion, tc.body, true, &e); code != 400 || e.Error.Target != tc.target || e.Error.Message == "" {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.name, code, e, tc.target)
		}
	}
	var e ErrorBody
	if code := call(t, srv, "POST", base+":startTranscription"+caVersion, `{}`, true, &e); e.Error.Code != "NotSupported" || !strings.Contains(e.Error.Message, "startTranscription") {
		t.Errorf("startTranscription: %d %+v", code, e)
	}

	// A transport without media (the participants fake) answers 400 naming the operation.
	plain := answer(&fakeControl{})
	if code := call(t, srv, "POST", plain+":play"+caVersion, `{"playSources":[{"kind":"text","text":{"text":"hi"}}]}`, true, &e); code != 400 || !strings.Contains(e.Error.Message, "play") {
		t.Errorf("play without media: %d %+v", code, e)
	}
	if code := call(t, srv, "POST", plain+":hold"+caVersion, `{"targetParticipant":`+caller+`}`, true, &e); code != 400 || e.Error.Code != "NotSupported" || !strings.Contains(e.Error.Message, "hold") {
		t.Errorf("hold without media: %d %+v", code, e)
	}
	if code := call(t, srv, "POST", "/calling/callConnections/nope:play"+caVersion, `{"playSources":[{"kind":"text","text":{"text":"hi"}}]}`, true, &e); code != 404 {
		t.Errorf("play on no call: %d %+v", code, e)
	}
}
