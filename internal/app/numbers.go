package app

import (
	"context"
	"errors"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

// setupNumbers wires the numbers domain (store, routes, workers, runners): the ACS phone
// numbers API and operator inventory routes, and the sweeper that tidies expired holds and
// quarantines (availability itself never waits for it).
func (a *App) setupNumbers(ctx context.Context) error {
	_ = ctx
	days := a.Config.Numbers.QuarantineDays
	if days == 0 {
		days = -1 // configured 0 means no quarantine; numbers.Config reads 0 as "default"
	}
	a.Numbers = numbers.New(numbers.Config{Store: a.DB, QuarantineDays: days, Logger: a.Log.With("component", "numbers")})
	a.API.MountNumbers(a.Numbers)
	a.runners = append(a.runners, a.Numbers.Run)
	return nil
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
