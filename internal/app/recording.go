package app

import (
	"strings"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
)

// setupRecording serves call recording (callRecording): files in media.recording.dir,
// RecordingFileStatusUpdated through the Event Grid webhooks, locations on
// media.recording.locationURL (default the API's endpoint).
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
	if a.Webhooks != nil {
		cfg.Publisher = &events.Recordings{Dispatcher: a.Webhooks, Jobs: a.DB}
	}
	rec, err := calls.NewRecordings(auto, cfg)
	if err != nil {
		return err
	}
	a.API.MountCallRecording(rec)
	a.closers = append(a.closers, rec.Close)
	return nil
}
