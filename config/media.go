package config

import (
	"time"

	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/record"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
)

// Media configures what apps' calls play and hear (Call Automation's media operations,
// docs/MEDIA.md).
type Media struct {
	// RealtimePriority, 1–99, paces prompts on threads at SCHED_FIFO with that priority (Linux;
	// needs CAP_SYS_NICE): packets stay on time on a busy host. Default 0 (ordinary timers).
	RealtimePriority int `yaml:"realtimePriority"`
	// Play bounds FileSource fetches and the prompt cache.
	Play MediaPlay `yaml:"play"`
	// Espeak is the speech synthesiser of TextSource.
	Espeak MediaEspeak `yaml:"espeak"`
	// Recording is where call recordings go (media_recording.go).
	Recording MediaRecording `yaml:"recording"`
	// ASR is the speech recogniser of choices and speech recognitions.
	ASR MediaASR `yaml:"asr"`
}

// MediaASR configures pocketsphinx (internal/media/speech): choices and speech recognition.
type MediaASR struct {
	// PocketsphinxPath is pocketsphinx_continuous (Debian package pocketsphinx). Default on PATH.
	PocketsphinxPath string `yaml:"pocketsphinxPath"`
	// Dict is the en-US model's dictionary (Debian package pocketsphinx-en-us).
	Dict string `yaml:"dict"`
	// Timeout bounds one recognition. Default 20s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxSeconds bounds the audio of one utterance recognised. Default 60.
	MaxSeconds int `yaml:"maxSeconds"`
}

// MediaPlay configures prompt fetching (internal/media/playsrc). Fetches go through the
// webhook SSRF guard (webhooks.allowPrivate, webhooks.allowCIDRs).
type MediaPlay struct {
	// MaxBytes bounds one fetched file. Default 16 MiB.
	MaxBytes int64 `yaml:"maxBytes"`
	// Timeout bounds one fetch, decoding included. Default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// CacheBytes bounds the decoded prompts kept (by URL or playSourceCacheId). Default 256 MiB;
	// 0 disables the cache.
	CacheBytes int64 `yaml:"cacheBytes"`
}

// MediaEspeak configures espeak-ng (internal/media/speech).
type MediaEspeak struct {
	// Path of the espeak-ng binary. Default "espeak-ng" (on PATH).
	Path string `yaml:"path"`
	// Timeout bounds one synthesis. Default 20s.
	Timeout time.Duration `yaml:"timeout"`
}

func defaultMedia() Media {
	p, e, a := playsrc.DefaultConfig(), speech.DefaultEspeakConfig(), speech.DefaultSphinxConfig()
	l := record.DefaultLameConfig()
	return Media{Play: MediaPlay{MaxBytes: p.MaxBytes, Timeout: p.Timeout, CacheBytes: p.CacheBytes},
		Espeak:    MediaEspeak{Path: e.Path, Timeout: e.Timeout},
		Recording: MediaRecording{LamePath: l.Path, LameTimeout: l.Timeout},
		ASR:       MediaASR{PocketsphinxPath: a.Path, Dict: a.Dict, Timeout: a.Timeout, MaxSeconds: a.MaxSeconds}}
}

// PacingConfig is the rtpmedia scheduler's configuration.
func (m Media) PacingConfig() rtpmedia.Config {
	c := rtpmedia.DefaultConfig()
	c.RealtimePriority = m.RealtimePriority
	return c
}

// PlayConfig is the prompt fetcher's configuration.
func (m Media) PlayConfig() playsrc.Config {
	return playsrc.Config{MaxBytes: m.Play.MaxBytes, Timeout: m.Play.Timeout, CacheBytes: m.Play.CacheBytes}
}

// EspeakConfig is espeak-ng's configuration.
func (m Media) EspeakConfig() speech.EspeakConfig {
	c := speech.DefaultEspeakConfig()
	c.Path, c.Timeout = m.Espeak.Path, m.Espeak.Timeout
	return c
}

// SphinxConfig is pocketsphinx's configuration.
func (m Media) SphinxConfig() speech.SphinxConfig {
	return speech.SphinxConfig{Path: m.ASR.PocketsphinxPath, Dict: m.ASR.Dict, Timeout: m.ASR.Timeout, MaxSeconds: m.ASR.MaxSeconds}
}

func (m Media) validate() []error {
	var errs []error
	errs = flatten(errs, "media.", m.PacingConfig().Validate(), nil)
	errs = flatten(errs, "media.play.", m.PlayConfig().Validate(), nil)
	errs = flatten(errs, "media.espeak.", m.EspeakConfig().Validate(), nil)
	errs = append(errs, m.Recording.validate()...)
	errs = flatten(errs, "media.asr.", m.SphinxConfig().Validate(), nil)
	return errs
}
