package speech

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
	"unicode/utf8"

	"github.com/telgw/telgw/internal/media/audio"
)

// SynthRequest is a TextSource or SsmlSource.
type SynthRequest struct {
	// Text is plain text, or an SSML document when SSML is set.
	Text string
	SSML bool
	// VoiceName, Locale and VoiceKind are TextSource's voiceName, sourceLocale, voiceKind.
	VoiceName, Locale, VoiceKind string
}

// Synthesizer turns text into speech: 8 kHz mono PCM.
type Synthesizer interface {
	Synthesize(ctx context.Context, req SynthRequest) ([]int16, error)
}

// ErrTooLong marks text beyond the synthesiser's limit.
var ErrTooLong = errors.New("text to speak is too long")

// EspeakConfig configures Espeak.
type EspeakConfig struct {
	// Path of the espeak-ng binary (default "espeak-ng" on PATH).
	Path string
	// Timeout bounds one synthesis (default 20 s).
	Timeout time.Duration
	// MaxChars bounds the text or SSML (default 10,000 characters).
	MaxChars int
}

// DefaultEspeakConfig returns the defaults.
func DefaultEspeakConfig() EspeakConfig {
	return EspeakConfig{Path: "espeak-ng", Timeout: 20 * time.Second, MaxChars: 10_000}
}

// Validate reports every problem with c.
func (c EspeakConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: must name the espeak-ng binary"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must be positive", c.Timeout))
	}
	if c.MaxChars < 1 {
		errs = append(errs, fmt.Errorf("maxChars: %d must be positive", c.MaxChars))
	}
	return errors.Join(errs...)
}

// Espeak is the espeak-ng Synthesizer: one process per request, text on stdin (never in argv),
// WAV on stdout, SSML cleaned first (CleanSSML).
type Espeak struct{ cfg EspeakConfig }

// NewEspeak returns the synthesiser.
func NewEspeak(cfg EspeakConfig) (*Espeak, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("espeak: %w", err)
	}
	return &Espeak{cfg: cfg}, nil
}

// maxOutput bounds espeak-ng's WAV (22.05 kHz 16-bit: about 25 minutes).
const maxOutput = 64 << 20

// Synthesize implements Synthesizer.
func (e *Espeak) Synthesize(ctx context.Context, req SynthRequest) ([]int16, error) {
	if n := utf8.RuneCountInString(req.Text); n > e.cfg.MaxChars {
		return nil, fmt.Errorf("%w: %d characters (limit %d)", ErrTooLong, n, e.cfg.MaxChars)
	}
	text := req.Text
	voice := MapVoice(req.VoiceName, req.Locale, req.VoiceKind)
	args := []string{"--stdout"}
	if req.SSML {
		clean, v, err := CleanSSML(req.Text)
		if err != nil {
			return nil, err
		}
		text, voice = clean, v
		args = append(args, "-m")
	}
	args = append(args, "-v", voice.Name())
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Path, args...)
	cmd.Stdin = bytes.NewReader([]byte(text))
	out, stderr := &limitBuffer{max: maxOutput}, &limitBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("espeak-ng: %w: %s", err, bytes.TrimSpace(stderr.b.Bytes()))
	}
	w, err := audio.ParseWAV(out.b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("espeak-ng output: %w", err)
	}
	return audio.Resample(w.Mono(), w.Rate, audio.Rate), nil
}

// limitBuffer fails writes past max, which ends the process with a broken pipe.
type limitBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errors.New("output limit reached")
	}
	return l.b.Write(p)
}
