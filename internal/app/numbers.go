package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/telgw/telgw/config"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/store"
)

// setupNumbers wires the numbers domain (store, routes, workers, runners): the ACS phone
// numbers API and operator inventory routes (including assigning numbers to communication
// users), and the sweeper that tidies expired holds and quarantines (availability itself never
// waits for it).
func (a *App) setupNumbers(ctx context.Context) error {
	_ = ctx
	a.Numbers = numbers.New(NumbersConfig(a.Config, a.DB, a.Log.With("component", "numbers")))
	a.API.MountNumbers(a.Numbers)
	a.runners = append(a.runners, a.Numbers.Run)
	return nil
}

// NumbersConfig is the numbers.Config a node and the `telgw numbers` CLI build from the
// configuration and store: the quarantine and the check that a communication user exists
// before a number is assigned to it (the identities table of the same store).
func NumbersConfig(cfg config.Config, db *store.DB, log *slog.Logger) numbers.Config {
	c := cfg.Numbers.ServiceConfig()
	c.Store, c.Logger, c.UserExists = db, log, userExists(db)
	return c
}

// userExists answers numbers.Config.UserExists from the identity store.
func userExists(ids interface {
	IdentityGet(ctx context.Context, id string) (identity.Identity, error)
}) func(ctx context.Context, id string) (bool, error) {
	return func(ctx context.Context, id string) (bool, error) {
		_, err := ids.IdentityGet(ctx, id)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, problem.ErrNotFound):
			return false, nil
		}
		return false, fmt.Errorf("identity %s: %w", id, err)
	}
}

// SMSNumbers adapts the numbers domain to sms.Numbers (sender checks and carrier choice), for
// sms.Config.Numbers.
func (a *App) SMSNumbers() sms.Numbers { return smsNumbers{a.Numbers} }

type smsNumbers struct{ svc *numbers.Service }

func (s smsNumbers) SMSNumber(ctx context.Context, e164 string) (sms.NumberInfo, error) {
	r, err := s.svc.NumberRoute(ctx, e164)
	if errors.Is(err, problem.ErrNotFound) || problem.KindOf(err) == problem.KindInvalid {
		return sms.NumberInfo{}, nil
	}
	if err != nil {
		return sms.NumberInfo{}, err
	}
	return sms.NumberInfo{Purchased: true, CanSend: r.Caps.SMS.Outbound(), CanReceive: r.Caps.SMS.Inbound(), Carrier: r.Carrier}, nil
}
