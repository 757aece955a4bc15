package sip

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"
)

// trunk is a TrunkConfig with its run-time state: calls in progress, the CPS bucket and the
// OPTIONS health.
type trunk struct {
	TrunkConfig
	active  atomic.Int64
	limiter *rate.Limiter // nil: no CPS limit
	up      atomic.Bool
	fails   atomic.Int32
}

func newTrunk(c TrunkConfig) *trunk {
	t := &trunk{TrunkConfig: c}
	if c.CPS > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(c.CPS), max(1, int(c.CPS)))
	}
	t.up.Store(true)
	return t
}

// allows reports whether src is in the trunk's allow-list.
func (t *trunk) allows(src netip.Addr) bool {
	src = src.Unmap()
	for _, p := range t.Allow {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// acquire takes a call slot, honouring MaxCalls and CPS; release gives it back.
func (t *trunk) acquire() bool {
	if t.MaxCalls > 0 && t.active.Add(1) > int64(t.MaxCalls) {
		t.active.Add(-1)
		return false
	}
	if t.MaxCalls <= 0 {
		t.active.Add(1)
	}
	if t.limiter != nil && !t.limiter.Allow() {
		t.active.Add(-1)
		return false
	}
	return true
}

func (t *trunk) release() { t.active.Add(-1) }

// trunkTable is the carrier side of the SIP edge: the current trunks and outbound routes
// (replaced whole by Admin.SetRouting), which trunk a request comes from, the trunks a call out
// may use in failover order, and what telgw does with trunks on its own: OPTIONS keepalives
// (below) and registrations (register.go).
type trunkTable struct {
	log *slog.Logger
	m   *metrics
	sc  *clients

	mu     sync.RWMutex
	byName map[string]*trunk
	order  []*trunk
	routes []OutboundRoute

	regMu sync.Mutex
	regs  map[string]*registration // by trunk name
	regWG sync.WaitGroup
}

func newTrunkTable(log *slog.Logger, m *metrics, sc *clients) *trunkTable {
	return &trunkTable{log: log, m: m, sc: sc, regs: map[string]*registration{}}
}

func (s *trunkTable) set(trunks []TrunkConfig, routes []OutboundRoute) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byName
	s.byName = map[string]*trunk{}
	s.order = nil
	for _, c := range trunks {
		t := newTrunk(c)
		if o, ok := old[c.Name]; ok {
			// Keep counters and health across a routing update.
			t.active.Store(o.active.Load())
			t.up.Store(o.up.Load())
		}
		s.byName[c.Name] = t
		s.order = append(s.order, t)
	}
	s.routes = routes
}

func (s *trunkTable) bySource(src netip.Addr) *trunk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.order {
		if t.allows(src) {
			return t
		}
	}
	return nil
}

// outbound returns the trunks of the first route matching e164 (ACS: routes are evaluated in
// order, the first match wins), skipping unknown names.
func (s *trunkTable) outbound(e164 string) []*trunk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range s.routes {
		if !s.routes[i].Match(e164) {
			continue
		}
		var out []*trunk
		for _, n := range s.routes[i].Trunks {
			if t, ok := s.byName[n]; ok {
				out = append(out, t)
			}
		}
		return out
	}
	return nil
}

// named returns the trunk called name, nil when there is none.
func (s *trunkTable) named(name string) *trunk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byName[name]
}

// of returns the trunk req came from, matched by source address; never for a request over a
// WebSocket, whose source address says nothing (a reverse proxy on the trunk's host, a browser
// behind the carrier's NAT).
func (s *trunkTable) of(req *sip.Request) *trunk {
	if transportOf(req) == "ws" {
		return nil
	}
	return s.bySource(srcAddr(req))
}

// fromTrunk reports whether req comes from a trunk's address, over anything but a WebSocket
// (always a user's). A carrier's traffic is limited by the trunk's own cps (inbound calls over
// it get 503 with Retry-After, RFC 3261 §21.5.4), not by the per-source flood limit, which
// would silently drop a busy carrier's calls.
func (s *trunkTable) fromTrunk(req *sip.Request) bool { return s.of(req) != nil }

// up reports a trunk's OPTIONS health (true when keepalives are off).
func (s *trunkTable) up(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.byName[name]
	return ok && t.up.Load()
}

// routing returns the current trunks and routes.
func (s *trunkTable) routing() ([]TrunkConfig, []OutboundRoute) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]TrunkConfig, len(s.order))
	for i, t := range s.order {
		out[i] = t.TrunkConfig
	}
	return out, append([]OutboundRoute(nil), s.routes...)
}

func (s *trunkTable) all() []*trunk {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*trunk(nil), s.order...)
}

// keepalive sends OPTIONS (RFC 3261 §11) to every trunk with an OptionsInterval and keeps its
// up/down state: down after two failures in a row (no response or 5xx/408), up after one
// answer. Any response but 408/5xx counts as alive: a 404 or 405 still proves the peer is there.
func (s *trunkTable) keepalive(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer s.regWG.Wait()
	s.registerTrunks(ctx, time.Now())
	last := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.registerTrunks(ctx, now)
			for _, t := range s.all() {
				if t.OptionsInterval <= 0 || now.Sub(last[t.Name]) < t.OptionsInterval {
					continue
				}
				last[t.Name] = now
				s.ping(ctx, t)
			}
		}
	}
}

func (s *trunkTable) ping(ctx context.Context, t *trunk) {
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: hostOf(t.Address), Port: portOf(t.Address)})
	req.SetTransport(t.Transport)
	ctx, cancel := context.WithTimeout(ctx, min(t.OptionsInterval, 5*time.Second))
	defer cancel()
	res, err := s.sc.clientFor(t.Transport).Do(ctx, req)
	ok := err == nil && res.StatusCode != 408 && res.StatusCode < 500
	if ok {
		t.fails.Store(0)
		if !t.up.Swap(true) {
			s.log.Info("trunk up", "trunk", t.Name)
		}
		s.m.trunkUp.WithLabelValues(t.Name).Set(1)
		return
	}
	if t.fails.Add(1) >= 2 && t.up.Swap(false) {
		s.log.Warn("trunk down", "trunk", t.Name, "err", err)
		s.m.trunkUp.WithLabelValues(t.Name).Set(0)
	}
}
