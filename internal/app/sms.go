package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/gsm"
	"github.com/telgw/telgw/internal/sms/httpcarrier"
	"github.com/telgw/telgw/internal/sms/smpp"
	"github.com/telgw/telgw/internal/store"
)

// setupSMS wires the sms domain (store, routes, workers, runners) and the webhook dispatcher
// it publishes through.
func (a *App) setupSMS(ctx context.Context) error {
	log := a.Log.With("component", "sms")
	jobs := jobsInserter{a: a}
	guard, err := a.webhookGuard()
	if err != nil {
		return err
	}
	hooks := events.NewDispatcher(events.Config{Store: a.DB, Jobs: jobs, Guard: guard, Logger: a.Log.With("component", "webhooks"), Registerer: a.Registry})
	smppMetrics := smpp.NewMetrics(a.Registry)
	var subs []events.Subscription
	for _, w := range a.Config.Webhooks.Subscribers {
		subs = append(subs, events.Subscription{URL: w.URL, Secret: w.Secret, EventTypes: w.EventTypes, PhoneNumbers: w.PhoneNumbers})
	}
	if err := hooks.SyncConfig(ctx, subs); err != nil {
		return err
	}
	hooks.Register(a.Workers)

	handler := &carrierHandler{}
	var carriers []sms.Carrier
	var runners []func(context.Context) error
	inflight := 0
	callbacks := map[string]http.Handler{}
	for i, c := range a.Config.SMS.Carriers {
		if h := c.HTTP; h != nil {
			hc, err := httpcarrier.New(httpcarrier.Config{Name: c.Name, URL: h.URL, Method: h.Method, Body: h.Body,
				ContentType: h.ContentType, Username: h.Username, Password: h.Password, Headers: h.Headers,
				CallbackToken: h.CallbackToken, DLRURL: h.DLRURL, PublicBase: a.Endpoint, Handler: handler, Logger: log})
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
		concat, err := gsm.ParseConcat(c.SMPP.Concat)
		if err != nil {
			return fmt.Errorf("sms.carriers[%d].smpp.concat: %w", i, err)
		}
		sc, err := smpp.New(smpp.Config{Name: c.Name, Address: c.SMPP.Address, SystemID: c.SMPP.SystemID, Password: c.SMPP.Password,
			SystemType: c.SMPP.SystemType, Window: c.SMPP.Window, MaxRate: c.SMPP.MaxRate, Links: c.SMPP.Links, Concat: concat, BindMode: c.SMPP.BindMode,
			ReassemblyTimeout: c.SMPP.ReassemblyTimeout,
			Handler:           handler, Logger: log, Metrics: smppMetrics})
		if err != nil {
			return fmt.Errorf("sms.carriers[%d]: %w", i, err)
		}
		sc.SetPartStore(a.DB)
		carriers = append(carriers, sc)
		inflight += sc.MaxInFlight()
		runners = append(runners, sc.Run)
	}
	svc := sms.New(sms.Config{Store: a.DB, Jobs: jobs, Events: hooks, Carriers: carriers, Numbers: a.SMSNumbers(), Logger: log,
		InFlight: inflight, Registerer: a.Registry})
	handler.svc = svc
	svc.Register(a.Workers)
	a.API.MountSMS(svc, hooks, a.DB)
	a.API.MountSMSCallbacks(callbacks)
	a.runners = append(a.runners, runners...)
	a.runners = append(a.runners, svc.Run, hooks.Run)
	return nil
}

// carrierHandler hands carrier traffic to the service built after the carriers.
type carrierHandler struct{ svc *sms.Service }

func (h *carrierHandler) HandleInbound(ctx context.Context, m sms.Inbound) error {
	return h.svc.HandleInbound(ctx, m)
}

func (h *carrierHandler) HandleReceipt(ctx context.Context, r sms.Receipt) error {
	return h.svc.HandleReceipt(ctx, r)
}

// jobsInserter adapts the job runner (built after the domains) to events.Inserter.
type jobsInserter struct{ a *App }

func (j jobsInserter) InsertTx(ctx context.Context, tx any, args river.JobArgs, opts *river.InsertOpts) error {
	stx, ok := tx.(*store.Tx)
	if !ok {
		return fmt.Errorf("insert job: transaction is %T, not *store.Tx", tx)
	}
	_, err := j.a.Jobs.InsertTx(ctx, stx, args, opts)
	return err
}

func (j jobsInserter) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := j.a.Jobs.Insert(ctx, args, opts)
	return err
}
