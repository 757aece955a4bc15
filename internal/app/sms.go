package app

import "context"

// setupSMS wires the sms domain (store, routes, workers, runners).
func (a *App) setupSMS(ctx context.Context) error {
	_ = ctx
	return nil
}
