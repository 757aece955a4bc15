// Package app assembles a telgw node from its configuration: store, keys, domains, the REST
// edge and the job runner. cmd/telgw calls it; end-to-end tests start it in-process.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/telgw/telgw/config"
	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/buildinfo"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/push"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/smpp"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/turn"
)

// init makes random UUIDs (request ids, message ids: two per SMS accepted) come from a buffer
// of crypto/rand bytes refilled 16 UUIDs at a time rather than a read per UUID. It must run
// before anything makes one, hence init.
func init() { uuid.EnableRandPool() }

// App is one telgw node.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	DB       *store.DB
	Keys     *keys.Ring
	Identity *identity.Service
	API      *api.Server
	Jobs     *jobs.Runner
	Workers  *river.Workers
	Registry *prometheus.Registry
	TURN     *turn.Server
	// SIP is the SIP service; Users what it needs to serve WebRTC users.
	SIP   *sip.Service
	Users *sip.Users
	// Automation is the Call Automation engine (calls to bot-routed numbers; setupSIP).
	Automation *calls.Automation
	Push       *push.Service
	Numbers    *numbers.Service
	// SMS and Webhooks are the SMS service and the webhook dispatcher (setupSMS).
	SMS *sms.Service
	// smppCarriers bind under the cluster's leases (setupCluster).
	smppCarriers []*smpp.Carrier
	Webhooks     *events.Dispatcher
	// IncomingCalls publishes Microsoft.Communication.IncomingCall to the webhooks and
	// Callbacks delivers mid-call events to apps' callbackUri (setupCallEvents): the call
	// engine's calls.IncomingCallPublisher and calls.Callbacks.
	IncomingCalls *events.IncomingCalls
	Callbacks     *events.Callbacks
	// Policy is the fraud policy and PolicyEvents its webhook events (setupPolicy).
	Policy       *policy.Engine
	PolicyEvents *events.PolicyEvents
	// Member is this node's membership of its cluster (cluster.go).
	Member *cluster.Member

	version string

	listener        net.Listener
	metricsListener net.Listener // metrics.addr, when set
	// httpAddr is the bound HTTP address, for the TURN relay's deny list (read concurrently).
	httpAddr atomic.Pointer[netip.AddrPort]
	// runners are extra long-lived components (SIP stack, SMPP binds…) run beside HTTP.
	runners []func(ctx context.Context) error
	closers []func()
}

// OpenStore opens and migrates the configured store.
func OpenStore(ctx context.Context, cfg config.Config) (*store.DB, error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.Database.URL, DataDir: cfg.DataDir, MaxConns: cfg.Database.MaxConns})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// New builds a node: opens and migrates the store, loads keys and wires every domain. It does
// not listen yet; call Run. build labels the telgw_build_info gauge.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, build buildinfo.Info) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry(), Workers: jobs.NewWorkers(), version: build.Version}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build.Collector())
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.DB = db
	a.closers = append(a.closers, func() { _ = db.Close() })
	if a.Keys, err = keys.NewRing(ctx, db, cfg.AccessKey, cfg.Identity.ResourceID); err != nil {
		a.Close()
		return nil, err
	}
	a.Identity = identity.New(db, a.Keys)
	a.API = api.New(api.Config{
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		PublicURL:    cfg.HTTP.PublicURL,
		Logger:       log,
		Registry:     a.Registry,
		Verifier: &api.Verifier{Skew: cfg.HTTP.ClockSkew, Keys: func() [][]byte {
			k := a.Keys.Current()
			return [][]byte{k.Primary, k.Secondary}
		}},
		Ready:            db.Ping,
		MetricsElsewhere: cfg.Metrics.Addr != "",
	})
	a.API.MountIdentity(a.Identity)
	for _, setup := range []func(context.Context) error{a.setupPush, a.setupNumbers, a.setupPolicy, a.setupSMS, a.setupCallEvents, a.setupWebRTC, a.setupSIP, a.setupCluster, a.setupTURN, a.mountWebRTC, a.setupConsole} {
		if err := setup(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	if a.Jobs, err = jobs.New(db, a.Workers, jobs.Config{Logger: quiet(log.With("component", "river")),
		// Call deliveries have their own workers: neither an SMS webhook backlog nor hanging
		// callback URLs delay the IncomingCall of a ringing call.
		Queues: map[string]int{river.QueueDefault: 10, events.QueueCalls: 10, events.QueueCallbacks: 20,
			events.QueueWebhooks: a.webhookWorkers()},
		// No queue polls faster than the default: an IncomingCall's first delivery is
		// direct, and the calls queue only retries those that failed (within seconds), so a
		// 20ms poll there cost SQLite nodes about 3% of a core, idle or not, for nothing.
	}); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close releases what New opened (Run closes it too).
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Listen binds the HTTP listener (so callers learn the port before Run).
func (a *App) Listen() error {
	ln, err := net.Listen("tcp", a.Config.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", a.Config.HTTP.Addr, err)
	}
	if err := a.listenMetrics(); err != nil {
		_ = ln.Close()
		return err
	}
	a.listener = api.LimitListener(ln, a.Config.HTTP.MaxConnsPerIP, a.Registry)
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		a.httpAddr.Store(&ap)
	}
	return nil
}

// Endpoint is the ACS endpoint clients use: the configured public URL or the listener address.
func (a *App) Endpoint() string {
	if a.Config.HTTP.PublicURL != "" {
		return a.Config.HTTP.PublicURL
	}
	scheme := "http"
	if a.Config.HTTP.TLSCert != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(a.listener.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// ConnectionString is the ACS connection string with the primary key.
func (a *App) ConnectionString() string {
	return a.Keys.Current().ConnectionString(a.Endpoint(), keys.PrimaryKey)
}

// Run serves until ctx ends, then stops: HTTP stops accepting and finishes in-flight requests,
// the job runner lets running jobs finish (bounded by http.shutdownTimeout). When ctx ends with
// the cause ErrDrain (SIGTERM) the node drains first (drain, cluster.go): no new calls, those
// in progress run to their end for up to http.shutdownTimeout; otherwise calls are hung up.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	if a.listener == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(a.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := a.writeConnectionString(); err != nil {
		return err
	}
	if err := a.writeListeners(); err != nil {
		return err
	}
	if err := a.joinCluster(ctx); err != nil {
		return err
	}
	srv := a.httpServer(a.API)
	outer := ctx
	ctx, stopRun := context.WithCancel(context.WithoutCancel(outer))
	defer stopRun()
	go func() {
		select {
		case <-outer.Done():
			if errors.Is(context.Cause(outer), ErrDrain) {
				a.drain()
			}
			stopRun()
		case <-ctx.Done():
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if a.Config.HTTP.TLSCert != "" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(a.listener, a.Config.HTTP.TLSCert, a.Config.HTTP.TLSKey)
		} else {
			err = srv.Serve(a.listener)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go(func() error {
		<-gctx.Done()
		a.API.SetReady(false)
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return a.serveMetrics(gctx) })
	g.Go(func() error { return a.Jobs.Run(gctx, a.Config.HTTP.ShutdownTimeout) })
	g.Go(func() error { return a.Keys.Refresh(gctx, a.Config.KeyRefresh) })
	if a.Member != nil {
		g.Go(func() error { return a.Member.Run(gctx) })
	}
	for _, run := range a.runners {
		g.Go(func() error { return run(gctx) })
	}
	a.API.SetReady(true)
	a.warnUnconfigured()
	a.Log.Info("telgw serving", "http", a.listener.Addr().String(), "store", string(a.DB.Dialect()))
	err := g.Wait()
	a.Log.Info("telgw stopped")
	return err
}

// writeConnectionString writes the connection string, 0600 in the 0700 data dir, through a
// temporary file renamed over the old one: readers never see half of it and a file an
// earlier version left 0644 is replaced.
func (a *App) writeConnectionString() error {
	if err := store.PrivateDir(a.Config.DataDir); err != nil {
		return err
	}
	f, err := os.CreateTemp(a.Config.DataDir, ".connection-string-*") // 0600
	if err != nil {
		return fmt.Errorf("write connection string: %w", err)
	}
	_, err = f.WriteString(a.ConnectionString() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(a.Config.DataDir, "connection-string"))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write connection string: %w", err)
	}
	return nil
}

// warnUnconfigured says at start-up what the node cannot do for lack of configuration, so a
// first call or SMS that goes nowhere is explained in the log before it happens.
func (a *App) warnUnconfigured() {
	if len(a.Config.SIP.Trunks) == 0 {
		a.Log.Warn("no SIP trunk configured (sip.trunks): calls to and from the PSTN will fail; WebRTC users and SIP endpoints can still call each other")
	}
	if len(a.Config.SMS.Carriers) == 0 {
		a.Log.Warn("no SMS carrier configured (sms.carriers): sending SMS is refused per recipient and no SMS is received")
	}
}
