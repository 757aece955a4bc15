package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// MP3 output of a finished recording through LAME (Debian package lame, the lame(1) front
// end): there is no well-kept pure-Go MP3 encoder, only cgo bindings of the same library. The
// finished WAV is handed to one lame process on stdin and the MP3 comes back on stdout, into a
// 0600 temporary file beside the target that is renamed over it once complete: lame is given
// no path, and its arguments are only our own constants. Each encoding is bounded in time and
// in output size, runs at a lower CPU priority than the calls' media, and a failure carries
// what lame wrote to stderr.

// MP3 format of the encoded recordings: 8 kHz call audio resampled to 16 kHz (MPEG-2 layer
// III, which every player and go-mp3 decode; MPEG-2.5 at 8 kHz is not widely decodable), mono,
// constant 32 kbit/s. The audio holds nothing above 4 kHz, so a higher bit rate buys nothing.
const (
	MP3SampleRate = 16000
	MP3BitRate    = 32000
)

// LameConfig configures Lame.
type LameConfig struct {
	// Path of the lame binary (default "lame" on PATH).
	Path string
	// Timeout bounds one encoding (default 10 minutes; lame encodes call audio at some
	// hundred times real time).
	Timeout time.Duration
}

// DefaultLameConfig returns the defaults.
func DefaultLameConfig() LameConfig {
	return LameConfig{Path: "lame", Timeout: 10 * time.Minute}
}

// Validate reports every problem with c.
func (c LameConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("lamePath: must name the lame binary"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("lameTimeout: %v must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}

// Lame encodes finished recordings to MP3 with the lame program. Safe for concurrent use
// (one process per encoding; the caller bounds how many run at once).
type Lame struct{ cfg LameConfig }

// NewLame returns the encoder; Available says whether the binary is there.
func NewLame(cfg LameConfig) (*Lame, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lame: %w", err)
	}
	return &Lame{cfg: cfg}, nil
}

// Available reports whether the lame binary can be found (exec.LookPath).
func (l *Lame) Available() error {
	_, err := exec.LookPath(l.cfg.Path)
	return err
}

// MP3Format is the encoded audio's sample rate (Hz) and bit rate (bit/s).
func (l *Lame) MP3Format() (sampleRate, bitRate int) { return MP3SampleRate, MP3BitRate }

// lameArgs read a WAV from stdin and write MP3 to stdout: quiet, mono, constant bit rate,
// resampled (MP3BitRate, MP3SampleRate), no Xing/Info tag (-t: lame writes it only to an
// output it can seek, so it is never there; saying so keeps the output the same whatever
// stdout is). Without the tag decoders play lame's encoder delay (69 ms) at the start.
var lameArgs = []string{"--quiet", "--noreplaygain", "-t", "-m", "m", "-b", "32", "--resample", "16", "-", "-"}

// lamePriority is the nice value of the lame processes: encoding yields the CPU to the calls.
const lamePriority = 10

// EncodeMP3 encodes the WAV at wavPath into mp3Path (created 0600, or replaced whole: a
// failed encoding leaves nothing at mp3Path). The WAV is left in place.
func (l *Lame) EncodeMP3(ctx context.Context, wavPath, mp3Path string) (err error) {
	in, err := os.Open(wavPath)
	if err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	out, err := os.CreateTemp(filepath.Dir(mp3Path), ".encoding-*.mp3") // 0600
	if err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.cfg.Path, lameArgs...)
	cmd.Stdin = in
	// 32 kbit/s is a quarter of the WAV's 128 kbit/s: an output larger than the input (plus
	// the frames of a very short file) is lame misbehaving.
	stdout := &limitWriter{w: out, max: st.Size() + 64<<10}
	var errBuf bytes.Buffer
	stderr := &limitWriter{w: &errBuf, max: 4096}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	lowerPriority(cmd.Process.Pid) // best effort
	if err := cmd.Wait(); err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (after %v)", err, l.cfg.Timeout)
		case stdout.over:
			err = fmt.Errorf("%w (output limit of %d bytes reached)", err, stdout.max)
		}
		return fmt.Errorf("lame: %w: %s", err, bytes.TrimSpace(errBuf.Bytes()))
	}
	if stdout.n == 0 {
		return errors.New("lame: no output")
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	if err := os.Rename(out.Name(), mp3Path); err != nil {
		return fmt.Errorf("lame: %w", err)
	}
	return nil
}

// limitWriter fails writes past max, which ends the process with a broken pipe.
type limitWriter struct {
	w    io.Writer
	n    int64
	max  int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.max {
		l.over = true
		return 0, errors.New("output limit reached")
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}
