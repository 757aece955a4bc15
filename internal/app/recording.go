package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/media/record"
)

// setupRecording serves call recording (callRecording): files in media.recording.dir,
// RecordingFileStatusUpdated through the Event Grid webhooks, locations on
// media.recording.locationURL (default the API's endpoint). Recordings this node (by
// cluster.nodeName, default the hostname) left unfinished when it last stopped are marked failed.
// MP3 recordings are encoded by lame (media.recording.lamePath); without it mp3 answers 400.
func (a *App) setupRecording(auto *calls.Automation) error {
	rc := a.Config.Media.Recording
	cfg := calls.RecordingsConfig{Store: a.DB, Dir: rc.RecordingDir(a.Config.DataDir),
		Logger:     a.Log.With("component", "recording"),
		ResourceID: func() string { return a.Keys.Current().ResourceID },
		Locations: func() string {
			if rc.LocationURL != "" {
				return strings.TrimRight(rc.LocationURL, "/") + "/"
			}
			if a.Config.HTTP.PublicURL == "" && a.listener == nil {
				return "/"
			}
			return strings.TrimRight(a.Endpoint(), "/") + "/"
		}}
	if lame, err := record.NewLame(rc.LameConfig()); err != nil {
		return fmt.Errorf("media.recording: %w", err)
	} else if err := lame.Available(); err != nil {
		a.Log.Warn("no MP3 encoder: recordings with recordingFormatType mp3 will answer 400", "lame", rc.LamePath, "err", err)
	} else {
		cfg.MP3 = lame
	}
	if a.Webhooks != nil {
		cfg.Publisher = &events.Recordings{Dispatcher: a.Webhooks, Jobs: a.DB}
	}
	cfg.Node = a.Config.Cluster.NodeName
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	rec, err := calls.NewRecordings(auto, cfg)
	if err != nil {
		return fmt.Errorf("media.recording.dir %s: %w", cfg.Dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Recover(ctx); err != nil {
		return fmt.Errorf("recordings left unfinished: %w", err)
	}
	a.API.MountCallRecording(rec)
	a.closers = append(a.closers, rec.Close)
	return nil
}
