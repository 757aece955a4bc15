package app

import (
	"context"
	"fmt"
	"os"

	"github.com/telgw/telgw/internal/push"
)

// setupPush builds the push notifier from config and serves device registration.
func (a *App) setupPush(_ context.Context) error {
	providers := map[push.Platform]push.Provider{}
	if f := a.Config.Push.FCM; f != nil {
		sa, err := os.ReadFile(f.ServiceAccountFile)
		if err != nil {
			return fmt.Errorf("push.fcm.serviceAccountFile: %w", err)
		}
		p, err := push.NewFCM(push.FCMConfig{ProjectID: f.ProjectID, ServiceAccountJSON: sa, Endpoint: f.Endpoint})
		if err != nil {
			return err
		}
		providers[push.FCM] = p
	}
	if c := a.Config.Push.APNs; c != nil {
		key, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return fmt.Errorf("push.apns.keyFile: %w", err)
		}
		p, err := push.NewAPNs(push.APNsConfig{TeamID: c.TeamID, KeyID: c.KeyID, KeyPEM: key, Topic: c.Topic, Endpoint: c.Endpoint})
		if err != nil {
			return err
		}
		providers[push.APNs] = p
	}
	a.Push = push.New(a.DB, providers, a.Log.With("component", "push"), a.Registry)
	a.API.MountPush(a.Identity, a.Push)
	return nil
}
