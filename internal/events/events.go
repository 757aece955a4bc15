// Package events delivers telgw's events to webhook subscribers in the Event Grid schema
// (the Microsoft.Communication.* events of ACS), signed per Standard Webhooks and retried
// from a durable River queue, so a subscriber that is down for a while still gets every event.
// It is shared by the SMS and calling domains. For Call Automation it also publishes
// IncomingCall on a queue of its own (IncomingCalls) and delivers mid-call callbacks as
// CloudEvents with an RS256 bearer JWT apps verify against telgw's JWKS (Callbacks).
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Event types telgw emits (eventgrid AzureCommunicationServices.json).
const (
	TypeSMSReceived               = "Microsoft.Communication.SMSReceived"
	TypeSMSDeliveryReportReceived = "Microsoft.Communication.SMSDeliveryReportReceived"
	TypeIncomingCall              = "Microsoft.Communication.IncomingCall"
)

// Event is one Event Grid schema event. Subscribers receive a JSON array of them.
type Event struct {
	ID              string          `json:"id"`
	Topic           string          `json:"topic"`
	Subject         string          `json:"subject"`
	EventType       string          `json:"eventType"`
	EventTime       time.Time       `json:"eventTime"`
	Data            json.RawMessage `json:"data"`
	DataVersion     string          `json:"dataVersion"`
	MetadataVersion string          `json:"metadataVersion"`

	// Numbers are the phone numbers the event concerns (for subscription filters); they are
	// not sent.
	Numbers []string `json:"-"`
	// newData is the Data New encoded: while Data is still that slice, it is compact JSON
	// and appendJSON copies it as is.
	newData json.RawMessage
}

// New builds an event with data marshalled to JSON, dataVersion "1.0" and metadataVersion "1"
// as Event Grid sets them.
func New(id, topic, subject, eventType string, at time.Time, data any, numbers ...string) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: id, Topic: topic, Subject: subject, EventType: eventType, EventTime: at.UTC(), Data: b,
		DataVersion: "1.0", MetadataVersion: "1", Numbers: numbers, newData: b}, nil
}

// SMSReceivedData is AcsSmsReceivedEventData.
type SMSReceivedData struct {
	MessageID         string    `json:"messageId"`
	From              string    `json:"from"`
	To                string    `json:"to"`
	Message           string    `json:"message"`
	ReceivedTimestamp time.Time `json:"receivedTimestamp"`
	SegmentCount      int       `json:"segmentCount"`
}

// SMSDeliveryAttempt is AcsSmsDeliveryAttemptProperties.
type SMSDeliveryAttempt struct {
	Timestamp         time.Time `json:"timestamp"`
	SegmentsSucceeded int       `json:"segmentsSucceeded"`
	SegmentsFailed    int       `json:"segmentsFailed"`
}

// SMSDeliveryReportData is AcsSmsDeliveryReportReceivedEventData.
type SMSDeliveryReportData struct {
	MessageID             string               `json:"messageId"`
	From                  string               `json:"from"`
	To                    string               `json:"to"`
	DeliveryStatus        string               `json:"deliveryStatus"`
	DeliveryStatusDetails string               `json:"deliveryStatusDetails"`
	DeliveryAttempts      []SMSDeliveryAttempt `json:"deliveryAttempts"`
	ReceivedTimestamp     time.Time            `json:"receivedTimestamp"`
	Tag                   string               `json:"tag,omitempty"`
}

// Subscription is a webhook subscriber.
type Subscription struct {
	// ID identifies the subscription; config subscriptions get a stable id from their URL.
	ID string `json:"id"`
	// URL receives POSTs of JSON arrays of events.
	URL string `json:"url"`
	// Secret signs deliveries (Standard Webhooks). A "whsec_" prefix marks a base64 key.
	Secret string `json:"-"`
	// EventTypes limits delivery to these types; empty means all.
	EventTypes []string `json:"eventTypes,omitempty"`
	// PhoneNumbers limits delivery to events about these numbers; empty means all.
	PhoneNumbers []string `json:"phoneNumbers,omitempty"`
	// MaxEventsPerBatch is Event Grid's delivery setting of that name: up to this many events
	// are posted in one array (1–5000). 0 or 1 posts one event per request, Event Grid's
	// default, which subscribers written for it expect.
	MaxEventsPerBatch int `json:"maxEventsPerBatch,omitempty"`
	// PreferredBatchSizeInKilobytes is Event Grid's delivery setting of that name: a batch
	// stops growing at about this size (1–1024; an event larger goes alone). Default 64.
	PreferredBatchSizeInKilobytes int `json:"preferredBatchSizeInKilobytes,omitempty"`
	// Source is "config" or "api".
	Source string `json:"source"`
	// Disabled is set when the subscriber answered 410 Gone (or an operator disabled it).
	Disabled bool `json:"disabled"`
	// DisabledReason says why.
	DisabledReason string `json:"disabledReason,omitempty"`
	// CreatedAt is when the subscription was stored.
	CreatedAt time.Time `json:"createdAt"`
}

// Validate reports every problem with the subscription's own fields, keys as docs/CONFIG.md
// names them under webhooks[] ("url"). Pure: no DNS, s is not modified; whether the URL's host
// is an internal address the Guard decides when the subscription is stored and at dial time.
func (s Subscription) Validate() error {
	var errs []error
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		errs = append(errs, fmt.Errorf("url: %q is not an http(s) URL", s.URL))
	} else if u.User != nil {
		errs = append(errs, errors.New("url: the URL must not carry credentials; use the signing secret"))
	}
	if s.MaxEventsPerBatch < 0 || s.MaxEventsPerBatch > MaxEventsPerBatchLimit {
		errs = append(errs, fmt.Errorf("maxEventsPerBatch: %d is not between 1 and %d", s.MaxEventsPerBatch, MaxEventsPerBatchLimit))
	}
	if s.PreferredBatchSizeInKilobytes < 0 || s.PreferredBatchSizeInKilobytes > MaxPreferredBatchSizeKB {
		errs = append(errs, fmt.Errorf("preferredBatchSizeInKilobytes: %d is not between 1 and %d", s.PreferredBatchSizeInKilobytes, MaxPreferredBatchSizeKB))
	}
	return errors.Join(errs...)
}

// Event Grid's bounds of a subscription's batching settings, and its default batch size.
const (
	MaxEventsPerBatchLimit      = 5000
	MaxPreferredBatchSizeKB     = 1024
	DefaultPreferredBatchSizeKB = 64
)

// Matches reports whether s wants ev: enabled, of a listed type, about a listed number.
func (s Subscription) Matches(ev Event) bool {
	if s.Disabled {
		return false
	}
	if len(s.EventTypes) > 0 && !slices.ContainsFunc(s.EventTypes, func(t string) bool { return equalFold(t, ev.EventType) }) {
		return false
	}
	if len(s.PhoneNumbers) > 0 && !slices.ContainsFunc(ev.Numbers, func(n string) bool { return slices.Contains(s.PhoneNumbers, n) }) {
		return false
	}
	return true
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
