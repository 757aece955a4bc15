package numbers

import (
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Type is the ACS phoneNumberType.
type Type string

// Number types. telgw offers geographic and toll-free numbers; ACS's "mobile" is not sold in
// the US and is rejected.
const (
	TypeGeographic Type = "geographic"
	TypeTollFree   Type = "tollFree"
	TypeMobile     Type = "mobile"
)

// ParseType checks an ACS phoneNumberType value; target names the field for the error.
func ParseType(target, v string) (Type, error) {
	switch Type(v) {
	case TypeGeographic, TypeTollFree:
		return Type(v), nil
	case TypeMobile:
		return "", problem.Invalid(target, "mobile numbers are not offered in the US").WithCode("InvalidPhoneNumberType")
	}
	return "", problem.Invalid(target, "%q is not a phone number type; want geographic or tollFree", v).WithCode("InvalidPhoneNumberType")
}

// Assignment is the ACS assignmentType: who the number is for.
type Assignment string

// Assignment types.
const (
	AssignPerson      Assignment = "person"
	AssignApplication Assignment = "application"
)

// ParseAssignment checks an ACS assignmentType value.
func ParseAssignment(target, v string) (Assignment, error) {
	switch Assignment(v) {
	case AssignPerson, AssignApplication:
		return Assignment(v), nil
	}
	return "", problem.Invalid(target, "%q is not an assignment type; want person or application", v).WithCode("InvalidAssignmentType")
}

// Capability is an ACS PhoneNumberCapabilityType: none, inbound, outbound or inbound+outbound.
type Capability string

// Capability values.
const (
	CapNone     Capability = "none"
	CapInbound  Capability = "inbound"
	CapOutbound Capability = "outbound"
	CapBoth     Capability = "inbound+outbound"
)

// ParseCapability checks a capability value.
func ParseCapability(target, v string) (Capability, error) {
	switch Capability(v) {
	case CapNone, CapInbound, CapOutbound, CapBoth:
		return Capability(v), nil
	}
	return "", problem.Invalid(target, "%q is not a capability; want none, inbound, outbound or inbound+outbound", v).
		WithCode("InvalidCapabilities")
}

func (c Capability) bits() int {
	switch c {
	case CapInbound:
		return 1
	case CapOutbound:
		return 2
	case CapBoth:
		return 3
	}
	return 0
}

// Covers reports whether offering c allows asking for want (inbound+outbound covers all).
func (c Capability) Covers(want Capability) bool { return c.bits()&want.bits() == want.bits() }

// Inbound reports whether the capability includes inbound traffic.
func (c Capability) Inbound() bool { return c.bits()&1 != 0 }

// Outbound reports whether the capability includes outbound traffic.
func (c Capability) Outbound() bool { return c.bits()&2 != 0 }

// Covering lists every capability value that covers want (for SQL IN filters).
func Covering(want Capability) []Capability {
	var out []Capability
	for _, c := range []Capability{CapNone, CapInbound, CapOutbound, CapBoth} {
		if c.Covers(want) {
			out = append(out, c)
		}
	}
	return out
}

// Capabilities are a number's calling and SMS capabilities.
type Capabilities struct {
	Calling Capability
	SMS     Capability
}

// Covers reports whether offered capabilities c allow want.
func (c Capabilities) Covers(want Capabilities) bool {
	return c.Calling.Covers(want.Calling) && c.SMS.Covers(want.SMS)
}

// State is where a number is in its lifecycle:
// available → held → purchased → quarantined → available.
type State string

// Lifecycle states. A hold or a quarantine that has run out is available again without any
// write: availability is "FreeAt ≤ now", and the sweeper only tidies the labels.
const (
	StateAvailable   State = "available"
	StateHeld        State = "held"
	StatePurchased   State = "purchased"
	StateQuarantined State = "quarantined"
)

// Number is one number of the inventory.
type Number struct {
	E164       E164
	Type       Type
	Offered    Capabilities // what the carrier allows (import)
	Locality   string
	State      string // administrative division, abbreviated (WA)
	Carrier    string
	MonthlyUSD float64

	Status     State
	FreeAt     *time.Time // when it may be held; nil while purchased
	HoldID     string     // search or reservation holding it (or that bought it)
	Assignment Assignment // requested by the hold / purchase
	Caps       Capabilities
	Purchased  *time.Time
	Route      Route
	ImportedAt time.Time
}

// Available reports whether the number may be held at now.
func (n Number) Available(now time.Time) bool {
	return n.Status != StatePurchased && n.FreeAt != nil && !n.FreeAt.After(now)
}

// EffectiveStatus is Status with expired holds and quarantines shown as available.
func (n Number) EffectiveStatus(now time.Time) State {
	if n.Status != StatePurchased && n.Available(now) {
		return StateAvailable
	}
	return n.Status
}

// Search is a held search result (ACS PhoneNumberSearchResult).
type Search struct {
	ID         string
	Type       Type
	Assignment Assignment
	Caps       Capabilities
	AreaCode   string
	Quantity   int
	MonthlyUSD float64
	Status     string // active | purchased | cancelled
	CreatedAt  time.Time
	ExpiresAt  time.Time
	Numbers    []E164
}

// Search statuses.
const (
	SearchActive    = "active"
	SearchPurchased = "purchased"
	SearchCancelled = "cancelled"
)

// Reservation is an ACS PhoneNumbersReservation.
type Reservation struct {
	ID        string
	Status    string // active | submitted | completed | expired
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time
	Numbers   []ReservedNumber
}

// Reservation statuses.
const (
	ReservationActive    = "active"
	ReservationCompleted = "completed"
	ReservationExpired   = "expired"
)

// ReservedNumber is a number of a reservation, with its status within it.
type ReservedNumber struct {
	Number Number
	// Status is reserved, purchased, expired or error (ACS AvailablePhoneNumberStatus).
	Status string
	// ErrCode and ErrMessage explain an error status (207 partial results).
	ErrCode, ErrMessage string
}

// OperationType is an ACS PhoneNumberOperationType.
type OperationType string

// Operation types.
const (
	OpSearch              OperationType = "search"
	OpPurchase            OperationType = "purchase"
	OpRelease             OperationType = "releasePhoneNumber"
	OpCapabilities        OperationType = "updatePhoneNumberCapabilities"
	OpReservationPurchase OperationType = "reservationPurchase"
)

// Prefix is the operation-id prefix ACS uses for the type (search_, purchase_ …).
func (t OperationType) Prefix() string {
	switch t {
	case OpSearch:
		return "search_"
	case OpPurchase:
		return "purchase_"
	case OpRelease:
		return "release_"
	case OpCapabilities:
		return "capabilities_"
	case OpReservationPurchase:
		return "reservationPurchase_"
	}
	return ""
}

// Operation is a long-running operation's record (ACS PhoneNumberOperation).
type Operation struct {
	ID              string
	Type            OperationType
	Status          string // notStarted | running | succeeded | failed
	Resource        string // search id or E.164 the result is read from ("" when none)
	ErrCode, ErrMsg string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Operation statuses.
const (
	OpRunning   = "running"
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
)

// Locality is a town and its state.
type Locality struct {
	Name  string
	State string // abbreviation
}

// Offering is a (type, assignment) pair the inventory can sell, with its cheapest price.
type Offering struct {
	Type       Type
	Assignment Assignment
	MonthlyUSD float64
}
