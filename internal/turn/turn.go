// Package turn runs telgw's embedded STUN/TURN server (pion/turn, UDP and TCP) and issues the
// short-lived credentials that ACS's networkTraversal API hands to WebRTC clients. Credentials
// use the TURN REST format coturn understands (draft-uberti-behave-turn-rest-00 §2.2):
// username "EXPIRY_UNIX:USER", password base64(HMAC-SHA1(secret, username)), so a coturn
// configured with `use-auth-secret` and the same secret accepts them too. USER is the ACS identity
// the credential was issued for (or absent); a credential stops working when its identity is
// deleted.
//
// The relay is not open: CreatePermission and ChannelBind for loopback, private, link-local,
// CGNAT, multicast and other special-purpose peers, for telgw's own listeners and for the SIP
// trunks are refused with 403 Forbidden (RFC 8656 §9.2, §12.2), and relay sockets drop
// datagrams to and from them.
package turn

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST format specifies
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the server.
type Config struct {
	// Addr is the UDP and TCP listen address. Port 0 picks a free port (UDP and TCP then share
	// the UDP one when possible).
	Addr string
	// PublicHost is the host put into stun:/turn: URLs. Default: Addr's host.
	PublicHost string
	// RelayIP is the address relayed candidates advertise. Default: Addr's host (127.0.0.1 when
	// unspecified).
	RelayIP string
	// MinPort and MaxPort bound relay ports. Default 49152–65535.
	MinPort, MaxPort uint16
	// Realm is the TURN realm. Default "telgw".
	Realm string
	// Secret returns the shared secret for credentials (read on every auth, so rotation works).
	Secret func() string
	// CredentialTTL is the lifetime of credentials Issue hands out when asked for none longer.
	// Default 1h; at most MaxCredentialTTL.
	CredentialTTL time.Duration
	// AllowPeers are ranges the relay may reach although they are special-purpose (a LAN
	// deployment: e.g. 10.0.0.0/8). telgw's own listeners and the trunks stay refused inside them.
	AllowPeers []netip.Prefix
	// Guarded returns telgw's listeners and the trunks' resolved addresses; called at most once a
	// second, so listeners bound later and routing changes are seen. Nil: only the TURN server's
	// own address is guarded.
	Guarded func() Guarded
	// Identities, when set, is asked whether the identity in a credential's username still
	// exists; answers are cached for IdentityCacheTTL.
	Identities Identities
	// IdentityCacheTTL is how long an identity lookup is reused. Default IdentityCacheTTL.
	IdentityCacheTTL time.Duration
}

// Identities tells whether an ACS identity exists; the app adapts identity.Service.
type Identities interface {
	// IdentityExists reports whether id exists; an error fails the authentication.
	IdentityExists(ctx context.Context, id string) (bool, error)
}

// MaxCredentialTTL is the longest lifetime ACS's networkTraversal API issues (172800 s, 48 h).
const MaxCredentialTTL = 48 * time.Hour

// DefaultCredentialTTL is the default credential lifetime: a browser asks again for each call
// or page load, and a leaked credential is of little use for long.
const DefaultCredentialTTL = time.Hour

// IdentityCacheTTL is how long an identity lookup is reused, keeping TURN authentication (every
// Allocate, Refresh, CreatePermission and ChannelBind, RFC 8656 §5) off the store while a
// deleted identity's credentials stop working within seconds.
const IdentityCacheTTL = 5 * time.Second

// DefaultConfig returns the server defaults (docs/CONFIG.md turn); Secret, Guarded and
// Identities are the caller's.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:3478", MinPort: 49152, MaxPort: 65535, Realm: "telgw",
		CredentialTTL: DefaultCredentialTTL, IdentityCacheTTL: IdentityCacheTTL}
}

// withDefaults returns c with every zero field set from DefaultConfig (Addr too: port 3478).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.Realm = cmp.Or(c.Realm, d.Realm)
	c.MinPort = cmp.Or(c.MinPort, d.MinPort)
	c.MaxPort = cmp.Or(c.MaxPort, d.MaxPort)
	c.CredentialTTL = cmp.Or(c.CredentialTTL, d.CredentialTTL)
	c.IdentityCacheTTL = cmp.Or(c.IdentityCacheTTL, d.IdentityCacheTTL)
	return c
}

// Validate reports every problem with c, keys as docs/CONFIG.md names them under turn
// ("minPort/maxPort", "credentialTTL"). Pure: no DNS, c is not modified. Secret is checked by
// New (it is wiring, not configuration).
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %q is not host:port", c.Addr))
	}
	if c.RelayIP != "" && net.ParseIP(c.RelayIP) == nil {
		errs = append(errs, fmt.Errorf("relayIP: %q is not an IP address", c.RelayIP))
	}
	if c.MinPort == 0 || c.MaxPort == 0 || c.MinPort > c.MaxPort {
		errs = append(errs, fmt.Errorf("minPort/maxPort: %d–%d is not a port range", c.MinPort, c.MaxPort))
	}
	if c.CredentialTTL < time.Minute || c.CredentialTTL > MaxCredentialTTL {
		errs = append(errs, fmt.Errorf("credentialTTL: %s is not within 1m–48h", c.CredentialTTL))
	}
	if c.IdentityCacheTTL < 0 {
		errs = append(errs, errors.New("identityCacheTTL: must not be negative"))
	}
	return errors.Join(errs...)
}

// Server is a running TURN server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	srv      *turn.Server
	udp      net.PacketConn
	tcp      net.Listener
	host     string
	port     int
	authFail prometheus.Counter
	authOK   prometheus.Counter
	refused  prometheus.Counter
	dropped  prometheus.Counter
	policy   *peerPolicy

	idMu    sync.Mutex
	idCache map[string]idEntry
	idTTL   time.Duration
}

type idEntry struct {
	exists bool
	at     time.Time
}

// New binds the UDP and TCP listeners and starts serving.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	if cfg.Secret == nil {
		return nil, errors.New("turn: no secret")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn addr: %w", err)
	}
	udp, tcp, err := listenUDPTCP(cfg.Addr, host)
	if err != nil {
		return nil, err
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	relayIP := cfg.RelayIP
	if relayIP == "" {
		relayIP = host
	}
	ip := net.ParseIP(relayIP)
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	s := &Server{cfg: cfg, log: log, udp: udp, tcp: tcp, host: cfg.PublicHost, port: port,
		authFail: prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_turn_auth_failures_total", Help: "TURN requests with bad or expired credentials."}),
		authOK:   prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_turn_auth_success_total", Help: "TURN requests authenticated."}),
		refused:  prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_turn_peer_refused_total", Help: "CreatePermission and ChannelBind requests refused with 403 for their peer."}),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_turn_relay_dropped_total", Help: "Relayed datagrams dropped because their peer is refused."}),
		idCache:  map[string]idEntry{}, idTTL: cfg.IdentityCacheTTL,
	}
	// The TURN server's own sockets are guarded (a relay looping into the server itself).
	self := Guarded{Listeners: []netip.AddrPort{udp.LocalAddr().(*net.UDPAddr).AddrPort(), tcp.Addr().(*net.TCPAddr).AddrPort()}}
	if a, ok := netip.AddrFromSlice(ip); ok {
		self.OwnIPs = append(self.OwnIPs, a.Unmap())
	}
	if a, err := netip.ParseAddr(cfg.PublicHost); err == nil {
		self.OwnIPs = append(self.OwnIPs, a)
	}
	s.policy = newPeerPolicy(cfg.AllowPeers, cfg.Guarded, self)
	if s.host == "" {
		s.host = ip.String()
	}
	if reg != nil {
		reg.MustRegister(s.authFail, s.authOK, s.refused, s.dropped)
	}
	gen := func() turn.RelayAddressGenerator {
		return &guardedGenerator{s: s, next: &turn.RelayAddressGeneratorPortRange{RelayAddress: ip, Address: ip.String(), MinPort: cfg.MinPort, MaxPort: cfg.MaxPort}}
	}
	permit := func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		return ok && s.policy.permitIP(a)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	s.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       s.auth,
		LoggerFactory:     lf,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: &gatedPacketConn{PacketConn: udp, s: s}, RelayAddressGenerator: gen(), PermissionHandler: permit}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: &gatedListener{Listener: tcp, s: s}, RelayAddressGenerator: gen(), PermissionHandler: permit}},
	})
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	return s, nil
}

// auth implements the TURN REST scheme (long-term credentials, RFC 8489 §9.2, with the
// password derived from the shared secret).
func (s *Server) auth(username, realm string, src net.Addr) ([]byte, bool) {
	key, ok := s.key(username, realm)
	if !ok {
		s.authFail.Inc()
		s.log.Debug("turn auth rejected", "username", username, "remote", src.String())
		return nil, false
	}
	s.authOK.Inc()
	return key, true
}

// key is the long-term credential key (RFC 8489 §9.2.2: MD5(username ":" realm ":" password))
// of an unexpired username whose identity, if it names one, still exists.
func (s *Server) key(username, realm string) ([]byte, bool) {
	exp, user, _ := strings.Cut(username, ":")
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > t {
		return nil, false
	}
	if user != "" && !s.identityExists(user) {
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, Password(s.cfg.Secret(), username)), true
}

// identityExists asks Config.Identities, reusing an answer for IdentityCacheTTL. A lookup error
// fails closed and is not cached.
func (s *Server) identityExists(id string) bool {
	if s.cfg.Identities == nil {
		return true
	}
	now := time.Now()
	s.idMu.Lock()
	e, ok := s.idCache[id]
	s.idMu.Unlock()
	if ok && now.Sub(e.at) < s.idTTL {
		return e.exists
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	exists, err := s.cfg.Identities.IdentityExists(ctx, id)
	if err != nil {
		s.log.Warn("turn identity lookup", "identity", id, "err", err)
		return false
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if len(s.idCache) >= 10000 {
		for k, v := range s.idCache {
			if now.Sub(v.at) >= s.idTTL {
				delete(s.idCache, k)
			}
		}
		if len(s.idCache) >= 10000 {
			clear(s.idCache)
		}
	}
	s.idCache[id] = idEntry{exists: exists, at: now}
	return exists
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.srv.Close()
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Port is the bound UDP (and TCP) port.
func (s *Server) Port() int { return s.port }

// URLs are the ICE server URLs clients should use (RFC 7064 stun:, RFC 7065 turn:).
func (s *Server) URLs() []string {
	hp := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	return []string{"stun:" + hp, "turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// CredentialTTL is the configured credential lifetime (Config.CredentialTTL).
func (s *Server) CredentialTTL() time.Duration { return s.cfg.CredentialTTL }

// Credential is one issued TURN credential.
type Credential struct {
	Username, Password string
	ExpiresOn          time.Time
}

// Issue creates a credential for user (an ACS identity id, or empty) valid for ttl, at most
// CredentialTTL; ttl 0 means CredentialTTL.
func (s *Server) Issue(user string, ttl time.Duration, now time.Time) Credential {
	if ttl <= 0 || ttl > s.cfg.CredentialTTL {
		ttl = s.cfg.CredentialTTL
	}
	return IssueWith(s.cfg.Secret(), user, ttl, now)
}

// IssueWith creates a TURN REST credential with secret.
func IssueWith(secret, user string, ttl time.Duration, now time.Time) Credential {
	exp := now.Add(ttl).Truncate(time.Second)
	username := strconv.FormatInt(exp.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return Credential{Username: username, Password: Password(secret, username), ExpiresOn: exp.UTC()}
}

// Password derives the TURN REST password for username.
func Password(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// listenUDPTCP binds UDP and TCP on one port (RFC 8656 §3.1: the same port serves both). With
// port 0 the kernel picks the UDP port, which someone else may already hold for TCP: then it
// tries another port rather than fail start-up.
func listenUDPTCP(addr, host string) (net.PacketConn, net.Listener, error) {
	_, p, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("turn listen udp: %w", err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if p != "0" || try == 20 {
			return nil, nil, fmt.Errorf("turn listen tcp: %w", err)
		}
	}
}
