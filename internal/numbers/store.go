package numbers

import (
	"context"
	"time"
)

// Store is the persistence the numbers domain consumes; internal/store implements it on SQLite
// and PostgreSQL and internal/store/storetest holds its conformance cases. Every method that
// changes more than one row is atomic: holds and purchases either happen for every number or
// for none (ErrConflict / problem errors, nothing written).
type Store interface {
	// NumberImport inserts numbers that are not in the inventory yet; existing ones (by E.164)
	// are left untouched, so re-importing a file is idempotent.
	NumberImport(ctx context.Context, ns []Number) (inserted int, err error)
	// NumberGet reads one number (ErrNotFound).
	NumberGet(ctx context.Context, e E164) (Number, error)
	// NumberList pages through the inventory, in E.164 order.
	NumberList(ctx context.Context, p ListParams) ([]Number, error)
	// NumberWithdraw deletes an unsold number: ErrNotFound, or ErrConflict while purchased or
	// in a live hold.
	NumberWithdraw(ctx context.Context, e E164, now time.Time) error
	// NumberSetRoute sets a purchased number's route (ErrNotFound, ErrConflict when unsold). A
	// user route also sets the assignmentType to AssignPerson.
	NumberSetRoute(ctx context.Context, e E164, r Route) error
	// NumberRouting reads the routing of a purchased number (ErrNotFound otherwise).
	NumberRouting(ctx context.Context, e E164) (Routing, error)
	// NumberForUser returns the purchased number routed to the communication user id (its
	// caller ID), the lowest E.164 when several are; ErrNotFound when none is.
	NumberForUser(ctx context.Context, user string) (E164, error)

	// NumberSearchCreate holds s.Quantity available numbers matching s for s.ExpiresAt and
	// records the search and op, all in one transaction. With fewer numbers available it
	// holds none and returns ErrOutOfStock.
	NumberSearchCreate(ctx context.Context, s Search, op Operation, now time.Time) (Search, error)
	// NumberSearchGet reads a search and the numbers it holds (ErrNotFound).
	NumberSearchGet(ctx context.Context, id string) (Search, error)
	// NumberSearchPurchase buys every number the search holds, atomically, and records op:
	// ErrNotFound, ErrSearchExpired, ErrConflict (already purchased or cancelled).
	NumberSearchPurchase(ctx context.Context, id string, op Operation, now time.Time) ([]E164, error)
	// NumberSearchCancel frees the numbers of an active search and marks it cancelled.
	NumberSearchCancel(ctx context.Context, id string, now time.Time) error

	// NumberPurchasedList pages through purchased numbers in E.164 order.
	NumberPurchasedList(ctx context.Context, skip, top int) ([]Number, error)
	// NumberCapabilitiesUpdate changes a purchased number's capabilities and records op
	// (ErrNotFound when not purchased).
	NumberCapabilitiesUpdate(ctx context.Context, e E164, caps Capabilities, op Operation) (Number, error)
	// NumberRelease returns a purchased number to quarantine until `until` and records op
	// (ErrNotFound when not purchased).
	NumberRelease(ctx context.Context, e E164, until time.Time, op Operation) error

	// NumberReservationUpsert creates or changes a reservation: adds hold numbers (with the
	// requested capabilities), removes free them. Numbers that cannot be added are reported
	// in failed (id → error) while the rest apply. ErrConflict when the reservation is no
	// longer active.
	NumberReservationUpsert(ctx context.Context, p ReservationChange) (r Reservation, created bool, failed map[E164]error, err error)
	// NumberReservationGet reads a reservation with its numbers (ErrNotFound).
	NumberReservationGet(ctx context.Context, id string, now time.Time) (Reservation, error)
	// NumberReservationList pages through reservations (without numbers), newest first.
	NumberReservationList(ctx context.Context, skip, top int, now time.Time) ([]Reservation, error)
	// NumberReservationDelete frees a reservation's held numbers and deletes it.
	NumberReservationDelete(ctx context.Context, id string) error
	// NumberReservationPurchase buys every number the reservation holds, atomically, and
	// records op: ErrNotFound, ErrReservationExpired, ErrConflict.
	NumberReservationPurchase(ctx context.Context, id string, op Operation, now time.Time) ([]E164, error)

	// NumberOperationCreate records a (failed or finished) operation on its own.
	NumberOperationCreate(ctx context.Context, op Operation) error
	// NumberOperationGet reads an operation (ErrNotFound).
	NumberOperationGet(ctx context.Context, id string) (Operation, error)
	// NumberOperationDelete forgets an operation (ErrNotFound).
	NumberOperationDelete(ctx context.Context, id string) error

	// NumberAreaCodes lists area codes with available numbers of type t, optionally in a
	// locality and/or state.
	NumberAreaCodes(ctx context.Context, t Type, locality, state string, now time.Time) ([]string, error)
	// NumberLocalities lists towns with available numbers, optionally of type t and in state.
	NumberLocalities(ctx context.Context, t Type, state string, now time.Time) ([]Locality, error)
	// NumberOfferings lists the types with available numbers and their lowest prices.
	NumberOfferings(ctx context.Context, now time.Time) ([]Offering, error)
	// NumberBrowse returns up to limit available numbers matching p, starting at a random
	// point, without holding them.
	NumberBrowse(ctx context.Context, p BrowseParams) ([]Number, error)

	// NumberSweep tidies the lifecycle labels at now: run-out holds and quarantines become
	// available, reservations and searches past expiry are marked expired, old operations,
	// searches and reservations are deleted. Availability never depends on it having run.
	NumberSweep(ctx context.Context, now time.Time) (SweepResult, error)
}

// ListParams filters the operator's inventory listing.
type ListParams struct {
	// State filters by effective state ("" = all).
	State State
	// AreaCode filters by NPA ("" = all).
	AreaCode string
	// After lists numbers after this E.164 (keyset paging); Skip is applied after it.
	After E164
	Skip  int
	Top   int
	Now   time.Time
}

// ReservationChange is one PATCH of a reservation.
type ReservationChange struct {
	ID string
	// Add maps numbers to hold with the capabilities and assignment asked for each.
	Add map[E164]ReservedWant
	// Remove lists numbers to free.
	Remove []E164
	Now    time.Time
	// TTL is the expiry after this change (15 minutes); MaxAge caps it from creation (2 h).
	TTL, MaxAge time.Duration
}

// ReservedWant is what a reservation asks of one number.
type ReservedWant struct {
	Type       Type
	Assignment Assignment
	Caps       Capabilities
}

// BrowseParams filters :browse.
type BrowseParams struct {
	Type       Type
	Assignment Assignment
	Caps       Capabilities
	// Prefixes are digit prefixes of the E.164 number without "+", e.g. "1425".
	Prefixes []string
	Limit    int
	Now      time.Time
}

// SweepResult counts what a sweep changed.
type SweepResult struct {
	Freed, Unquarantined, ReservationsExpired, Deleted int
}
