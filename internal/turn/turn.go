// Package turn runs telgw's embedded STUN/TURN server (pion/turn, UDP and TCP) and issues the
// short-lived credentials that ACS's networkTraversal API hands to WebRTC clients. Credentials
// use the TURN REST format coturn understands (draft-uberti-behave-turn-rest-00 §2.2):
// username "EXPIRY_UNIX:USER", password base64(HMAC-SHA1(secret, username)), so a coturn
// configured with `use-auth-secret` and the same secret accepts them too.
package turn

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST format specifies
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
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
}

func (c *Config) defaults() error {
	if c.Realm == "" {
		c.Realm = "telgw"
	}
	if c.MinPort == 0 {
		c.MinPort = 49152
	}
	if c.MaxPort == 0 {
		c.MaxPort = 65535
	}
	if c.MinPort > c.MaxPort {
		return fmt.Errorf("turn: minPort %d > maxPort %d", c.MinPort, c.MaxPort)
	}
	if c.Secret == nil {
		return errors.New("turn: no secret")
	}
	return nil
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
}

// New binds the UDP and TCP listeners and starts serving.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn addr: %w", err)
	}
	udp, err := net.ListenPacket("udp4", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn listen udp: %w", err)
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	tcp, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("turn listen tcp: %w", err)
	}
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
	}
	if s.host == "" {
		s.host = ip.String()
	}
	if reg != nil {
		reg.MustRegister(s.authFail, s.authOK)
	}
	gen := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorPortRange{RelayAddress: ip, Address: ip.String(), MinPort: cfg.MinPort, MaxPort: cfg.MaxPort}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	s.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       s.auth,
		LoggerFactory:     lf,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: gen()}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen()}},
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
	exp, _, _ := strings.Cut(username, ":")
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > t {
		s.authFail.Inc()
		s.log.Debug("turn auth rejected", "username", username, "remote", src.String())
		return nil, false
	}
	s.authOK.Inc()
	return turn.GenerateAuthKey(username, realm, Password(s.cfg.Secret(), username)), true
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

// Credential is one issued TURN credential.
type Credential struct {
	Username, Password string
	ExpiresOn          time.Time
}

// Issue creates a credential for user valid for ttl.
func (s *Server) Issue(user string, ttl time.Duration, now time.Time) Credential {
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
