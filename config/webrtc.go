package config

import (
	"fmt"
	"net"
	"time"

	"github.com/telgw/telgw/internal/sip"
)

// WebRTC configures the media of WebRTC users' call legs (internal/bridge/webrtc): ICE host
// candidates, ports and timeouts. Signalling (SIP over WebSocket) rides on the HTTP listener.
type WebRTC struct {
	// PortMin and PortMax bound the UDP ports of ICE host candidates. Default 0 and 0: the
	// operating system's ephemeral ports. Set both or neither.
	PortMin uint16 `yaml:"portMin"`
	PortMax uint16 `yaml:"portMax"`
	// PublicIPs replaces the address of host candidates with these (1:1 NAT, e.g. a cloud VM's
	// public address). Default: none.
	PublicIPs []string `yaml:"publicIPs"`
	// IPs restricts host candidates to these local addresses. Default: every interface that is up.
	IPs []string `yaml:"ips"`
	// IncludeLoopback also gathers 127.0.0.1/::1 candidates (single-host set-ups and tests).
	// Default false: browsers never use loopback candidates.
	IncludeLoopback bool `yaml:"includeLoopback"`
	// ConnectTimeout bounds ICE connectivity checks plus the DTLS handshake, counted from the
	// answer. Default 20s.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// MediaTimeout ends a connected leg that receives no RTP for this long while the peer says
	// it sends. Default 30s; negative disables.
	MediaTimeout time.Duration `yaml:"mediaTimeout"`
	// MaxDevicesPerUser caps the registered devices (bindings) of one user on a node, as
	// Kamailio's max_contacts: a REGISTER adding one more is refused (403 Too Many
	// Registrations) and the existing ones stay. Default 10.
	MaxDevicesPerUser int `yaml:"maxDevicesPerUser"`
	// MaxContactsPerRegister caps the Contact values of one REGISTER (403 past it). Default 5.
	MaxContactsPerRegister int `yaml:"maxContactsPerRegister"`
	// RegisterTimeout closes a SIP WebSocket that has carried no authenticated request (a
	// REGISTER answered 2xx, a request with credentials answered 18x/2xx) this long after it
	// opened. Default 10s (internal/sip checks it as sip.Config.WSRegisterTimeout).
	RegisterTimeout time.Duration `yaml:"registerTimeout"`
}

func defaultWebRTC() WebRTC {
	return WebRTC{ConnectTimeout: 20 * time.Second, MediaTimeout: 30 * time.Second, MaxDevicesPerUser: 10, MaxContactsPerRegister: 5,
		RegisterTimeout: sip.DefaultConfig().WSRegisterTimeout}
}

func (w *WebRTC) validate(key string) []error {
	var errs []error
	if (w.PortMin == 0) != (w.PortMax == 0) {
		errs = append(errs, fmt.Errorf("%s.portMin/portMax: set both or neither (got %d–%d)", key, w.PortMin, w.PortMax))
	} else if w.PortMin > w.PortMax {
		errs = append(errs, fmt.Errorf("%s.portMin/portMax: %d–%d is not a port range", key, w.PortMin, w.PortMax))
	}
	for i, ip := range w.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("%s.publicIPs[%d]: %q is not an IP address", key, i, ip))
		}
	}
	for i, ip := range w.IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("%s.ips[%d]: %q is not an IP address", key, i, ip))
		}
	}
	if w.MaxDevicesPerUser < 1 {
		errs = append(errs, fmt.Errorf("%s.maxDevicesPerUser: must be at least 1", key))
	}
	if w.MaxContactsPerRegister < 1 {
		errs = append(errs, fmt.Errorf("%s.maxContactsPerRegister: must be at least 1", key))
	}
	if w.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s.connectTimeout: must be positive", key))
	}
	return errs
}
