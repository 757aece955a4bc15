package app

import (
	"context"
	"strings"

	"github.com/telgw/telgw/internal/events"
)

// setupCallEvents wires the delivery side of Call Automation: IncomingCall events to the
// Event Grid webhooks (through the dispatcher setupSMS built) and mid-call callbacks signed
// with the shared RSA key, whose OpenID configuration and JWKS it serves. The call engine
// takes a.IncomingCalls and a.Callbacks.
func (a *App) setupCallEvents(context.Context) error {
	guard, err := a.webhookGuard()
	if err != nil {
		return err
	}
	a.IncomingCalls = &events.IncomingCalls{Dispatcher: a.Webhooks, Jobs: a.DB, Logger: a.Log.With("component", "webhooks")}
	// Direct attempts still under way may queue their retries: they end before the store closes.
	a.closers = append(a.closers, a.IncomingCalls.Wait)
	a.Callbacks = events.NewCallbacks(events.CallbacksConfig{
		Jobs: a.DB,
		Key: func() events.SigningKey {
			k := a.Keys.Current()
			return events.SigningKey{Key: k.CallbackKey, KeyID: k.CallbackKeyID, Audience: k.ResourceID}
		},
		Issuer:     a.callbackIssuer,
		Guard:      guard,
		Logger:     a.Log.With("component", "callbacks"),
		Registerer: a.Registry,
	})
	a.Callbacks.Register(a.Workers)
	a.API.MountCallingOpenID(a.Callbacks)
	return nil
}

// callbackIssuer is the iss of callback JWTs and of the OpenID configuration: the endpoint
// without its trailing slash (ACS: "https://acscallautomation.communication.azure.com").
func (a *App) callbackIssuer() string {
	if a.Config.HTTP.PublicURL == "" && a.listener == nil {
		return ""
	}
	return strings.TrimSuffix(a.Endpoint(), "/")
}
