// Package calls is telgw's call domain: where a call to one of telgw's numbers goes (the Route
// sum type and the routing decision), who may place calls (endpoint Credentials), the ACS SIP
// routing configuration (trunks and routes), call detail records, and the store interface they
// persist through.
//
// It is the model the transports share: the SIP B2BUA (internal/sip) turns dialogs into calls,
// the REST edge (internal/api) and the CLI manage credentials and routing through it, and the
// store persists its types. It imports no transport: no sipgo, no pion, no net/http, no config
// (a test holds that rule).
package calls
