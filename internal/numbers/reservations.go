package numbers

import (
	"context"
	"errors"
	"sort"
	"strconv"

	"github.com/google/uuid"
	"github.com/nyaruka/phonenumbers"

	"github.com/telgw/telgw/internal/problem"
)

// ReservationPatchNumber is one entry of a reservation merge patch: nil removes the number.
type ReservationPatchNumber struct {
	CountryCode, Type, Assignment, Calling, SMS string
}

// ReservationResult is the outcome of a reservation change: the reservation after it, whether
// it was created, and which numbers could not be added (ACS answers 207 then).
type ReservationResult struct {
	Reservation Reservation
	Created     bool
	Failed      map[E164]error
}

// UpsertReservation applies a JSON merge patch of phoneNumbers (id → number, or nil to
// remove) to reservation id, creating it when new. Malformed entries are a 400 naming the
// entry; numbers that cannot be reserved (taken, unknown) are reported per number.
func (s *Service) UpsertReservation(ctx context.Context, id string, patch map[string]*ReservationPatchNumber) (ReservationResult, error) {
	if _, err := uuid.Parse(id); err != nil {
		return ReservationResult{}, problem.Invalid("reservationId", "%q is not a UUID", id).WithCode("InvalidReservationId")
	}
	ch := ReservationChange{ID: id, Add: map[E164]ReservedWant{}, Now: s.now(), TTL: s.cfg.ReservationTTL, MaxAge: s.cfg.ReservationMaxAge}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		target := "phoneNumbers." + k
		e, err := ParseField(target, "+"+k)
		if err != nil {
			return ReservationResult{}, err
		}
		v := patch[k]
		if v == nil {
			ch.Remove = append(ch.Remove, e)
			continue
		}
		if v.CountryCode != "" {
			if err := CheckCountry(v.CountryCode); err != nil {
				return ReservationResult{}, problem.Invalid(target+".countryCode", "%q is not offered; telgw sells US numbers only", v.CountryCode).WithCode("InvalidCountryCode")
			}
		}
		w := ReservedWant{Type: e.Type(), Assignment: AssignApplication, Caps: Capabilities{CapBoth, CapBoth}}
		if e.Type() == TypeGeographic {
			w.Assignment = AssignPerson
		}
		if v.Type != "" {
			if w.Type, err = ParseType(target+".phoneNumberType", v.Type); err != nil {
				return ReservationResult{}, err
			}
			if w.Type != e.Type() {
				return ReservationResult{}, problem.Invalid(target+".phoneNumberType", "%s is a %s number", e, e.Type()).WithCode("InvalidPhoneNumberType")
			}
		}
		if v.Assignment != "" {
			if w.Assignment, err = ParseAssignment(target+".assignmentType", v.Assignment); err != nil {
				return ReservationResult{}, err
			}
		}
		c, err := parseCaps(target+".capabilities", v.Calling, v.SMS, false)
		if err != nil {
			return ReservationResult{}, err
		}
		if c.Calling != "" {
			w.Caps.Calling = c.Calling
		}
		if c.SMS != "" {
			w.Caps.SMS = c.SMS
		}
		ch.Add[e] = w
	}
	r, created, failed, err := s.store.NumberReservationUpsert(ctx, ch)
	switch {
	case errors.Is(err, ErrReservationExpired):
		return ReservationResult{}, err
	case errors.Is(err, problem.ErrConflict):
		return ReservationResult{}, problem.Conflict("reservationId", "reservation %s is no longer active", id).WithCode("ReservationNotActive")
	case err != nil:
		return ReservationResult{}, err
	}
	return ReservationResult{Reservation: r, Created: created, Failed: failed}, nil
}

// Reservation reads a reservation with its numbers.
func (s *Service) Reservation(ctx context.Context, id string) (Reservation, error) {
	r, err := s.store.NumberReservationGet(ctx, id, s.now())
	if errors.Is(err, problem.ErrNotFound) {
		return Reservation{}, problem.NotFound("reservationId", "no reservation %q", id).WithCode("ReservationNotFound")
	}
	return r, err
}

// Reservations pages through reservations (without their numbers).
func (s *Service) Reservations(ctx context.Context, skip, top int) ([]Reservation, error) {
	return s.store.NumberReservationList(ctx, skip, top, s.now())
}

// DeleteReservation frees a reservation's numbers and forgets it.
func (s *Service) DeleteReservation(ctx context.Context, id string) error {
	err := s.store.NumberReservationDelete(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return problem.NotFound("reservationId", "no reservation %q", id).WithCode("ReservationNotFound")
	}
	return err
}

// PurchaseReservation buys every number of a reservation. An unknown reservation is a 404; an
// expired or completed one, or one without numbers, is a failed operation.
func (s *Service) PurchaseReservation(ctx context.Context, id string) (Operation, error) {
	now := s.now()
	op := newOp(OpReservationPurchase, "", now)
	_, err := s.store.NumberReservationPurchase(ctx, id, op, now)
	if errors.Is(err, problem.ErrNotFound) {
		return Operation{}, problem.NotFound("reservationId", "no reservation %q", id).WithCode("ReservationNotFound")
	}
	if err != nil {
		if pe, ok := problem.As(err); ok && pe.Kind == problem.KindConflict && pe.Code == "Conflict" {
			err = problem.Conflict("reservationId", "reservation %s is not active", id).WithCode("ReservationNotActive")
		}
		return s.failOp(ctx, op, err)
	}
	return op, nil
}

// OperatorInfo is what telgw can say about a number's format and operator.
type OperatorInfo struct {
	E164          E164
	National      string
	International string
	// Known is set when the number is in the inventory; Carrier and Type come from it.
	Known   bool
	Carrier string
	Type    Type
}

// OperatorInformation describes numbers (at most 100): formats for any valid NANP number, and
// the carrier for numbers of telgw's inventory.
func (s *Service) OperatorInformation(ctx context.Context, nums []string) ([]OperatorInfo, error) {
	if len(nums) == 0 {
		return nil, problem.Invalid("phoneNumbers", "name at least one phone number").WithCode("InvalidPhoneNumbers")
	}
	if len(nums) > 100 {
		return nil, problem.Invalid("phoneNumbers", "at most 100 numbers per request, not %d", len(nums)).WithCode("InvalidPhoneNumbers")
	}
	out := make([]OperatorInfo, 0, len(nums))
	for i, raw := range nums {
		e, err := ParseField("phoneNumbers["+strconv.Itoa(i)+"]", raw)
		if err != nil {
			return nil, err
		}
		oi := OperatorInfo{E164: e, Type: e.Type()}
		if pn, err := phonenumbers.Parse(string(e), "US"); err == nil {
			oi.National = phonenumbers.Format(pn, phonenumbers.NATIONAL)
			oi.International = phonenumbers.Format(pn, phonenumbers.INTERNATIONAL)
		}
		n, err := s.store.NumberGet(ctx, e)
		if err == nil {
			oi.Known, oi.Carrier, oi.Type = true, n.Carrier, n.Type
		} else if !errors.Is(err, problem.ErrNotFound) {
			return nil, err
		}
		out = append(out, oi)
	}
	return out, nil
}
