// Package webrtc is the WebRTC side of telgw's media bridge: a call leg on pion/webrtc that
// speaks ICE, DTLS-SRTP (RFC 5764) with rtcp-mux and BUNDLE to a browser or app, and hands
// plain RTP packets (github.com/pion/rtp) to and from the carrier's RTP leg.
//
// Media is G.711 (PCMU or PCMA) relayed without transcoding, plus RFC 4733 telephone-event for
// DTMF. Because SIP carries one complete SDP per offer/answer (RFC 3264), ICE is not trickled
// (RFC 8829 §5.2/§5.3: the description is taken once gathering is complete, candidates
// included).
//
// Two directions:
//   - Engine.Answer: a WebRTC user calls out; its INVITE carries the browser's offer and telgw
//     answers.
//   - Engine.Offer then Leg.SetAnswer: a carrier calls a WebRTC user; the INVITE telgw sends the
//     user carries telgw's offer.
//
// A leg reports EventConnected once ICE and DTLS are up, and EventFailed (then frees its
// sockets and goroutines) if they do not come up within Config.ConnectTimeout, if they fail
// later, or if no RTP arrives for Config.MediaTimeout while the peer should be sending.
package webrtc

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	pion "github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine. The zero value works: host candidates on every interface,
// ephemeral ports, PCMU preferred over PCMA.
type Config struct {
	// PortMin and PortMax bound the UDP ports of ICE host candidates. Default 0 and 0: the
	// operating system's ephemeral ports. Set both or neither.
	PortMin, PortMax uint16
	// PublicIPs replaces the address of host candidates with these (1:1 NAT, e.g. a cloud VM's
	// public address). Default: none.
	PublicIPs []string
	// IPs restricts host candidates to these local addresses. Default: every interface that is up.
	IPs []string
	// IncludeLoopback also gathers 127.0.0.1/::1 candidates (single-host set-ups and tests).
	// Default false (browsers never use loopback candidates).
	IncludeLoopback bool
	// Codecs is the G.711 preference order ("PCMU", "PCMA") for answers and offers. Default
	// PCMU, PCMA.
	Codecs []string
	// DTMFPayloadType is the telephone-event/8000 payload type in telgw's own offers
	// (RFC 4733 §7.1.1). Default 101.
	DTMFPayloadType uint8
	// ConnectTimeout bounds ICE connectivity checks plus the DTLS handshake, counted from the
	// answer. Default 20s.
	ConnectTimeout time.Duration
	// MediaTimeout fails a connected leg that receives no RTP for this long while the peer's
	// description says it sends. Default 30s; negative disables.
	MediaTimeout time.Duration
	// ICEServers returns STUN/TURN servers gathered for each leg, e.g. the embedded TURN server
	// (turn.Server.URLs with a credential from turn.Server.Issue), so telgw also offers a relayed
	// candidate. Default nil: host candidates only, which is enough when telgw has a public
	// address (the browser uses its own TURN server if it needs one).
	ICEServers func() []pion.ICEServer
	// ResolveMDNS resolves the peer's ".local" mDNS host candidates (RFC 8839 §5.1 obfuscated
	// addresses). Default false: peer-reflexive candidates learnt from the browser's checks suffice,
	// and no multicast socket is opened per leg.
	ResolveMDNS bool
}

// DefaultConfig returns the engine defaults (docs/CONFIG.md sip.webrtc).
func DefaultConfig() Config {
	return Config{Codecs: []string{PCMU, PCMA}, DTMFPayloadType: 101, ConnectTimeout: 20 * time.Second, MediaTimeout: 30 * time.Second}
}

// withDefaults returns c with its zero fields set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if len(c.Codecs) == 0 {
		c.Codecs = d.Codecs
	}
	c.DTMFPayloadType = cmp.Or(c.DTMFPayloadType, d.DTMFPayloadType)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, d.ConnectTimeout)
	c.MediaTimeout = cmp.Or(c.MediaTimeout, d.MediaTimeout)
	return c
}

// Validate reports every problem with c, keys as docs/CONFIG.md names them under sip.webrtc
// ("portMin/portMax", "ips[0]"). Pure: c is not modified. Zero Codecs, DTMFPayloadType and
// timeouts are valid (NewEngine takes DefaultConfig's).
func (c Config) Validate() error {
	var errs []error
	for i, codec := range c.Codecs {
		if s := strings.ToUpper(codec); s != PCMU && s != PCMA {
			errs = append(errs, fmt.Errorf("codecs[%d]: %q is not PCMU or PCMA", i, codec))
		}
	}
	if c.DTMFPayloadType != 0 && (c.DTMFPayloadType < 96 || c.DTMFPayloadType > 127) {
		errs = append(errs, fmt.Errorf("dtmfPayloadType: %d is not dynamic (96-127)", c.DTMFPayloadType))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, errors.New("connectTimeout: must be positive"))
	}
	if (c.PortMin == 0) != (c.PortMax == 0) {
		errs = append(errs, fmt.Errorf("portMin/portMax: set both or neither (got port range %d–%d)", c.PortMin, c.PortMax))
	} else if c.PortMin > c.PortMax {
		errs = append(errs, fmt.Errorf("portMin/portMax: %d–%d is not a port range", c.PortMin, c.PortMax))
	}
	for i, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("publicIPs[%d]: %q is not an IP address", i, ip))
		}
	}
	for i, ip := range c.IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("ips[%d]: %q is not an IP address", i, ip))
		}
	}
	return errors.Join(errs...)
}

// Engine creates WebRTC legs sharing one configuration and one set of metrics. It is safe for
// concurrent use and holds no sockets itself.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	setting pion.SettingEngine

	active  prometheus.Gauge
	legs    *prometheus.CounterVec
	packets *prometheus.CounterVec
}

// NewEngine validates cfg (reporting every problem at once) and registers the engine's
// metrics with reg (nil: not registered).
func NewEngine(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log,
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telgw_webrtc_legs_active",
			Help: "WebRTC media legs currently open."}),
		legs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_webrtc_legs_total",
			Help: "WebRTC media legs by outcome (connected, ice_timeout, failed, media_timeout, rejected)."}, []string{"outcome"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_webrtc_rtp_packets_total",
			Help: "RTP packets relayed on WebRTC legs by direction (in: from the browser)."}, []string{"direction"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.active, e.legs, e.packets} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("webrtc metrics: %w", err)
			}
		}
	}

	s := pion.SettingEngine{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	s.LoggerFactory = lf
	if cfg.PortMin != 0 {
		if err := s.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("webrtc: port range: %w", err)
		}
	}
	if len(cfg.PublicIPs) > 0 {
		if err := s.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: pion.ICECandidateTypeHost, Mode: pion.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}
	if len(cfg.IPs) > 0 {
		allowed := make([]net.IP, 0, len(cfg.IPs))
		for _, ip := range cfg.IPs {
			allowed = append(allowed, net.ParseIP(ip))
		}
		s.SetIPFilter(func(ip net.IP) bool {
			for _, a := range allowed {
				if a.Equal(ip) {
					return true
				}
			}
			return false
		})
	}
	s.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.ResolveMDNS {
		s.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	} else {
		s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	// UDP only: browsers reach telgw over UDP or through their own TURN server; ICE-TCP
	// passive candidates would need a listener per leg.
	s.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6})
	// After ICE is up, a peer silent for 5 s is "disconnected" and after 15 s "failed"
	// (RFC 8445 §11 consent freshness, as RFC 7675 does with 30 s).
	s.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	e.setting = s
	return e, nil
}

// Config returns the engine's configuration with defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// newAPI builds the per-leg pion API: a media engine with only the codecs this leg may use
// (so answers and offers list exactly those) and RTCP sender/receiver reports.
func (e *Engine) newAPI(codecs []pion.RTPCodecParameters) (*pion.API, error) {
	m := &pion.MediaEngine{}
	for _, c := range codecs {
		if err := m.RegisterCodec(c, pion.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("webrtc: register %s: %w", c.MimeType, err)
		}
	}
	ir := &interceptor.Registry{}
	// RFC 3550 §6.4 reports let the browser compute loss and RTT (getStats remote-*-rtp).
	if err := pion.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithSettingEngine(e.setting), pion.WithInterceptorRegistry(ir)), nil
}

// codecParams is the pion form of a G.711 codec or telephone-event at payload type pt.
func codecParams(name string, pt uint8) pion.RTPCodecParameters {
	mime := pion.MimeTypePCMU
	switch name {
	case PCMA:
		mime = pion.MimeTypePCMA
	case "TELEPHONE-EVENT":
		mime = "audio/telephone-event"
	}
	return pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: mime, ClockRate: 8000}, PayloadType: pion.PayloadType(pt)}
}
