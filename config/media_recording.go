package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/telgw/telgw/internal/media/record"
)

// MediaRecording configures call recording (Call Automation callRecording).
type MediaRecording struct {
	// Dir holds the recorded files. Default "<dataDir>/recordings".
	Dir string `yaml:"dir"`
	// LocationURL is the scheme://host[:port]/ of the content, metadata and delete locations
	// RecordingFileStatusUpdated gives. Default http.publicURL (the API's own endpoint).
	LocationURL string `yaml:"locationURL"`
	// LamePath is the lame binary (Debian package lame) that encodes recordings asked for as
	// recordingFormatType mp3. Default "lame" on PATH; without it mp3 answers 400.
	LamePath string `yaml:"lamePath"`
	// LameTimeout bounds one encoding. Default 10m.
	LameTimeout time.Duration `yaml:"lameTimeout"`
}

// LameConfig is the MP3 encoder's configuration.
func (m MediaRecording) LameConfig() record.LameConfig {
	return record.LameConfig{Path: m.LamePath, Timeout: m.LameTimeout}
}

// RecordingDir is the recordings directory for a data directory.
func (m MediaRecording) RecordingDir(dataDir string) string {
	if m.Dir != "" {
		return m.Dir
	}
	return filepath.Join(dataDir, "recordings")
}

func (m MediaRecording) validate() []error {
	errs := flatten(nil, "media.recording.", m.LameConfig().Validate(), nil)
	if m.LocationURL == "" {
		return errs
	}
	u, err := url.Parse(m.LocationURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return append(errs, fmt.Errorf("media.recording.locationURL: %q must be an http(s) URL with no path, query or user (scheme://host[:port]/)", m.LocationURL))
	}
	return errs
}
