package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
)

// setupConsole mounts the operator web console at /console/ over this node's services, with
// sessions and sign-in links in the store, and sweeps expired ones.
func (a *App) setupConsole(context.Context) error {
	if !a.Config.Console.Enabled {
		return nil
	}
	cfg := console.Config{
		Store:      a.DB,
		SessionTTL: a.Config.Console.SessionTTL,
		Keys: func() ([]byte, []byte) {
			k := a.Keys.Current()
			return k.Primary, k.Secondary
		},
		PublicURL: a.Config.HTTP.PublicURL,
		Logger:    a.Log.With("component", "console"),
		Ready:     a.DB.Ping,
		SMPPBound: a.smppBound,
	}
	if a.Numbers != nil {
		cfg.Numbers = a.Numbers
	}
	if a.SMS != nil {
		cfg.Messages = a.SMS
	}
	if a.Webhooks != nil {
		cfg.Webhooks = consoleWebhooks{a}
	}
	if a.SIP != nil {
		cfg.SIP = consoleSIP{a.SIP}
	}
	if a.Users != nil && a.Users.Registrar != nil && a.Users.Registrar.Location != nil {
		cfg.Registrations = consoleRegistrations{a.Users.Registrar.Location}
	}
	h, err := console.New(cfg)
	if err != nil {
		return err
	}
	a.API.Router().Mount("/console", h)
	a.runners = append(a.runners, func(ctx context.Context) error { return h.Sweep(ctx, 10*time.Minute) })
	return nil
}

// smppBound reads telgw_smpp_bound_links from this node's metrics, by carrier.
func (a *App) smppBound() map[string]int {
	mfs, err := a.Registry.Gather()
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "telgw_smpp_bound_links" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "carrier" {
					out[l.GetValue()] = int(m.GetGauge().GetValue())
				}
			}
		}
	}
	return out
}

// consoleSIP adapts the SIP service to console.SIP.
type consoleSIP struct{ svc *sip.Service }

func (c consoleSIP) Trunks() []console.Trunk {
	var out []console.Trunk
	for _, t := range c.svc.Admin().Trunks() {
		out = append(out, console.Trunk{Name: t.Name, Address: t.Address, Transport: t.Transport, Up: t.Up, Active: t.Active})
	}
	return out
}

func (c consoleSIP) ActiveCalls() int       { return c.svc.ActiveCalls() }
func (c consoleSIP) Routing() calls.Routing { return c.svc.Admin().Routing() }

// SetRoutes replaces the routes through the same method PATCH /sip uses.
func (c consoleSIP) SetRoutes(ctx context.Context, routes []calls.OutboundRoute) (calls.Routing, error) {
	return c.svc.Admin().PatchRouting(ctx, sip.RoutingPatch{Routes: &routes})
}

func (c consoleSIP) Calls(ctx context.Context, p calls.CDRListParams) ([]calls.CDR, error) {
	return c.svc.Admin().Calls(ctx, p)
}

// consoleRegistrations adapts the registrar's location service to console.Registrations.
type consoleRegistrations struct{ loc *registrar.Location }

func (c consoleRegistrations) Registrations() []console.Registration {
	var out []console.Registration
	for _, ct := range c.loc.All() {
		out = append(out, console.Registration{Identity: ct.Identity, Contact: ct.URI.String(), Transport: ct.Transport,
			Source: ct.Source, UserAgent: ct.UserAgent, Expires: ct.Expires})
	}
	return out
}

// consoleWebhooks adapts the webhook dispatcher (subscriptions) and the job runner (deliveries
// are its telgw.webhook jobs) to console.Webhooks.
type consoleWebhooks struct{ a *App }

func (c consoleWebhooks) List(ctx context.Context) ([]events.Subscription, error) {
	return c.a.Webhooks.List(ctx)
}

func (c consoleWebhooks) Deliveries(ctx context.Context, limit int) ([]console.Delivery, error) {
	if c.a.Jobs == nil {
		return nil, errors.New("the job runner is not set up")
	}
	rows, err := c.a.Jobs.Jobs(ctx, events.DeliverArgs{}.Kind(), limit)
	if err != nil {
		return nil, err
	}
	subs, err := c.a.Webhooks.List(ctx)
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, s := range subs {
		urls[s.ID] = s.URL
	}
	out := make([]console.Delivery, 0, len(rows))
	for _, j := range rows {
		d := console.Delivery{ID: j.ID, State: string(j.State), Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
			CreatedAt: j.CreatedAt, ScheduledAt: j.ScheduledAt}
		if j.AttemptedAt != nil {
			d.AttemptedAt = *j.AttemptedAt
		}
		if n := len(j.Errors); n > 0 {
			d.LastError = j.Errors[n-1].Error
		}
		var args events.DeliverArgs
		if json.Unmarshal(j.EncodedArgs, &args) == nil {
			d.EventID = args.EventID
			if n := len(args.More); n > 0 {
				d.EventID += fmt.Sprintf(" (+%d more)", n) // one job delivers a commit's events
			}
			d.URL = urls[args.SubscriptionID]
			if d.URL == "" {
				d.URL = "(deleted subscription " + args.SubscriptionID + ")"
			}
			var ev struct {
				EventType string `json:"eventType"`
			}
			if json.Unmarshal(args.Event, &ev) == nil {
				d.EventType = ev.EventType
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func (c consoleWebhooks) RetryNow(ctx context.Context, id int64) error {
	if c.a.Jobs == nil {
		return errors.New("the job runner is not set up")
	}
	return c.a.Jobs.RetryNow(ctx, events.DeliverArgs{}.Kind(), id)
}
