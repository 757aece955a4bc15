package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Relay.
type Config struct {
	// ListenIP is the local address RTP sockets bind to. Default 127.0.0.1.
	ListenIP netip.Addr
	// ExternalIP is the address written into SDP (1:1 NAT, public address). Default ListenIP
	// (or 127.0.0.1 when ListenIP is unspecified).
	ExternalIP netip.Addr
	// PortMin and PortMax bound the RTP/RTCP port pairs (RTP even, RTCP odd). Default
	// 20000–39999.
	PortMin, PortMax int
	// MediaTimeout ends a bridge when a leg that should be sending has sent no RTP for this
	// long after Arm. Default 30s; negative disables.
	MediaTimeout time.Duration
	// Logger receives bridge events. Default: discard.
	Logger *slog.Logger
	// Registerer receives the relay's metrics. Default: none.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the relay defaults (docs/CONFIG.md sip.media).
func DefaultConfig() Config {
	return Config{PortMin: 20000, PortMax: 39999, MediaTimeout: 30 * time.Second}
}

// withDefaults returns c with zero fields set from DefaultConfig and the derived ones: ListenIP
// 127.0.0.1, ExternalIP ListenIP (127.0.0.1 when unspecified), PortMin rounded up to even.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if !c.ListenIP.IsValid() {
		c.ListenIP = netip.MustParseAddr("127.0.0.1")
	}
	if !c.ExternalIP.IsValid() {
		c.ExternalIP = c.ListenIP
		if c.ExternalIP.IsUnspecified() {
			c.ExternalIP = netip.MustParseAddr("127.0.0.1")
		}
	}
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = d.PortMin, d.PortMax
	}
	if c.PortMin%2 == 1 {
		c.PortMin++
	}
	if c.MediaTimeout == 0 {
		c.MediaTimeout = d.MediaTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem with c, keys as docs/CONFIG.md names them under sip.media
// ("portMin/portMax", "timeout"). Pure: c is not modified.
func (c Config) Validate() error {
	var errs []error
	if c.PortMin < 1024 || c.PortMax > 65535 || c.PortMax-c.PortMin < 1 {
		errs = append(errs, fmt.Errorf("portMin/portMax: %d–%d must hold at least one RTP/RTCP pair within 1024–65535", c.PortMin, c.PortMax))
	}
	if c.MediaTimeout == 0 {
		errs = append(errs, errors.New("timeout: must not be 0 (negative disables)"))
	}
	return errors.Join(errs...)
}

// Relay allocates UDP legs from a port range and bridges legs together.
type Relay struct {
	cfg   Config
	ports *ports
	m     metrics
}

type metrics struct {
	packets  *prometheus.CounterVec
	timeouts prometheus.Counter
	lost     prometheus.Counter
	active   prometheus.Gauge
	portsUse prometheus.Gauge
}

// New builds a Relay from cfg (defaults filled in).
func New(cfg Config) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	r := &Relay{cfg: cfg, ports: &ports{min: cfg.PortMin, max: cfg.PortMax, next: cfg.PortMin, used: map[int]bool{}}}
	r.m = metrics{
		packets:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_rtp_packets_relayed_total", Help: "RTP and RTCP packets relayed between call legs."}, []string{"kind"}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_rtp_media_timeouts_total", Help: "Bridges ended because a leg sent no RTP within the media timeout."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_rtp_packets_lost_total",
			Help: "RTP packets missing from what legs received (sequence-number gaps, RFC 3550 §6.4.1)."}),
		active:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "telgw_rtp_bridges_active", Help: "Media bridges running."}),
		portsUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telgw_rtp_port_pairs_in_use", Help: "RTP/RTCP port pairs allocated."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.m.packets, r.m.timeouts, r.m.lost, r.m.active, r.m.portsUse} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("bridge: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// ExternalIP is the address to write in SDP.
func (r *Relay) ExternalIP() netip.Addr { return r.cfg.ExternalIP }

// NewUDPLeg opens a UDP leg on the next free port pair.
func (r *Relay) NewUDPLeg() (*UDPLeg, error) {
	a, b, port, err := r.ports.open(r.cfg.ListenIP)
	if err != nil {
		return nil, err
	}
	r.m.portsUse.Inc()
	l := &UDPLeg{rtp: a, rtcp: b, local: netip.AddrPortFrom(r.cfg.ExternalIP, uint16(port))}
	l.stats.lastSeq.Store(-1)
	l.lost = func(n uint64) { r.m.lost.Add(float64(n)) }
	l.release = func() { r.ports.free(port); r.m.portsUse.Dec() }
	return l, nil
}

// ErrMediaTimeout is why a bridge ended when a leg stopped sending RTP.
var ErrMediaTimeout = errors.New("bridge: media timeout")

// Bridge relays packets between two legs until Close or a media timeout.
type Bridge struct {
	mu      sync.Mutex
	legs    [2]Leg       // guarded by mu; Replace swaps one
	since   [2]time.Time // when each leg was put in (guarded by mu), for the media timeout
	stopped bool         // guarded by mu
	r       *Relay
	done    chan struct{}
	once    sync.Once
	err     atomic.Pointer[error]
	armed   chan struct{}
	armOnce sync.Once
	wg      sync.WaitGroup
	// expect[i] is whether leg i should be sending (not on hold), for the media timeout.
	expect [2]atomic.Bool
}

// Bridge starts relaying between a and b: RTP and RTCP in both directions, each in its own
// goroutine, so early media (RFC 3261 §13.2.1, 183 with SDP) flows as soon as both legs know
// their peers. Close ends it; the legs are closed too.
func (r *Relay) Bridge(a, b Leg) *Bridge {
	br := &Bridge{legs: [2]Leg{a, b}, r: r, done: make(chan struct{}), armed: make(chan struct{})}
	br.expect[0].Store(true)
	br.expect[1].Store(true)
	r.m.active.Inc()
	br.wg.Add(4)
	br.pumps(0, a)
	br.pumps(1, b)
	if r.cfg.MediaTimeout > 0 {
		br.wg.Add(1)
		go br.watch()
	}
	return br
}

// leg is the leg on side i now.
func (br *Bridge) leg(i int) Leg {
	br.mu.Lock()
	defer br.mu.Unlock()
	return br.legs[i]
}

// pumps starts the two goroutines (RTP, RTCP) that read from the leg on side i and write
// to whichever leg is on the other side at the time (wg.Add(2) is the caller's).
func (br *Bridge) pumps(i int, from Leg) {
	pump := func(rtcp bool) {
		defer br.wg.Done()
		kind := "rtp"
		if rtcp {
			kind = "rtcp"
		}
		c := br.r.m.packets.WithLabelValues(kind)
		buf := make([]byte, 1500)
		for {
			var n int
			var err error
			if rtcp {
				n, err = from.ReadRTCP(buf)
			} else {
				n, err = from.ReadRTP(buf)
			}
			if err != nil {
				return
			}
			to := br.leg(1 - i)
			if rtcp {
				err = to.WriteRTCP(buf[:n])
			} else {
				err = to.WriteRTP(buf[:n])
			}
			if err == nil {
				c.Inc()
			}
		}
	}
	go pump(false)
	go pump(true)
}

// Replace puts l on side i (0 or 1) in place of the leg there, which is closed: what the
// other side sends goes to l from now on (a call transfer: the transferee's media is
// re-bridged to the transfer target's leg). The media timeout of side i starts afresh. On a
// bridge that has stopped, l is closed.
func (br *Bridge) Replace(i int, l Leg) {
	i &= 1
	br.mu.Lock()
	if br.stopped {
		br.mu.Unlock()
		_ = l.Close()
		return
	}
	old := br.legs[i]
	br.legs[i], br.since[i] = l, time.Now()
	br.wg.Add(2)
	br.mu.Unlock()
	_ = old.Close()
	br.pumps(i, l)
}

// Arm starts the media timeout (call it when the call is answered: a ringing phone sends no
// media).
func (br *Bridge) Arm() { br.armOnce.Do(func() { close(br.armed) }) }

// SetSending tells the media timeout whether leg 0 (a) or 1 (b) is expected to send: false
// while the SDP direction says it does not (sendonly from the other side, inactive; RFC 3264
// §5.1 hold).
func (br *Bridge) SetSending(leg int, sending bool) { br.expect[leg&1].Store(sending) }

type lastReceiver interface{ LastReceived() time.Time }

func (br *Bridge) watch() {
	defer br.wg.Done()
	select {
	case <-br.armed:
	case <-br.done:
		return
	}
	armedAt := time.Now()
	tick := time.NewTicker(min(br.r.cfg.MediaTimeout/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-br.done:
			return
		case now := <-tick.C:
			for i := range 2 {
				br.mu.Lock()
				l, since := br.legs[i], br.since[i]
				br.mu.Unlock()
				lr, ok := l.(lastReceiver)
				if !ok || !br.expect[i].Load() {
					continue
				}
				last := lr.LastReceived()
				if last.Before(armedAt) {
					last = armedAt
				}
				if last.Before(since) {
					last = since
				}
				if now.Sub(last) > br.r.cfg.MediaTimeout {
					br.r.m.timeouts.Inc()
					br.r.cfg.Logger.Info("media timeout", "leg", i, "silent", now.Sub(last).Round(time.Second))
					br.stop(ErrMediaTimeout)
					return
				}
			}
		}
	}
}

func (br *Bridge) stop(err error) {
	br.once.Do(func() {
		if err != nil {
			br.err.Store(&err)
		}
		close(br.done)
		br.mu.Lock()
		br.stopped = true
		a, b := br.legs[0], br.legs[1]
		br.mu.Unlock()
		_ = a.Close()
		_ = b.Close()
		br.r.m.active.Dec()
	})
}

// Done is closed when the bridge has ended (Close or media timeout).
func (br *Bridge) Done() <-chan struct{} { return br.done }

// Err is why the bridge ended by itself (ErrMediaTimeout), or nil.
func (br *Bridge) Err() error {
	if p := br.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops relaying, closes both legs and waits for the bridge's goroutines.
func (br *Bridge) Close() {
	br.stop(nil)
	br.wg.Wait()
}
