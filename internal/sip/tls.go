package sip

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TLSConfig is SIP over TLS (RFC 3261 §26.2, §18): a listener for carriers that connect over
// TLS and the client side of trunks with transport tls. The URIs telgw writes for TLS dialogs
// are sip: URIs with transport=tls, which is what carriers' SBCs expect; telgw does not claim
// sips: end-to-end security (RFC 5630 §3.1.3) since the other call leg may be plain.
type TLSConfig struct {
	// Addr is the TLS listen address, e.g. 0.0.0.0:5061. Empty: no TLS at all.
	Addr string
	// CertFile and KeyFile are the PEM certificate chain and private key telgw presents, as a
	// server and as a client to carriers that ask for a client certificate. Required with Addr.
	CertFile, KeyFile string
	// CAFile is a PEM bundle of the authorities that sign carriers' certificates; it verifies
	// the servers telgw connects to and client certificates presented to telgw (optional for
	// clients: a carrier without one is told apart by its source address, as over UDP).
	// Default: the system roots for servers, no client certificate checks.
	CAFile string
	// MinVersion is the lowest TLS version accepted (tls.VersionTLS12 or tls.VersionTLS13).
	// Default TLS 1.2 (RFC 8996 deprecates older versions).
	MinVersion uint16
}

// enabled reports whether TLS is configured.
func (c TLSConfig) enabled() bool { return c.Addr != "" }

// Validate reports every problem with the TLS settings (keys "tls.addr", …); pure. A zero
// TLSConfig (no TLS) is valid; any field set needs Addr, CertFile and KeyFile.
func (c TLSConfig) Validate() error {
	if c == (TLSConfig{}) {
		return nil
	}
	var errs []error
	if !isHostPort(c.Addr) {
		errs = append(errs, fmt.Errorf("tls.addr: %q is not host:port", c.Addr))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("tls.certFile: certFile and keyFile are required with tls"))
	}
	switch c.MinVersion {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
	default:
		errs = append(errs, fmt.Errorf("tls.minVersion: %#x is not TLS 1.2 or 1.3", c.MinVersion))
	}
	return errors.Join(errs...)
}

// tlsConfigs loads the certificate and CA bundle and returns the server and client
// configurations.
func (c *TLSConfig) tlsConfigs() (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("sip tls: load certificate: %w", err)
	}
	var pool *x509.CertPool
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("sip tls: read CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("sip tls: %s holds no PEM certificate", c.CAFile)
		}
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: c.MinVersion}
	if pool != nil {
		server.ClientCAs = pool
		server.ClientAuth = tls.VerifyClientCertIfGiven
	}
	// RFC 5922 §7.1: the server's identity is the trunk's host, which sipgo sets as ServerName.
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: c.MinVersion}
	return server, client, nil
}

// listenTLS binds the TLS listener and returns it with the client configuration for TLS
// trunks; both are nil when TLS is off.
func listenTLS(c TLSConfig) (net.Listener, *tls.Config, error) {
	if !c.enabled() {
		return nil, nil, nil
	}
	server, client, err := c.tlsConfigs()
	if err != nil {
		return nil, nil, err
	}
	l, err := tls.Listen("tcp", c.Addr, server)
	if err != nil {
		return nil, nil, fmt.Errorf("sip: listen tls %s: %w", c.Addr, err)
	}
	return l, client, nil
}

// addTLSDialog adds the "tls" dialog UA: Contact sip:telgw@host:port;transport=tls on the TLS
// listener's port, and a client whose Via sent-by carries that port (RFC 3261 §18.1.1).
func (s *Service) addTLSDialog(opts ...sipgo.ClientOption) error {
	port := s.tls.Addr().(*net.TCPAddr).Port
	client, err := sipgo.NewClient(s.ua, append(opts, sipgo.WithClientHostname(s.cfg.Host), sipgo.WithClientPort(port))...)
	if err != nil {
		return err
	}
	u := sip.Uri{User: "telgw", Host: s.cfg.Host, Port: port, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", "tls")
	s.sc.dialogs["tls"] = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: u}}
	return nil
}

// TLSAddr is the bound SIP over TLS address; invalid when TLS is off.
func (s *Service) TLSAddr() netip.AddrPort {
	if s.tls == nil {
		return netip.AddrPort{}
	}
	return s.tls.Addr().(*net.TCPAddr).AddrPort()
}
