// Package sms is telgw's SMS domain: the outbound queue (messages, per-recipient results,
// repeatability), delivery reports, inbound routing and opt-out keywords. It knows nothing of
// HTTP, SMPP or SQL: carriers (internal/sms/smpp, internal/sms/httpcarrier) implement Carrier,
// stores implement Store, and the REST edge calls Service.
package sms
