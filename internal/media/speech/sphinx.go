package speech

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/media/audio"
)

// RecognizeOptions narrow a recognition.
type RecognizeOptions struct {
	// Language is speechLanguage (default en-US).
	Language string
	// Phrases, when set (choices), restrict what can be recognised to these phrases: far more
	// accurate than open dictation on telephone audio.
	Phrases []string
}

// Recognizer turns 8 kHz mono PCM into text ("" when nothing was recognised).
type Recognizer interface {
	Recognize(ctx context.Context, pcm []int16, opts RecognizeOptions) (string, error)
}

// Errors of a recognition.
var (
	ErrLanguage  = errors.New("speech language is not supported")
	ErrNoPhrases = errors.New("no phrase of the choices can be recognised (words not in the dictionary)")
)

// SphinxConfig configures Pocketsphinx.
type SphinxConfig struct {
	// Path of pocketsphinx_continuous (Debian package pocketsphinx; default on PATH).
	Path string
	// Dict is the pronunciation dictionary of the en-US model (package pocketsphinx-en-us).
	Dict string
	// Timeout bounds one recognition (default 20 s).
	Timeout time.Duration
	// MaxSeconds bounds the audio recognised (default 60 s).
	MaxSeconds int
}

// DefaultSphinxConfig returns the Debian paths and limits.
func DefaultSphinxConfig() SphinxConfig {
	return SphinxConfig{Path: "pocketsphinx_continuous", Dict: "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict",
		Timeout: 20 * time.Second, MaxSeconds: 60}
}

// Validate reports every problem with c.
func (c SphinxConfig) Validate() error {
	var errs []error
	if c.Path == "" || c.Dict == "" {
		errs = append(errs, errors.New("path/dict: must name the pocketsphinx binary and dictionary"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must be positive", c.Timeout))
	}
	if c.MaxSeconds < 1 {
		errs = append(errs, fmt.Errorf("maxSeconds: %d must be positive", c.MaxSeconds))
	}
	return errors.Join(errs...)
}

// Pocketsphinx is the Recognizer on CMU Sphinx (pocketsphinx 5prealpha, Debian 12) with its
// 16 kHz US English model. Telephone audio is upsampled to 16 kHz and the empty 4–8 kHz band is
// filled with faint noise: without it the model's upper filters see silence and recognition
// collapses. With Phrases a JSGF grammar restricts the search; without, its language model
// does open dictation (weak on telephone audio).
type Pocketsphinx struct {
	cfg SphinxConfig

	dictOnce sync.Once
	dict     map[string]bool
	dictErr  error
}

// NewPocketsphinx returns the recogniser.
func NewPocketsphinx(cfg SphinxConfig) (*Pocketsphinx, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pocketsphinx: %w", err)
	}
	return &Pocketsphinx{cfg: cfg}, nil
}

func (p *Pocketsphinx) words() (map[string]bool, error) {
	p.dictOnce.Do(func() {
		f, err := os.Open(p.cfg.Dict)
		if err != nil {
			p.dictErr = err
			return
		}
		defer func() { _ = f.Close() }()
		p.dict = map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			w, _, _ := strings.Cut(sc.Text(), " ")
			if w != "" && !strings.Contains(w, "(") {
				p.dict[w] = true
			}
		}
		p.dictErr = sc.Err()
	})
	return p.dict, p.dictErr
}

// Grammar returns the JSGF grammar of the phrases the dictionary can say (others dropped).
func (p *Pocketsphinx) Grammar(phrases []string) (string, error) {
	dict, err := p.words()
	if err != nil {
		return "", fmt.Errorf("pocketsphinx dictionary: %w", err)
	}
	seen := map[string]bool{}
	var alts []string
	for _, ph := range phrases {
		n := Normalize(ph)
		ok := n != ""
		for _, w := range strings.Fields(n) {
			ok = ok && dict[w] // dictionary words are [a-z0-9'.-]: safe inside JSGF
		}
		if ok && !seen[n] {
			seen[n] = true
			alts = append(alts, n)
		}
	}
	if len(alts) == 0 {
		return "", ErrNoPhrases
	}
	return "#JSGF V1.0;\ngrammar choices;\npublic <choice> = " + strings.Join(alts, " | ") + " ;\n", nil
}

// Recognize implements Recognizer.
func (p *Pocketsphinx) Recognize(ctx context.Context, pcm []int16, opts RecognizeOptions) (string, error) {
	if l := strings.ToLower(opts.Language); l != "" && l != "en-us" {
		return "", fmt.Errorf("%w: %q (en-US only)", ErrLanguage, opts.Language)
	}
	if max := p.cfg.MaxSeconds * audio.Rate; len(pcm) > max {
		pcm = pcm[:max]
	}
	dir, err := os.MkdirTemp("", "telgw-asr-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	args := []string{"-infile", filepath.Join(dir, "in.wav"), "-logfn", os.DevNull}
	if len(opts.Phrases) > 0 {
		g, err := p.Grammar(opts.Phrases)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "choices.jsgf"), []byte(g), 0o600); err != nil {
			return "", err
		}
		args = append(args, "-jsgf", filepath.Join(dir, "choices.jsgf"))
	}
	if err := writeWideband(filepath.Join(dir, "in.wav"), pcm); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.cfg.Path, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pocketsphinx: %w", err)
	}
	// One line per utterance.
	return strings.Join(strings.Fields(string(out)), " "), nil
}

// writeWideband writes pcm (8 kHz) as a 16 kHz WAV with 300 ms of lead-in and tail and a noise
// floor about 60 dB under full scale.
func writeWideband(path string, pcm []int16) error {
	pad := make([]int16, audio.Rate*3/10)
	wide := audio.Resample(append(append(append([]int16(nil), pad...), pcm...), pad...), audio.Rate, 16000)
	rng := rand.New(rand.NewPCG(0x7e1, 0x6e))
	for i, s := range wide {
		wide[i] = audio.Clamp(int32(s) + int32(rng.NormFloat64()*30))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w, err := audio.NewWAVWriter(f, 1, 16000)
	if err == nil {
		err = w.Write(wide)
	}
	if err == nil {
		err = w.Close()
	}
	return errors.Join(err, f.Close())
}
