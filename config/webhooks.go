package config

import (
	"bytes"
	"fmt"

	"github.com/goccy/go-yaml"

	"github.com/telgw/telgw/internal/events"
)

// Webhooks configures event subscribers and where deliveries may go. In YAML it is either a
// mapping of these keys or, as before, just the list of subscribers.
type Webhooks struct {
	// Subscribers lists event subscribers.
	Subscribers []Webhook `yaml:"subscribers"`
	// AllowPrivate lets webhooks reach loopback, private, link-local, CGNAT and other
	// internal addresses (refused by default: SSRF). Default false.
	AllowPrivate bool `yaml:"allowPrivate"`
	// AllowCIDRs lists internal ranges webhooks may reach anyway, e.g. a subscriber on the
	// operator's LAN ("10.1.2.0/24"). Default none.
	AllowCIDRs []string `yaml:"allowCIDRs"`
	// Workers is how many delivery jobs a node works at once (each posts up to 100 events,
	// concurrently up to Concurrency per endpoint). Default 20.
	Workers int `yaml:"workers"`
	// Concurrency bounds the POSTs a node has in flight to one subscriber endpoint (scheme
	// and host). Default 32.
	Concurrency int `yaml:"concurrency"`
}

// UnmarshalYAML accepts the mapping form and the list-of-subscribers form.
func (w *Webhooks) UnmarshalYAML(b []byte) error {
	opts := []yaml.DecodeOption{yaml.Strict(), yaml.DisallowUnknownField()}
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '-' || t[0] == '[') {
		return yaml.UnmarshalWithOptions(b, &w.Subscribers, opts...)
	}
	type plain Webhooks
	return yaml.UnmarshalWithOptions(b, (*plain)(w), opts...)
}

// Subscriptions are the events.Subscription of the configured subscribers.
func (w Webhooks) Subscriptions() []events.Subscription {
	var subs []events.Subscription
	for _, s := range w.Subscribers {
		subs = append(subs, events.Subscription{URL: s.URL, Secret: s.Secret, EventTypes: s.EventTypes, PhoneNumbers: s.PhoneNumbers,
			MaxEventsPerBatch: s.MaxEventsPerBatch, PreferredBatchSizeInKilobytes: s.PreferredBatchSizeInKilobytes})
	}
	return subs
}

func (w *Webhooks) validate() []error {
	var errs []error
	for i, s := range w.Subscriptions() {
		errs = flatten(errs, fmt.Sprintf("webhooks[%d].", i), s.Validate(), nil)
	}
	if w.Workers < 0 || w.Workers > 1000 {
		errs = append(errs, fmt.Errorf("webhooks.workers: %d is not between 1 and 1000", w.Workers))
	}
	if w.Concurrency < 0 || w.Concurrency > 1000 {
		errs = append(errs, fmt.Errorf("webhooks.concurrency: %d is not between 1 and 1000", w.Concurrency))
	}
	for i, c := range w.AllowCIDRs {
		if _, err := events.ParseCIDRs([]string{c}); err != nil {
			errs = append(errs, fmt.Errorf("webhooks.allowCIDRs[%d]: %w", i, err))
		}
	}
	return errs
}
