package speech

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/dtmf"
)

// requirePeer skips (or, with CI=true, fails) when a Debian peer is missing (.ci/apt-packages).
func requirePeer(t testing.TB, bin, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true: peers are required; apt-get install -y %s)", bin, pkg)
	}
	t.Skipf("%s is missing; apt-get install -y %s", bin, pkg)
}

func TestMapVoice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, locale, kind, want string }{
		{"en-US-JennyNeural", "", "", "en-us+f3"},
		{"en-US-GuyNeural", "", "", "en-us"},
		{"en-US-AvaMultilingualNeural", "", "", "en-us+f3"},
		{"en-GB-SoniaNeural", "", "", "en-gb+f3"},
		{"en-AU-NatashaNeural", "", "", "en-gb+f3"},
		{"fr-FR-DeniseNeural", "", "", "fr-fr+f3"},
		{"fr-CA-AntoineNeural", "", "", "fr-fr"},
		{"de-DE-ConradNeural", "", "", "de"},
		{"de-AT-IngridNeural", "", "", "de"},
		{"es-MX-DaliaNeural", "", "", "es-419+f3"},
		{"pt-BR-FranciscaNeural", "", "", "pt-br+f3"},
		{"zh-CN-XiaoxiaoNeural", "", "", "cmn+f3"},
		{"ja-JP-NanamiNeural", "", "", "ja+f3"},
		{"", "it-IT", "female", "it+f3"},
		{"", "", "", "en-us"},
		{"", "xx-YY", "male", "en-us"},
		{"weird", "en-GB", "", "en-gb"},
	} {
		if got := MapVoice(tc.name, tc.locale, tc.kind).Name(); got != tc.want {
			t.Errorf("MapVoice(%q, %q, %q) = %q, want %q", tc.name, tc.locale, tc.kind, got, tc.want)
		}
	}
}

func TestCleanSSML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, voice string
		err             bool
	}{
		{`<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><voice name="en-US-JennyNeural">Hello <break time="300ms"/> world</voice></speak>`,
			`<speak xml:lang="en-us"><voice xml:lang="en-us" gender="female">Hello <break time="300ms"></break> world</voice></speak>`, "en-us+f3", false},
		// <audio> would reach `sh -c "sox …"`: dropped, its fallback text kept.
		{`<speak>Hi <audio src='x"; touch /tmp/pwned; echo "'>fallback</audio></speak>`,
			`<speak>Hi fallback</speak>`, "en-us", false},
		{`<speak xmlns:mstts="http://www.w3.org/2001/mstts"><voice name="de-DE-KatjaNeural"><mstts:express-as style="cheerful">Hallo</mstts:express-as></voice></speak>`,
			`<speak><voice xml:lang="de" gender="female">Hallo</voice></speak>`, "de+f3", false},
		{`<speak><prosody rate="fast" pitch="+10%" onload="x">A &amp; B &lt;c&gt;</prosody><lexicon uri="http://x">secret</lexicon></speak>`,
			`<speak><prosody rate="fast" pitch="+10%">A &amp; B &lt;c&gt;</prosody></speak>`, "en-us", false},
		{`<speak><prosody rate="x&quot;;rm">a</prosody><say-as interpret-as="digits">123</say-as><sub alias="World Wide Web">WWW</sub></speak>`,
			`<speak><prosody>a</prosody><say-as interpret-as="digits">123</say-as><sub alias="World Wide Web">WWW</sub></speak>`, "en-us", false},
		{`<!DOCTYPE speak [<!ENTITY x "boom">]><speak>&x;</speak>`, "", "", true},
		{`<speak>unclosed`, "", "", true},
		{`just text`, "", "", true},
		{strings.Repeat("<s>", 40) + "deep" + strings.Repeat("</s>", 40), "", "", true},
	} {
		got, v, err := CleanSSML(tc.in)
		if tc.err {
			if !errors.Is(err, ErrSSML) {
				t.Errorf("CleanSSML(%.40q): %v, want ErrSSML", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want || v.Name() != tc.voice {
			t.Errorf("CleanSSML(%.60q)\n got %q %q %v\nwant %q %q", tc.in, got, v.Name(), err, tc.want, tc.voice)
		}
	}
}

func FuzzCleanSSML(f *testing.F) {
	f.Add(`<speak><voice name="en-US-JennyNeural">Hi <break time="1s"/></voice></speak>`)
	f.Add(`<speak><audio src="a">b</audio><p><s>c</s></p></speak>`)
	f.Fuzz(func(t *testing.T, in string) {
		out, _, err := CleanSSML(in)
		if err != nil {
			return
		}
		// The output is itself clean SSML, with no element outside the allow-list.
		again, _, err := CleanSSML(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", in, out, again, err)
		}
		if strings.Contains(out, "<audio") {
			t.Fatalf("audio kept: %q", out)
		}
	})
}

func tone(t dtmf.Tone) *dtmf.Tone { return &t }

func TestMatchChoices(t *testing.T) {
	t.Parallel()
	choices := []Choice{
		{Label: "Confirm", Phrases: []string{"Yes", "Yeah", "that's right"}, Tone: tone(1)},
		{Label: "Cancel", Phrases: []string{"No", "cancel"}, Tone: tone(2)},
		{Label: "Billing", Phrases: []string{"billing", "pay my bill"}},
		{Label: "Agent", Phrases: []string{"billing agent"}},
	}
	for _, tc := range []struct{ text, label, phrase string }{
		{"yes", "Confirm", "Yes"},
		{"YES!", "Confirm", "Yes"},
		{"That's right.", "Confirm", "that's right"},
		{"i want to pay my bill please", "Billing", "pay my bill"},
		{"billing agent", "Agent", "billing agent"},
		{"talk to a billing agent now", "Agent", "billing agent"}, // the longest phrase wins
		{"yesterday", "", ""},                                     // whole words only
		{"", "", ""},
	} {
		label, phrase, ok := MatchSpeech(choices, tc.text)
		if label != tc.label || phrase != tc.phrase || ok != (tc.label != "") {
			t.Errorf("MatchSpeech(%q) = %q %q %v, want %q %q", tc.text, label, phrase, ok, tc.label, tc.phrase)
		}
	}
	if l, ok := MatchTone(choices, 2); !ok || l != "Cancel" {
		t.Errorf("tone 2: %q", l)
	}
	if _, ok := MatchTone(choices, 9); ok {
		t.Error("tone 9 matched")
	}
	if got := Phrases(choices); len(got) != 8 {
		t.Errorf("phrases %v", got)
	}
}

func rms(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(1, len(s))))
}

func TestEspeak(t *testing.T) {
	t.Parallel()
	requirePeer(t, "espeak-ng", "espeak-ng")
	e, err := NewEspeak(DefaultEspeakConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pcm, err := e.Synthesize(ctx, SynthRequest{Text: "Press one for sales.", VoiceName: "en-US-JennyNeural"})
	if err != nil {
		t.Fatal(err)
	}
	if secs := float64(len(pcm)) / audio.Rate; secs < 0.5 || secs > 4 || rms(pcm) < 300 {
		t.Errorf("%.2f s at rms %.0f", secs, rms(pcm))
	}
	// Text that looks like options or SSML is only spoken.
	if _, err := e.Synthesize(ctx, SynthRequest{Text: "--version -w /tmp/x <speak><audio src='a'/></speak>"}); err != nil {
		t.Error(err)
	}
	// SSML that tries to reach the shell through <audio> speaks its fallback and runs nothing.
	dir := t.TempDir()
	canary := filepath.Join(dir, "pwned")
	ssml := `<speak><voice name="en-GB-RyanNeural">Hello</voice><audio src='x"; touch ` + canary + `; echo "'>fallback</audio></speak>`
	if _, err := e.Synthesize(ctx, SynthRequest{Text: ssml, SSML: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("SSML <audio> ran a shell command")
	}
	if _, err := e.Synthesize(ctx, SynthRequest{Text: "<speak>", SSML: true}); !errors.Is(err, ErrSSML) {
		t.Errorf("broken SSML: %v", err)
	}
	if _, err := e.Synthesize(ctx, SynthRequest{Text: strings.Repeat("a", 10_001)}); !errors.Is(err, ErrTooLong) {
		t.Errorf("long text: %v", err)
	}
}

// TestRecognizeChoices: espeak-ng says each phrase, the audio goes through μ-law at 8 kHz like
// a phone call, and pocketsphinx with the choices' grammar picks the right choice.
func TestRecognizeChoices(t *testing.T) {
	t.Parallel()
	requirePeer(t, "espeak-ng", "espeak-ng")
	requirePeer(t, "pocketsphinx_continuous", "pocketsphinx pocketsphinx-en-us")
	e, _ := NewEspeak(DefaultEspeakConfig())
	r, err := NewPocketsphinx(DefaultSphinxConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(DefaultSphinxConfig().Dict); err != nil {
		requirePeer(t, "/nonexistent-pocketsphinx-en-us", "pocketsphinx-en-us")
	}
	choices := []Choice{
		{Label: "Confirm", Phrases: []string{"yes", "correct"}},
		{Label: "Cancel", Phrases: []string{"no", "cancel"}},
		{Label: "Sales", Phrases: []string{"sales"}},
		{Label: "Support", Phrases: []string{"support", "talk to an agent"}},
		{Label: "Billing", Phrases: []string{"billing please", "Zyxxqlorp"}}, // an unknown word: phrase dropped
	}
	ctx := context.Background()
	for _, tc := range []struct{ say, voice, label string }{
		{"yes", "en-US-GuyNeural", "Confirm"},
		{"no", "en-US-JennyNeural", "Cancel"},
		{"sales", "en-US-GuyNeural", "Sales"},
		{"talk to an agent", "en-US-GuyNeural", "Support"},
		{"billing please", "en-US-JennyNeural", "Billing"},
	} {
		pcm, err := e.Synthesize(ctx, SynthRequest{Text: tc.say, VoiceName: tc.voice})
		if err != nil {
			t.Fatal(err)
		}
		pcm = audio.PCMU.Decode(nil, audio.PCMU.Encode(nil, pcm))
		text, err := r.Recognize(ctx, pcm, RecognizeOptions{Phrases: Phrases(choices)})
		if err != nil {
			t.Fatal(err)
		}
		if label, _, _ := MatchSpeech(choices, text); label != tc.label {
			t.Errorf("said %q (%s): recognised %q → %q, want %q", tc.say, tc.voice, text, label, tc.label)
		}
	}
	// The whole speech path: the caller speaks after a second of line noise; the endpointer
	// cuts the utterance; the recogniser picks the choice.
	said, _ := e.Synthesize(ctx, SynthRequest{Text: "talk to an agent", VoiceName: "en-US-JennyNeural"})
	var stream []int16
	for _, f := range signal(1, -60, 99, 99) {
		stream = append(stream, f...)
	}
	stream = append(stream, audio.PCMA.Decode(nil, audio.PCMA.Encode(nil, said))...)
	for _, f := range signal(2, -60, 99, 99) {
		stream = append(stream, f...)
	}
	ep, _ := NewEndpointer(DefaultEndpointConfig(), false)
	for i := 0; i+audio.FrameSamples <= len(stream) && ep.State() < Utterance; i += audio.FrameSamples {
		ep.Frame(stream[i : i+audio.FrameSamples])
	}
	if ep.State() != Utterance {
		t.Fatalf("endpointer: %v", ep.State())
	}
	text, err := r.Recognize(ctx, ep.Audio(), RecognizeOptions{Phrases: Phrases(choices)})
	if label, _, _ := MatchSpeech(choices, text); err != nil || label != "Support" {
		t.Errorf("endpointed utterance: %q → %q, %v", text, label, err)
	}
	if _, err := r.Recognize(ctx, make([]int16, 800), RecognizeOptions{Language: "de-DE"}); !errors.Is(err, ErrLanguage) {
		t.Errorf("language: %v", err)
	}
	if _, err := r.Recognize(ctx, make([]int16, 800), RecognizeOptions{Phrases: []string{"qqqzzz"}}); !errors.Is(err, ErrNoPhrases) {
		t.Errorf("no phrases: %v", err)
	}
	// Silence recognises nothing.
	if text, err := r.Recognize(ctx, make([]int16, 8000), RecognizeOptions{Phrases: Phrases(choices)}); err != nil || text != "" {
		t.Errorf("silence: %q %v", text, err)
	}
}
