package record

import (
	"bytes"
	"context"
	"math"
	"math/cmplx"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hajimehoshi/go-mp3"

	"github.com/telgw/telgw/internal/media/audio"
)

// toneWAV writes seconds of a hz tone at 8 kHz (16-bit mono) to a file.
func toneWAV(t *testing.T, path string, hz, seconds float64, amp float64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audio.NewWAVWriter(f, 1, audio.Rate)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, int(seconds*audio.Rate))
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/audio.Rate))
	}
	if err := w.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// toneLevel is the amplitude of hz in pcm (8 kHz), by correlation.
func toneLevel(pcm []int16, hz float64) float64 {
	var s complex128
	for i, v := range pcm {
		s += complex(float64(v), 0) * cmplx.Exp(complex(0, -2*math.Pi*hz*float64(i)/audio.Rate))
	}
	return 2 * cmplx.Abs(s) / float64(len(pcm))
}

func lameOrSkip(t *testing.T) *Lame {
	t.Helper()
	l, err := NewLame(DefaultLameConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("lame (Debian package lame) is missing: %v", err)
		}
		t.Skipf("lame not installed: %v", err)
	}
	return l
}

// TestLameEncode: a 3 s 1 kHz tone at 8 kHz → an MPEG-2 16 kHz mono MP3 (0600) that go-mp3
// decodes to 3 s of the tone.
func TestLameEncode(t *testing.T) {
	t.Parallel()
	l := lameOrSkip(t)
	dir := t.TempDir()
	wav, out := filepath.Join(dir, "rec.wav"), filepath.Join(dir, "rec.mp3")
	toneWAV(t, wav, 1000, 3, 8000)
	if err := l.EncodeMP3(context.Background(), wav, out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	// 32 kbit/s: 12 kB for 3 s.
	if st.Size() < 11_000 || st.Size() > 14_000 {
		t.Errorf("%d bytes for 3 s at 32 kbit/s", st.Size())
	}
	b, _ := os.ReadFile(out)
	if d, _ := mp3.NewDecoder(bytes.NewReader(b)); d == nil || d.SampleRate() != MP3SampleRate {
		t.Fatalf("sample rate: %v", d)
	}
	pcm, err := audio.LoadPrompt(b) // go-mp3, downmixed and resampled to 8 kHz
	if err != nil {
		t.Fatal(err)
	}
	// lame's encoder delay (1105 samples at 16 kHz: 69 ms) leads, and the last frame (36 ms)
	// is padded: the MP3 carries no Info tag saying so (lame writes it only to a file it can
	// seek), so decoders play 69–105 ms more than was recorded.
	if got := float64(len(pcm)) / audio.Rate; got < 3 || got > 3.1 {
		t.Errorf("go-mp3 decodes %.3f s, want 3–3.1", got)
	}
	mid := pcm[audio.Rate/2 : 5*audio.Rate/2]
	if lv := toneLevel(mid, 1000); lv < 6000 || lv > 10000 {
		t.Errorf("1 kHz at %.0f, want ≈ 8000", lv)
	}
	if lv := toneLevel(mid, 2000); lv > 200 {
		t.Errorf("2 kHz at %.0f: not a clean tone", lv)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".encoding-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestLameFailures: a binary that is missing, fails, hangs or floods its output → an error
// saying so, nothing at the target, no temporary file left.
func TestLameFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wav := filepath.Join(dir, "rec.wav")
	toneWAV(t, wav, 440, 1, 1000)
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path string
		want       string
	}{
		{"missing", filepath.Join(dir, "no-such-lame"), "no such file"},
		{"fails", script("fails.sh", "echo 'Can'\\''t init infile' >&2; exit 3"), "Can't init infile"},
		{"hangs", script("hangs.sh", "exec sleep 30"), "after 300ms"},
		{"floods", script("floods.sh", "exec cat /dev/zero"), "output limit"},
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := NewLame(LameConfig{Path: c.path, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, c.name+".mp3")
			err = l.EncodeMP3(context.Background(), wav, out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to say %q", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("target after a failure: %v", err)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".encoding-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := (LameConfig{}).Validate(); err == nil {
		t.Error("an empty config validated")
	}
}

// TestLameRealFailure: real lame given something that is not a WAV fails with its own words.
func TestLameRealFailure(t *testing.T) {
	t.Parallel()
	l := lameOrSkip(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.wav")
	if err := os.WriteFile(bad, []byte("not a wav file at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := l.EncodeMP3(context.Background(), bad, filepath.Join(dir, "bad.mp3"))
	if err == nil || !strings.Contains(err.Error(), "infile") {
		t.Fatalf("err %v", err)
	}
}
