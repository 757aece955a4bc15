package app

import (
	"context"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip"
)

// setupSIP wires the sip domain: the B2BUA on sip.addr (UDP and TCP, and sip.tls) with the configured
// trunks, the ACS SIP routing API and operator routes, call routes from the numbers domain,
// routing/credentials/CDRs in the store.
func (a *App) setupSIP(ctx context.Context) error {
	cfg, err := a.Config.SIP.ServiceConfig() // parse errors were reported by config.Validate in New
	if err != nil {
		return err
	}
	cfg.Logger, cfg.Registerer = a.Log.With("component", "sip"), a.Registry
	auto, err := a.callAutomation()
	if err != nil {
		return err
	}
	signer, verifier, err := a.stir()
	if err != nil {
		return err
	}
	media, err := a.setupMedia()
	if err != nil {
		return err
	}
	svc, err := sip.New(cfg, sip.Deps{Router: a.callRouter(), Store: a.DB, Users: a.Users, Automation: auto, Media: media,
		Policy: a.Policy, Events: a.PolicyEvents, Signer: signer, Verifier: verifier})
	if err != nil {
		return err
	}
	if err := svc.Admin().LoadRouting(ctx); err != nil {
		svc.Close()
		return err
	}
	a.SIP = svc
	a.API.MountSIP(svc)
	a.Automation = auto
	a.API.MountCallAutomation(auto)
	if err := a.setupRecording(auto); err != nil {
		svc.Close()
		return err
	}
	a.runners = append(a.runners, svc.Run)
	a.closers = append(a.closers, svc.Close)
	return nil
}

// callRouter is the call domain's routing decision over this node's number inventory.
func (a *App) callRouter() calls.NumberRouter {
	if a.Numbers == nil {
		return calls.NumberRouter{}
	}
	return calls.NumberRouter{Numbers: a.Numbers}
}

// callAutomation builds the Call Automation engine. Its incomingCallContext keys derive from
// the access keys (either verifies, the primary signs).
//
// HOOK (issue 11, events side): the IncomingCall publisher and the mid-call callbacks are
// whatever of a.Webhooks implements calls.IncomingCallPublisher and calls.Callbacks. Until
// they do, no app hears of calls and calls to bot-routed numbers are answered 480, as before.
func (a *App) callAutomation() (*calls.Automation, error) {
	var cfg calls.AutomationConfig
	// The events side (setupCallEvents): IncomingCall to Event Grid webhooks, mid-call events
	// to apps' callbackUri signed with the callback key. Without a publisher a bot-routed call
	// is answered 480.
	if a.IncomingCalls != nil {
		cfg.Publisher = a.IncomingCalls
	}
	if a.Callbacks != nil {
		cfg.Callbacks = a.Callbacks
	}
	cfg.Keys = func() [][]byte {
		k := a.Keys.Current()
		return [][]byte{calls.CallContextKey(k.Primary), calls.CallContextKey(k.Secondary)}
	}
	cfg.Numbers = a.callRouter() // createCall's caller id must be one of this resource's numbers
	cfg.IncomingCallEvents = a.Config.Calls.IncomingCallEvents
	cfg.MaxParticipants = a.Config.Calls.MaxParticipants
	cfg.Logger = a.Log.With("component", "callautomation")
	return calls.NewAutomation(cfg)
}
