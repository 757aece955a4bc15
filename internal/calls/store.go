package calls

import "context"

// Store is what the call domain persists: the ACS SIP routing configuration, customers'
// endpoint credentials and CDRs. internal/store implements it on SQLite and PostgreSQL.
type Store interface {
	CDRSink
	CredentialStore
	// CDRList returns CDRs newest first (by Start), skipping p.Skip and returning at most
	// p.Top; p.Number, when set, keeps calls from or to it.
	CDRList(ctx context.Context, p CDRListParams) ([]CDR, error)
	// SIPRoutingGet returns the stored routing; ok is false when it was never stored.
	SIPRoutingGet(ctx context.Context) (r Routing, ok bool, err error)
	// SIPRoutingPut replaces the stored routing.
	SIPRoutingPut(ctx context.Context, r Routing) error
}
