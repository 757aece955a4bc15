package numbers

import "github.com/telgw/telgw/internal/problem"

// Domain errors, all problem kinds so every edge maps them the same way. Stores return them
// (wrapped or not); compare with errors.Is.
var (
	// ErrOutOfStock: fewer numbers are available than asked for; nothing was held.
	ErrOutOfStock = problem.Conflict("quantity", "not enough available numbers match the search").WithCode("OutOfStock")
	// ErrSearchExpired: the search's hold has run out.
	ErrSearchExpired = problem.Conflict("searchId", "the search has expired").WithCode("SearchExpired")
	// ErrReservationExpired: the reservation's hold has run out.
	ErrReservationExpired = problem.Conflict("reservationId", "the reservation has expired").WithCode("ReservationExpired")
)
