// Package smpp is telgw's SMPP 3.4 client (ESME) towards carriers' SMSCs: transceiver binds
// with system_type, enquire_link keep-alive, a send window, a per-link rate limit, automatic
// rebind with backoff, several links per carrier, submit_sm with telgw's own segmentation
// (internal/sms/gsm) and deliver_sm handling for receipts and inbound messages.
//
// PDUs are encoded with github.com/linxGnu/gosmpp's pdu package; the session (window,
// sequence numbers, timeouts, reconnection) is telgw's, because gosmpp's drops submits into
// OnSubmitError when the window is full, and its SubmitSM.Split gives every part one
// sequence number and sizes UCS-2 parts by runes.
package smpp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/gsm"
)

// Config describes one carrier reached over SMPP.
type Config struct {
	// Name is the carrier's name (required).
	Name string
	// Address is the SMSC host:port (required).
	Address string
	// SystemID and Password authenticate the bind (SMPP 3.4 §4.1.5).
	SystemID, Password string
	// SystemType is sent in the bind; default empty.
	SystemType string
	// ServiceType is sent in every submit_sm; default empty (SMSC default).
	ServiceType string
	// Window is the number of unacknowledged requests per link. Default 10.
	Window int
	// MaxRate caps submit_sm per second per link; 0 is unlimited.
	MaxRate float64
	// Links is how many binds submit messages (config smpp.binds): transceivers, or
	// transmitters with BindMode "txrx" (which adds one receiver bind for deliver_sm). With
	// UseLeases they are the whole cluster's binds. Default 1.
	Links int
	// BindMode is "transceiver" (default) or "txrx": separate transmitter and receiver binds
	// (SMPP 3.4 §4.1.1, §4.1.3) for SMSCs without bind_transceiver.
	BindMode string
	// EnquireLink is the keep-alive interval (SMPP 3.4 §4.11). Default 30s.
	EnquireLink time.Duration
	// ResponseTimeout bounds the wait for any response. Default 10s.
	ResponseTimeout time.Duration
	// BindWait is how long a submit waits for a bound link before failing transiently.
	// Default 5s.
	BindWait time.Duration
	// RebindMin and RebindMax bound the exponential backoff between bind attempts.
	// Defaults 250ms and 30s.
	RebindMin, RebindMax time.Duration
	// Concat selects how long messages are split. Default gsm.ConcatUDH8.
	Concat gsm.Concat
	// ReassemblyTimeout is how long inbound parts wait for their siblings. Default 5m.
	ReassemblyTimeout time.Duration
	// Parts makes the reassembly of concatenated inbound messages durable: each part is
	// stored before its deliver_sm_resp, so a part acknowledged to the SMSC survives a crash,
	// and parts of one message that arrive on binds of different nodes sharing it are joined.
	// Nil keeps parts in memory only.
	Parts sms.PartStore
	// Logger receives link events. Default discards.
	Logger *slog.Logger
	// Metrics receive link metrics (NewMetrics); nil keeps them unregistered.
	Metrics *Metrics
}

// DefaultConfig returns the link defaults (docs/CONFIG.md sms.carriers[].smpp); Name, Address,
// credentials, Logger and Metrics are the caller's.
func DefaultConfig() Config {
	return Config{Window: 10, Links: 1, BindMode: "transceiver", EnquireLink: 30 * time.Second, ResponseTimeout: 10 * time.Second,
		BindWait: 5 * time.Second, RebindMin: 250 * time.Millisecond, RebindMax: 30 * time.Second, Concat: gsm.ConcatUDH8,
		ReassemblyTimeout: 5 * time.Minute}
}

// setDefaults sets every unset (zero or negative) tunable from DefaultConfig, a discarding
// Logger and unregistered Metrics (New calls it before Validate).
func (c *Config) setDefaults() {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *time.Duration }{{&c.EnquireLink, &d.EnquireLink}, {&c.ResponseTimeout, &d.ResponseTimeout},
		{&c.BindWait, &d.BindWait}, {&c.RebindMin, &d.RebindMin}, {&c.RebindMax, &d.RebindMax}, {&c.ReassemblyTimeout, &d.ReassemblyTimeout}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Links <= 0 {
		c.Links = d.Links
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Validate reports every problem with the link settings, keys as docs/CONFIG.md names them
// under sms.carriers[].smpp ("address", "window"). Pure: no DNS, c is not modified. Zero
// tunables are valid (New takes DefaultConfig's).
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("address: %q is not host:port", c.Address))
	}
	if len(c.SystemID) > 15 {
		errs = append(errs, errors.New("systemId: longer than 15 characters (SMPP 3.4 §4.1.1)"))
	}
	if len(c.Password) > 8 {
		errs = append(errs, errors.New("password: longer than 8 characters (SMPP 3.4 §4.1.1)"))
	}
	if len(c.SystemType) > 12 {
		errs = append(errs, errors.New("systemType: longer than 12 characters (SMPP 3.4 §4.1.1)"))
	}
	if c.BindMode != "" && c.BindMode != "transceiver" && c.BindMode != "txrx" {
		errs = append(errs, fmt.Errorf("bindMode: %q is not transceiver or txrx", c.BindMode))
	}
	if c.Window < 0 {
		errs = append(errs, errors.New("window: must not be negative"))
	}
	if c.Links < 0 {
		errs = append(errs, errors.New("binds: must not be negative"))
	}
	if c.MaxRate < 0 {
		errs = append(errs, errors.New("maxRate: must not be negative"))
	}
	if c.ReassemblyTimeout < 0 {
		errs = append(errs, errors.New("reassemblyTimeout: must not be negative"))
	}
	return errors.Join(errs...)
}

// validate is Validate, for New.
func (c *Config) validate() error { return c.Validate() }
