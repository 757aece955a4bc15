package config

import "testing"

func TestMediaEnv(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{"TELGW_MEDIA_REALTIME_PRIORITY=10", "TELGW_MEDIA_PLAY_TIMEOUT=3s", "TELGW_MEDIA_ESPEAK_PATH=/usr/bin/espeak-ng"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Media.PacingConfig().RealtimePriority != 10 || cfg.Media.PlayConfig().Timeout.Seconds() != 3 || cfg.Media.EspeakConfig().Path != "/usr/bin/espeak-ng" {
		t.Fatalf("media %+v", cfg.Media)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
