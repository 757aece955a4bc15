package app

import "context"

// setupSIP wires the sip domain (store, routes, workers, runners).
func (a *App) setupSIP(ctx context.Context) error {
	_ = ctx
	return nil
}
