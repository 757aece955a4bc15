package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// SMS configures SMS carriers (internal/sms).
type SMS struct {
	// Carriers are the SMPP or HTTP links, in order; the first is the default carrier.
	Carriers []Carrier `yaml:"carriers"`
}

// Carrier is one SMS carrier: exactly one of SMPP or HTTP.
type Carrier struct {
	// Name identifies the carrier (the `carrier` column of imported numbers).
	Name string `yaml:"name"`
	// SMPP describes an SMPP 3.4 link.
	SMPP *SMPPLink `yaml:"smpp"`
	// HTTP describes an HTTP carrier (internal/sms/httpcarrier).
	HTTP *HTTPLink `yaml:"http"`
}

// HTTPLink is an HTTP SMS carrier: a submit request template and callbacks at
// /telgw/carriers/{name}/dlr and /telgw/carriers/{name}/inbound.
type HTTPLink struct {
	// URL is the submit URL template with {from} {to} {fromDigits} {toDigits} {text}
	// {messageId} {dlrUrl} {dlrMask} placeholders.
	URL string `yaml:"url"`
	// Method is GET (default) or POST.
	Method string `yaml:"method"`
	// Body is the POST body template; ContentType its type (default form-encoded).
	Body        string `yaml:"body"`
	ContentType string `yaml:"contentType"`
	// Username and Password add basic auth.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Headers are added to every submit.
	Headers map[string]string `yaml:"headers"`
	// CallbackToken authenticates the carrier's callbacks (required).
	CallbackToken string `yaml:"callbackToken"`
	// DLRURL overrides the delivery report URL template handed to the carrier.
	DLRURL string `yaml:"dlrUrl"`
}

// SMPPLink is an SMPP 3.4 ESME bind.
type SMPPLink struct {
	// Address is the SMSC host:port.
	Address  string `yaml:"address"`
	SystemID string `yaml:"systemId"`
	Password string `yaml:"password"`
	// Window is the number of unacknowledged PDUs. Default 10.
	Window int `yaml:"window"`
	// MaxRate caps submit_sm per second per link; 0 is unlimited.
	MaxRate float64 `yaml:"maxRate"`
	// SystemType is sent in the bind. Default empty.
	SystemType string `yaml:"systemType"`
	// Links is the number of transceiver binds held open. Default 1.
	Links int `yaml:"links"`
	// Concat splits long messages: udh8 (default), udh16, sar or payload.
	Concat string `yaml:"concat"`
	// BindMode is transceiver (default) or txrx (separate transmitter and receiver binds).
	BindMode string `yaml:"bindMode"`
	// ReassemblyTimeout is how long the parts of a concatenated inbound message wait for the
	// rest before it is delivered as a partial message. Default 5m.
	ReassemblyTimeout time.Duration `yaml:"reassemblyTimeout"`
}

// Webhook is an event subscriber.
type Webhook struct {
	// URL receives Event Grid-schema POSTs.
	URL string `yaml:"url"`
	// Secret signs payloads (Standard Webhooks).
	Secret string `yaml:"secret"`
	// EventTypes filters events; empty means all.
	EventTypes []string `yaml:"eventTypes"`
	// PhoneNumbers filters by the number involved; empty means all.
	PhoneNumbers []string `yaml:"phoneNumbers"`
}

func defaultSMS() SMS { return SMS{} }

func (s *SMS) validate() []error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range s.Carriers {
		key := fmt.Sprintf("sms.carriers[%d]", i)
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", key))
		} else if seen[c.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate carrier %q", key, c.Name))
		}
		seen[c.Name] = true
		if (c.SMPP == nil) == (c.HTTP == nil) {
			errs = append(errs, fmt.Errorf("%s: exactly one of smpp or http is required", key))
			continue
		}
		if c.HTTP != nil {
			if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(c.HTTP.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				errs = append(errs, fmt.Errorf("%s.http.url: %q is not an http(s) URL template", key, c.HTTP.URL))
			}
			if c.HTTP.CallbackToken == "" {
				errs = append(errs, fmt.Errorf("%s.http.callbackToken: must not be empty", key))
			}
			continue
		}
		if _, _, err := net.SplitHostPort(c.SMPP.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.smpp.address: %q is not host:port", key, c.SMPP.Address))
		}
		if c.SMPP.Window < 0 {
			errs = append(errs, fmt.Errorf("%s.smpp.window: must not be negative", key))
		}
		if c.SMPP.ReassemblyTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s.smpp.reassemblyTimeout: must not be negative", key))
		}
	}
	return errs
}

func (w *Webhook) validate(key string) []error {
	var errs []error
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s.url: %q is not an http(s) URL", key, w.URL))
	}
	return errs
}
