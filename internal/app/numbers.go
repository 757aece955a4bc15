package app

import "context"

// setupNumbers wires the numbers domain (store, routes, workers, runners).
func (a *App) setupNumbers(ctx context.Context) error {
	_ = ctx
	return nil
}
