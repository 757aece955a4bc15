package config

import (
	"fmt"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/registrar"
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

// defaultWebRTC takes its defaults from internal/bridge/webrtc (media), internal/registrar
// (device caps) and internal/sip (the WebSocket's register timeout).
func defaultWebRTC() WebRTC {
	d := webrtc.DefaultConfig()
	return WebRTC{ConnectTimeout: d.ConnectTimeout, MediaTimeout: d.MediaTimeout, MaxDevicesPerUser: registrar.DefaultMaxDevices,
		MaxContactsPerRegister: registrar.DefaultMaxContacts, RegisterTimeout: sip.DefaultConfig().WSRegisterTimeout}
}

// EngineConfig is the webrtc.Config of this section.
func (w WebRTC) EngineConfig() webrtc.Config {
	c := webrtc.DefaultConfig()
	c.PortMin, c.PortMax, c.PublicIPs, c.IPs = w.PortMin, w.PortMax, w.PublicIPs, w.IPs
	c.IncludeLoopback, c.ConnectTimeout, c.MediaTimeout = w.IncludeLoopback, w.ConnectTimeout, w.MediaTimeout
	return c
}

func (w *WebRTC) validate(key string) []error {
	errs := flatten(nil, key+".", w.EngineConfig().Validate(), nil)
	if w.ConnectTimeout == 0 {
		errs = append(errs, fmt.Errorf("%s.connectTimeout: must be positive", key))
	}
	if w.MaxDevicesPerUser < 1 {
		errs = append(errs, fmt.Errorf("%s.maxDevicesPerUser: must be at least 1", key))
	}
	if w.MaxContactsPerRegister < 1 {
		errs = append(errs, fmt.Errorf("%s.maxContactsPerRegister: must be at least 1", key))
	}
	return errs
}
