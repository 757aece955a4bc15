package sip

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/telgw/telgw/internal/sip/digest"
)

// Route is where calls to one of telgw's numbers go. It is a closed sum type: SIPRoute now,
// WebRTC users and bots in later releases. A nil Route means the number has no route (480).
type Route interface{ isRoute() }

// SIPRoute bridges the call to a SIP URI (a PBX, a customer's softswitch).
type SIPRoute struct {
	// URI is the SIP URI to send the INVITE to, e.g. sip:pbx@203.0.113.5:5060;transport=tcp.
	URI string
}

func (SIPRoute) isRoute() {}

// ErrUnknownNumber is what a Router returns (possibly wrapped) for a number telgw does not own;
// the caller gets 404 Not Found (RFC 3261 §21.4.5).
var ErrUnknownNumber = errors.New("sip: unknown number")

// Router maps one of telgw's E.164 numbers to its call route. The numbers domain implements
// it; a number with no route returns (nil, nil).
type Router interface {
	CallRoute(ctx context.Context, e164 string) (Route, error)
}

// Credential lets a customer's SIP endpoint place calls: a digest username with its secret
// (RFC 7616 §3.4) and the numbers it may present as caller ID.
type Credential struct {
	// Username is the digest username, unique across telgw.
	Username string
	// Password is the digest secret; stores keep only the HA1s and leave it empty.
	Password string
	// HA1MD5 and HA1SHA256 are H(username:realm:password) for the service's realm
	// (digest.HA1), used when Password is empty.
	HA1MD5, HA1SHA256 string
	// Numbers are the E.164 numbers the endpoint may call from (its purchased numbers).
	Numbers []string
	// CreatedAt is when the credential was made.
	CreatedAt time.Time
}

// NewCredential returns a Credential for realm keeping only the HA1s of password.
func NewCredential(realm, username, password string, numbers []string) Credential {
	return Credential{Username: username, HA1MD5: digest.HA1("MD5", username, realm, password),
		HA1SHA256: digest.HA1("SHA-256", username, realm, password), Numbers: numbers, CreatedAt: time.Now().UTC()}
}

// Credentials looks endpoint credentials up by digest username; unknown users return an error
// matching ErrUnknownCredential.
type Credentials interface {
	SIPCredential(ctx context.Context, username string) (Credential, error)
}

// ErrUnknownCredential is returned by Credentials for an unknown username.
var ErrUnknownCredential = errors.New("sip: unknown credential")

// OutboundRoute is one entry of the ACS SIP routing table (SipRouting 2023-03-01 "routes"):
// calls whose E.164 number matches NumberPattern go out by Trunks, in order.
type OutboundRoute struct {
	// Name names the route.
	Name string
	// Description is free text.
	Description string
	// NumberPattern is a regular expression matched against the whole E.164 number.
	NumberPattern string
	// Trunks are trunk names (ACS uses FQDNs) tried in order.
	Trunks []string

	re *regexp.Regexp
}

// Compile checks NumberPattern; the route matches nothing until it compiled.
func (r *OutboundRoute) Compile() error {
	re, err := regexp.Compile("^(?:" + r.NumberPattern + ")$")
	if err != nil {
		return err
	}
	r.re = re
	return nil
}

// Match reports whether e164 matches the route's pattern.
func (r *OutboundRoute) Match(e164 string) bool { return r.re != nil && r.re.MatchString(e164) }

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
