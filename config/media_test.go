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

func TestMediaASREnv(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{"TELGW_MEDIA_ASR_POCKETSPHINX_PATH=/usr/bin/pocketsphinx_continuous", "TELGW_MEDIA_ASR_DICT=/d.dict",
		"TELGW_MEDIA_ASR_TIMEOUT=5s", "TELGW_MEDIA_ASR_MAX_SECONDS=30"})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Media.SphinxConfig(); c.Path != "/usr/bin/pocketsphinx_continuous" || c.Dict != "/d.dict" || c.Timeout.Seconds() != 5 || c.MaxSeconds != 30 {
		t.Fatalf("asr %+v", c)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Media.ASR.MaxSeconds = 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("media.asr.maxSeconds 0 accepted")
	}
}
