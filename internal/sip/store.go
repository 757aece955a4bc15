package sip

import (
	"context"
	"time"
)

// Store is what the SIP side persists: the ACS SIP routing configuration, customers' endpoint
// credentials and CDRs. internal/store implements it on SQLite and PostgreSQL.
type Store interface {
	CDRSink
	Credentials
	// CDRList returns CDRs newest first (by Start), skipping p.Skip and returning at most
	// p.Top; p.Number, when set, keeps calls from or to it.
	CDRList(ctx context.Context, p CDRListParams) ([]CDR, error)
	// SIPRoutingGet returns the stored routing; ok is false when it was never stored.
	SIPRoutingGet(ctx context.Context) (r Routing, ok bool, err error)
	// SIPRoutingPut replaces the stored routing.
	SIPRoutingPut(ctx context.Context, r Routing) error
	// SIPCredentialPut creates or replaces a credential (by Username).
	SIPCredentialPut(ctx context.Context, c Credential) error
	// SIPCredentialDelete removes a credential; problem.ErrNotFound when there is none.
	SIPCredentialDelete(ctx context.Context, username string) error
	// SIPCredentialList lists credentials by username.
	SIPCredentialList(ctx context.Context) ([]Credential, error)
}

// CDRListParams pages and filters CDRList.
type CDRListParams struct {
	Skip, Top int
	// Number keeps calls whose From or To is this E.164 number.
	Number string
	// Since keeps calls that started at or after it (zero: all).
	Since time.Time
}

// Routing is the ACS SIP routing configuration (SipRouting 2023-03-01 SipConfiguration):
// trunks by FQDN with their signalling port, and the ordered routes.
type Routing struct {
	Trunks []ACSTrunk
	Routes []OutboundRoute
}

// ACSTrunk is a trunk as the ACS API shows it. Its FQDN is the TrunkConfig Name.
type ACSTrunk struct {
	FQDN string
	Port int
}
