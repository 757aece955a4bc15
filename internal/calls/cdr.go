package calls

import (
	"context"
	"time"
)

// Direction of a call relative to telgw's customers.
type Direction string

// Directions.
const (
	// Inbound calls come from a carrier trunk to one of telgw's numbers.
	Inbound Direction = "inbound"
	// Outbound calls come from a customer's endpoint and leave by a carrier trunk.
	Outbound Direction = "outbound"
)

// CDR is a call detail record, written when a call ends.
type CDR struct {
	// CallID is the SIP Call-ID of the leg toward the caller.
	CallID    string
	Direction Direction
	// From and To are the caller and callee numbers (E.164 when they are numbers).
	From, To string
	// Trunk is the carrier trunk the call used ("" if it never reached one).
	Trunk string
	// Start is when the INVITE arrived; Ringing and Answer are zero when never reached.
	Start, Ringing, Answer, End time.Time
	// Disposition is answered, busy, no-answer, cancelled, failed, rejected or unauthorized.
	Disposition string
	// SIPCode is the final status toward the caller (200 when answered).
	SIPCode int
	// Q850 is the ISDN cause value (ITU-T Q.850) from a Reason header (RFC 3326) or mapped from
	// the SIP code (RFC 3398 §8.2.6.1 table).
	Q850 int
	// EndedBy is caller, callee, media-timeout or system.
	EndedBy string
	// Legs are the call's legs: the caller's and the callee's (an app's leg is kind bot with
	// its callback URL's host), then any a transfer replaced (Transferred).
	Legs []Leg
	// Verstat is the verification status of an inbound call's Identity header
	// (TN-Validation-Passed, TN-Validation-Failed, No-TN-Validation; ATIS-1000074 §5.3.1),
	// empty when verification is off.
	Verstat string
	// Attest is the SHAKEN attestation (A, B, C) telgw signed an outbound call with, empty
	// when it did not sign.
	Attest string
}

// Duration is the answered time, zero when never answered.
func (c CDR) Duration() time.Duration {
	if c.Answer.IsZero() || c.End.Before(c.Answer) {
		return 0
	}
	return c.End.Sub(c.Answer)
}

// CDRSink persists CDRs. The store implements it.
type CDRSink interface {
	CDRInsert(ctx context.Context, c CDR) error
}

// CDRListParams pages and filters CDRList.
type CDRListParams struct {
	Skip, Top int
	// Number keeps calls whose From or To is this E.164 number.
	Number string
	// Since keeps calls that started at or after it (zero: all).
	Since time.Time
}

// CDRLister reads CDRs newest first (by Start), skipping p.Skip and returning at most p.Top
// (the store implements it, as part of Store).
type CDRLister interface {
	CDRList(ctx context.Context, p CDRListParams) ([]CDR, error)
}

// CDRLog is the operator's view of call detail records, for `telgw calls`.
type CDRLog struct {
	// Store reads the records; nil lists none (a node without a store).
	Store CDRLister
}

// List returns CDRs newest first; p.Top defaults to 100.
func (l CDRLog) List(ctx context.Context, p CDRListParams) ([]CDR, error) {
	if l.Store == nil {
		return nil, nil
	}
	if p.Top <= 0 {
		p.Top = 100
	}
	return l.Store.CDRList(ctx, p)
}
