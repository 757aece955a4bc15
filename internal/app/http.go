package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/telgw/telgw/internal/events"
)

// httpServer is the REST/WebSocket server with the http.* limits: header and whole-request
// read deadlines, a write deadline (lifted for /sip/ws by api.LongLived), idle keep-alive
// connections closed, a header size cap.
func (a *App) httpServer(h http.Handler) *http.Server {
	c := a.Config.HTTP
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
}

// listenMetrics binds metrics.addr when it is set (Listen calls it).
func (a *App) listenMetrics() error {
	if a.Config.Metrics.Addr == "" || a.metricsListener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.Metrics.Addr)
	if err != nil {
		return fmt.Errorf("listen metrics %s: %w", a.Config.Metrics.Addr, err)
	}
	a.metricsListener = ln
	return nil
}

// MetricsAddr is the address /metrics is served on when metrics.addr is set, else nil.
func (a *App) MetricsAddr() net.Addr {
	if a.metricsListener == nil {
		return nil
	}
	return a.metricsListener.Addr()
}

// serveMetrics serves /metrics alone on metrics.addr until ctx ends.
func (a *App) serveMetrics(ctx context.Context) error {
	if a.metricsListener == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.API.MetricsHandler())
	if a.Config.Metrics.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	a.Log.Info("metrics serving", "addr", a.metricsListener.Addr().String())
	if err := srv.Serve(a.metricsListener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// webhookGuard is the SSRF policy of webhooks.allowPrivate and webhooks.allowCIDRs.
func (a *App) webhookGuard() (*events.Guard, error) {
	allow, err := events.ParseCIDRs(a.Config.Webhooks.AllowCIDRs)
	if err != nil {
		return nil, fmt.Errorf("webhooks.allowCIDRs: %w", err)
	}
	return &events.Guard{AllowPrivate: a.Config.Webhooks.AllowPrivate, Allow: allow}, nil
}
