package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMediaRecording(t *testing.T) {
	cfg, err := Load("", []string{"TELGW_MEDIA_RECORDING_LOCATION_URL=https://rec.example.com/", "TELGW_DATA_DIR=/var/lib/telgw"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Media.Recording.LocationURL != "https://rec.example.com/" || cfg.Media.Recording.RecordingDir(cfg.DataDir) != filepath.Join("/var/lib/telgw", "recordings") {
		t.Fatalf("recording %+v, data dir %s", cfg.Media.Recording, cfg.DataDir)
	}
	cfg, err = Load("", []string{"TELGW_MEDIA_RECORDING_DIR=/srv/rec"})
	if err != nil || cfg.Media.Recording.RecordingDir(cfg.DataDir) != "/srv/rec" {
		t.Fatalf("dir: %+v %v", cfg.Media.Recording, err)
	}
	if l := cfg.Media.Recording.LameConfig(); l.Path != "lame" || l.Timeout != 10*time.Minute {
		t.Fatalf("lame defaults %+v", l)
	}
	cfg, err = Load("", []string{"TELGW_MEDIA_RECORDING_LAME_PATH=/opt/lame/bin/lame", "TELGW_MEDIA_RECORDING_LAME_TIMEOUT=30s"})
	if err != nil || cfg.Media.Recording.LamePath != "/opt/lame/bin/lame" || cfg.Media.Recording.LameTimeout != 30*time.Second {
		t.Fatalf("lame: %+v %v", cfg.Media.Recording, err)
	}
	cfg, err = Load("", []string{"TELGW_MEDIA_RECORDING_LAME_TIMEOUT=0s"})
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "media.recording.lameTimeout") {
		t.Errorf("lameTimeout 0: %v", err)
	}
	for _, bad := range []string{"ftp://x/", "https://x/files", "https://x/?a=1", "https://u:p@x/"} {
		cfg, err := Load("", []string{"TELGW_MEDIA_RECORDING_LOCATION_URL=" + bad})
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), "media.recording.locationURL") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
