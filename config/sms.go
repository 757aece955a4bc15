package config

import (
	"fmt"
	"time"

	"github.com/telgw/telgw/internal/sms/gsm"
	"github.com/telgw/telgw/internal/sms/httpcarrier"
	"github.com/telgw/telgw/internal/sms/smpp"
)

// SMS configures SMS carriers (internal/sms).
type SMS struct {
	// Carriers are the SMPP or HTTP links, in order; the first is the default carrier.
	Carriers []Carrier `yaml:"carriers"`
	// InFlight caps the messages submitted to the carriers whose outcome is not yet recorded
	// on this node: after a kill -9 these are the only ones sent twice. 0 (the default) is
	// the carriers' windows together (smpp.window × smpp.binds), so duplicates stay within
	// the SMPP window; more lets the senders keep the windows full while outcomes commit.
	InFlight int `yaml:"inFlight"`
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
	// Binds is the number of binds held open to the carrier by the whole cluster (on one node,
	// by that node): each node binds only the slots it holds (docs/CLUSTER.md). Default 1.
	Binds int `yaml:"binds"`
	// Links is the older name of Binds.
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
	// MaxEventsPerBatch posts up to this many events per request (Event Grid's setting);
	// default 1.
	MaxEventsPerBatch int `yaml:"maxEventsPerBatch"`
	// PreferredBatchSizeInKilobytes bounds a batch's size (Event Grid's setting); default 64.
	PreferredBatchSizeInKilobytes int `yaml:"preferredBatchSizeInKilobytes"`
}

func defaultSMS() SMS { return SMS{} }

// HTTPConfig is the httpcarrier.Config of an HTTP carrier; the caller adds PublicBase, Handler
// and Logger.
func (c Carrier) HTTPConfig() httpcarrier.Config {
	h := c.HTTP
	if h == nil {
		h = &HTTPLink{}
	}
	return httpcarrier.Config{Name: c.Name, URL: h.URL, Method: h.Method, Body: h.Body, ContentType: h.ContentType,
		Username: h.Username, Password: h.Password, Headers: h.Headers, CallbackToken: h.CallbackToken, DLRURL: h.DLRURL}
}

// binds is Binds, or Links (its older name) when Binds is not set.
func (l *SMPPLink) binds() int {
	if l.Binds != 0 {
		return l.Binds
	}
	return l.Links
}

// SMPPConfig is the smpp.Config of an SMPP carrier, its concat method parsed (an error names
// smpp.concat, relative to the carrier); the caller adds Handler, Logger and Metrics.
func (c Carrier) SMPPConfig() (smpp.Config, error) {
	l := c.SMPP
	if l == nil {
		l = &SMPPLink{}
	}
	cfg := smpp.Config{Name: c.Name, Address: l.Address, SystemID: l.SystemID, Password: l.Password, SystemType: l.SystemType,
		Window: l.Window, MaxRate: l.MaxRate, Links: l.binds(), BindMode: l.BindMode, ReassemblyTimeout: l.ReassemblyTimeout}
	concat, err := gsm.ParseConcat(l.Concat)
	if err != nil {
		return cfg, fmt.Errorf("smpp.concat: %w", err)
	}
	cfg.Concat = concat
	return cfg, nil
}

func (s *SMS) validate() []error {
	var errs []error
	if s.InFlight < 0 || s.InFlight > 20000 {
		errs = append(errs, fmt.Errorf("sms.inFlight: %d is not between 0 (the carriers' windows) and 20000", s.InFlight))
	}
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
		// The carrier's name is reported above, at its own key.
		if c.HTTP != nil {
			errs = flatten(errs, key+".http.", c.HTTPConfig().Validate(), map[string]bool{key + ".http.name": true})
			continue
		}
		if l := c.SMPP; l.Binds != 0 && l.Links != 0 && l.Binds != l.Links {
			errs = append(errs, fmt.Errorf("%s.smpp.binds: %d differs from smpp.links %d (its older name): set one", key, l.Binds, l.Links))
		}
		cfg, err := c.SMPPConfig()
		errs = flatten(errs, key+".", err, nil)
		errs = flatten(errs, key+".smpp.", cfg.Validate(), map[string]bool{key + ".smpp.name": true})
	}
	return errs
}
