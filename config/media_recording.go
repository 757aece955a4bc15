package config

import (
	"fmt"
	"net/url"
	"path/filepath"
)

// MediaRecording configures call recording (Call Automation callRecording).
type MediaRecording struct {
	// Dir holds the recorded files. Default "<dataDir>/recordings".
	Dir string `yaml:"dir"`
	// LocationURL is the scheme://host[:port]/ of the content, metadata and delete locations
	// RecordingFileStatusUpdated gives. Default http.publicURL (the API's own endpoint).
	LocationURL string `yaml:"locationURL"`
}

// RecordingDir is the recordings directory for a data directory.
func (m MediaRecording) RecordingDir(dataDir string) string {
	if m.Dir != "" {
		return m.Dir
	}
	return filepath.Join(dataDir, "recordings")
}

func (m MediaRecording) validate() []error {
	if m.LocationURL == "" {
		return nil
	}
	u, err := url.Parse(m.LocationURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return []error{fmt.Errorf("media.recording.locationURL: %q must be an http(s) URL with no path, query or user (scheme://host[:port]/)", m.LocationURL)}
	}
	return nil
}
