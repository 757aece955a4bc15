package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/httpcarrier"
	"github.com/telgw/telgw/internal/sms/smpp"
	"github.com/telgw/telgw/internal/store"
)

// setupSMS wires the sms domain (store, routes, workers, runners) and the webhook dispatcher
// it publishes through.
func (a *App) setupSMS(ctx context.Context) error {
	log := a.Log.With("component", "sms")
	guard, err := a.webhookGuard()
	if err != nil {
		return err
	}
	hooks := events.NewDispatcher(events.Config{Store: a.DB, Guard: guard, Logger: a.Log.With("component", "webhooks"), Registerer: a.Registry,
		Workers: a.webhookWorkers(), Concurrency: a.Config.Webhooks.Concurrency})
	smppMetrics := smpp.NewMetrics(a.Registry)
	if err := hooks.SyncConfig(ctx, a.Config.Webhooks.Subscriptions()); err != nil {
		return err
	}
	hooks.Register(a.Workers)

	var carriers []sms.Carrier
	callbacks := map[string]http.Handler{}
	for i, c := range a.Config.SMS.Carriers {
		if h := c.HTTP; h != nil {
			hc, err := httpcarrier.New(httpcarrier.Config{Name: c.Name, URL: h.URL, Method: h.Method, Body: h.Body,
				ContentType: h.ContentType, Username: h.Username, Password: h.Password, Headers: h.Headers,
				CallbackToken: h.CallbackToken, DLRURL: h.DLRURL, PublicBase: a.Endpoint, Logger: log})
			if err != nil {
				return fmt.Errorf("sms.carriers[%d]: %w", i, err)
			}
			carriers = append(carriers, hc)
			callbacks[c.Name] = hc
			continue
		}
		if c.SMPP == nil {
			continue
		}
		scfg, err := c.SMPPConfig()
		if err != nil {
			return fmt.Errorf("sms.carriers[%d].%w", i, err)
		}
		scfg.Parts, scfg.Logger, scfg.Metrics = a.DB, log, smppMetrics
		sc, err := smpp.New(scfg)
		if err != nil {
			return fmt.Errorf("sms.carriers[%d]: %w", i, err)
		}
		carriers = append(carriers, sc)
		a.smppCarriers = append(a.smppCarriers, sc)
	}
	// The service runs the carriers (Run) as their handler; InFlight (sms.inFlight) defaults to
	// their windows.
	a.PolicyEvents.Dispatcher = hooks
	// PostgreSQL flushes concurrent commits together; SQLite has one writer.
	commits := 1
	if a.DB.Dialect() == store.Postgres {
		commits = 2
	}
	// The senders' leases name the node (cluster.nodeName, default the hostname), so that it
	// takes back at once what it had leased when it is started again after a kill -9.
	svc := sms.New(sms.Config{Store: a.DB, Events: hooks, Carriers: carriers, Numbers: a.SMSNumbers(), Logger: log, Registerer: a.Registry,
		Limits: policy.SMSGate{Engine: a.Policy, Events: a.PolicyEvents}, CommitParallel: commits, InFlight: a.Config.SMS.InFlight,
		Node: a.Config.Cluster.NodeName})
	svc.Register(a.Workers)
	a.SMS, a.Webhooks = svc, hooks
	a.API.MountSMS(svc, hooks)
	a.API.MountSMSCallbacks(callbacks)
	a.runners = append(a.runners, svc.Run, hooks.Run)
	return nil
}

// webhookWorkers is webhooks.workers: the workers of the webhook delivery queue.
func (a *App) webhookWorkers() int {
	if n := a.Config.Webhooks.Workers; n > 0 {
		return n
	}
	return events.DefaultWorkers
}
