package numbers

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/problem"
)

// SearchRequest is an ACS PhoneNumberSearchRequest, raw strings as received.
type SearchRequest struct {
	CountryCode, Type, Assignment, Calling, SMS, AreaCode string
	// Quantity is nil when absent (default 1).
	Quantity *int
}

// Search validates req and holds numbers. Bad requests are errors (400); a valid search that
// cannot be satisfied is a failed operation (err nil, op.Status failed) with nothing held.
func (s *Service) Search(ctx context.Context, req SearchRequest) (Search, Operation, error) {
	if err := CheckCountry(req.CountryCode); err != nil {
		return Search{}, Operation{}, err
	}
	t, err := ParseType("phoneNumberType", req.Type)
	if err != nil {
		return Search{}, Operation{}, err
	}
	a, err := ParseAssignment("assignmentType", req.Assignment)
	if err != nil {
		return Search{}, Operation{}, err
	}
	caps, err := parseCaps("capabilities", req.Calling, req.SMS, true)
	if err != nil {
		return Search{}, Operation{}, err
	}
	q := 1
	if req.Quantity != nil {
		q = *req.Quantity
	}
	if q < 1 || q > s.cfg.MaxQuantity {
		return Search{}, Operation{}, problem.Invalid("quantity", "must be between 1 and %d, not %d", s.cfg.MaxQuantity, q).WithCode("InvalidQuantity")
	}
	area := strings.TrimSpace(req.AreaCode)
	if area != "" {
		if !ValidNPA(area) {
			return Search{}, Operation{}, problem.Invalid("areaCode", "%q is not a North American area code", area).WithCode("InvalidAreaCode")
		}
		if (t == TypeTollFree) != IsTollFreeNPA(area) {
			return Search{}, Operation{}, problem.Invalid("areaCode", "%s is not a %s area code", area, t).WithCode("InvalidAreaCode")
		}
	}
	now := s.now()
	se := Search{ID: uuid.NewString(), Type: t, Assignment: a, Caps: caps, AreaCode: area, Quantity: q,
		Status: SearchActive, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SearchTTL)}
	op := newOp(OpSearch, se.ID, now)
	got, err := s.store.NumberSearchCreate(ctx, se, op, now)
	if err != nil {
		op, ferr := s.failOp(ctx, op, err)
		return Search{}, op, ferr
	}
	return got, op, nil
}

func parseCaps(target, calling, sms string, required bool) (Capabilities, error) {
	var c Capabilities
	var err error
	if calling == "" && required {
		return c, problem.Invalid(target+".calling", "is required").WithCode("InvalidCapabilities")
	}
	if sms == "" && required {
		return c, problem.Invalid(target+".sms", "is required").WithCode("InvalidCapabilities")
	}
	if calling != "" {
		if c.Calling, err = ParseCapability(target+".calling", calling); err != nil {
			return c, err
		}
	}
	if sms != "" {
		if c.SMS, err = ParseCapability(target+".sms", sms); err != nil {
			return c, err
		}
	}
	return c, nil
}

// SearchResult reads a search that is still holding its numbers.
func (s *Service) SearchResult(ctx context.Context, id string) (Search, error) {
	se, err := s.store.NumberSearchGet(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return Search{}, problem.NotFound("searchId", "no search %q", id).WithCode("SearchNotFound")
	}
	if err != nil {
		return Search{}, err
	}
	if se.Status == SearchCancelled {
		return Search{}, problem.NotFound("searchId", "search %q was cancelled", id).WithCode("SearchNotFound")
	}
	if se.Status == SearchActive && !se.ExpiresAt.After(s.now()) {
		return Search{}, problem.NotFound("searchId", "search %q expired at %s", id, se.ExpiresAt.Format("2006-01-02T15:04:05Z")).WithCode("SearchExpired")
	}
	return se, nil
}

// Purchase buys the numbers a search holds. A missing searchId is a 400 and an unknown one a
// 404; an expired or cancelled search is a failed operation. The purchase's operation id is
// "purchase_" + searchId, as ACS's; buying a search again (a client retrying after a lost
// answer, or two at once) answers that first operation and buys nothing more.
func (s *Service) Purchase(ctx context.Context, searchID string) (Operation, error) {
	if strings.TrimSpace(searchID) == "" {
		return Operation{}, problem.Invalid("searchId", "is required").WithCode("InvalidSearchId")
	}
	now := s.now()
	op := newOp(OpPurchase, searchID, now)
	op.Resource = ""
	failed := op.ID // failed attempts get their own operations
	op.ID = OpPurchase.Prefix() + searchID
	_, err := s.store.NumberSearchPurchase(ctx, searchID, op, now)
	if err == nil {
		return op, nil
	}
	op.ID = failed
	if errors.Is(err, problem.ErrNotFound) {
		return Operation{}, problem.NotFound("searchId", "no search %q", searchID).WithCode("SearchNotFound")
	}
	if errors.Is(err, problem.ErrConflict) && !errors.Is(err, ErrSearchExpired) {
		first, gerr := s.store.NumberOperationGet(ctx, OpPurchase.Prefix()+searchID)
		if gerr == nil && first.Type == OpPurchase && first.Status == OpSucceeded {
			return first, nil
		}
		err = problem.Conflict("searchId", "search %q is already purchased or cancelled", searchID).WithCode("SearchNotActive")
	}
	return s.failOp(ctx, op, err)
}

// Purchased reads a purchased number; path is the E.164 from the URL.
func (s *Service) Purchased(ctx context.Context, path string) (Number, error) {
	e, err := ParseField("phoneNumber", path)
	if err != nil {
		return Number{}, err
	}
	n, err := s.store.NumberGet(ctx, e)
	if errors.Is(err, problem.ErrNotFound) || (err == nil && n.Status != StatePurchased) {
		return Number{}, problem.NotFound("phoneNumber", "%s is not a purchased number", e).WithCode("PhoneNumberNotFound")
	}
	return n, err
}

// PurchasedList pages through purchased numbers.
func (s *Service) PurchasedList(ctx context.Context, skip, top int) ([]Number, error) {
	return s.store.NumberPurchasedList(ctx, skip, top)
}

// UpdateCapabilities merges calling/sms ("" = unchanged) into a purchased number's
// capabilities; asking for more than its carrier offers is a 400.
func (s *Service) UpdateCapabilities(ctx context.Context, path, calling, sms string) (Number, Operation, error) {
	n, err := s.Purchased(ctx, path)
	if err != nil {
		return Number{}, Operation{}, err
	}
	want, err := parseCaps("capabilities", calling, sms, false)
	if err != nil {
		return Number{}, Operation{}, err
	}
	if calling == "" && sms == "" {
		return Number{}, Operation{}, problem.Invalid("body", "name calling and/or sms").WithCode("InvalidCapabilities")
	}
	caps := n.Caps
	if want.Calling != "" {
		caps.Calling = want.Calling
	}
	if want.SMS != "" {
		caps.SMS = want.SMS
	}
	if !n.Offered.Calling.Covers(caps.Calling) {
		return Number{}, Operation{}, problem.Invalid("calling", "%s offers calling %s only", n.E164, n.Offered.Calling).WithCode("InvalidCapabilities")
	}
	if !n.Offered.SMS.Covers(caps.SMS) {
		return Number{}, Operation{}, problem.Invalid("sms", "%s offers sms %s only", n.E164, n.Offered.SMS).WithCode("InvalidCapabilities")
	}
	now := s.now()
	op := newOp(OpCapabilities, string(n.E164), now)
	out, err := s.store.NumberCapabilitiesUpdate(ctx, n.E164, caps, op)
	if errors.Is(err, problem.ErrNotFound) {
		return Number{}, Operation{}, problem.NotFound("phoneNumber", "%s is not a purchased number", n.E164).WithCode("PhoneNumberNotFound")
	}
	return out, op, err
}

// Release gives a purchased number back; it rests in quarantine before it is sold again.
func (s *Service) Release(ctx context.Context, path string) (Operation, error) {
	e, err := ParseField("phoneNumber", path)
	if err != nil {
		return Operation{}, err
	}
	now := s.now()
	op := newOp(OpRelease, "", now)
	err = s.store.NumberRelease(ctx, e, now.Add(s.Quarantine()), op)
	if errors.Is(err, problem.ErrNotFound) {
		return Operation{}, problem.NotFound("phoneNumber", "%s is not a purchased number", e).WithCode("PhoneNumberNotFound")
	}
	return op, err
}

// Operation reads a long-running operation.
func (s *Service) Operation(ctx context.Context, id string) (Operation, error) {
	op, err := s.store.NumberOperationGet(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return Operation{}, problem.NotFound("operationId", "no operation %q", id).WithCode("OperationNotFound")
	}
	return op, err
}

// CancelOperation forgets an operation; cancelling a search's operation also frees the
// numbers it holds (when not purchased yet).
func (s *Service) CancelOperation(ctx context.Context, id string) error {
	op, err := s.Operation(ctx, id)
	if err != nil {
		return err
	}
	if op.Type == OpSearch && op.Status == OpSucceeded && op.Resource != "" {
		if err := s.store.NumberSearchCancel(ctx, op.Resource, s.now()); err != nil && !errors.Is(err, problem.ErrNotFound) && !errors.Is(err, problem.ErrConflict) {
			return err
		}
	}
	if err := s.store.NumberOperationDelete(ctx, id); err != nil && !errors.Is(err, problem.ErrNotFound) {
		return err
	}
	return nil
}

// AreaCodes lists area codes with available numbers. ACS requires assignmentType application
// for toll-free; geographic codes may be narrowed by locality and state.
func (s *Service) AreaCodes(ctx context.Context, country, typ, assignment, locality, state string) ([]string, error) {
	if err := CheckCountry(country); err != nil {
		return nil, err
	}
	t, err := ParseType("phoneNumberType", typ)
	if err != nil {
		return nil, err
	}
	if assignment != "" {
		if _, err := ParseAssignment("assignmentType", assignment); err != nil {
			return nil, err
		}
	}
	st := ""
	if state != "" {
		if st = StateAbbr(state); st == "" {
			return nil, problem.Invalid("administrativeDivision", "%q is not a US state", state).WithCode("InvalidAdministrativeDivision")
		}
	}
	return s.store.NumberAreaCodes(ctx, t, locality, st, s.now())
}

// Localities lists towns with available numbers.
func (s *Service) Localities(ctx context.Context, country, typ, state string) ([]Locality, error) {
	if err := CheckCountry(country); err != nil {
		return nil, err
	}
	var t Type
	if typ != "" {
		var err error
		if t, err = ParseType("phoneNumberType", typ); err != nil {
			return nil, err
		}
	}
	st := ""
	if state != "" {
		if st = StateAbbr(state); st == "" {
			return nil, problem.Invalid("administrativeDivision", "%q is not a US state", state).WithCode("InvalidAdministrativeDivision")
		}
	}
	return s.store.NumberLocalities(ctx, t, st, s.now())
}

// Offerings lists what can be bought: geographic numbers for persons and applications,
// toll-free for applications, each with the lowest price in stock.
func (s *Service) Offerings(ctx context.Context, country, typ, assignment string) ([]Offering, error) {
	if err := CheckCountry(country); err != nil {
		return nil, err
	}
	if typ != "" {
		if _, err := ParseType("phoneNumberType", typ); err != nil {
			return nil, err
		}
	}
	if assignment != "" {
		if _, err := ParseAssignment("assignmentType", assignment); err != nil {
			return nil, err
		}
	}
	all, err := s.store.NumberOfferings(ctx, s.now())
	if err != nil {
		return nil, err
	}
	var out []Offering
	for _, o := range all {
		for _, a := range []Assignment{AssignPerson, AssignApplication} {
			if o.Type == TypeTollFree && a == AssignPerson {
				continue
			}
			if (typ == "" || Type(typ) == o.Type) && (assignment == "" || Assignment(assignment) == a) {
				out = append(out, Offering{Type: o.Type, Assignment: a, MonthlyUSD: o.MonthlyUSD})
			}
		}
	}
	return out, nil
}

// BrowseRequest is an ACS PhoneNumbersBrowseRequest.
type BrowseRequest struct {
	CountryCode, Type, Assignment, Calling, SMS string
	Prefixes                                    []string
}

// BrowseLimit is how many numbers :browse returns at most.
const BrowseLimit = 20

// Browse shows some available numbers matching req without holding them.
func (s *Service) Browse(ctx context.Context, req BrowseRequest) ([]Number, BrowseParams, error) {
	if err := CheckCountry(req.CountryCode); err != nil {
		return nil, BrowseParams{}, err
	}
	t, err := ParseType("phoneNumberType", req.Type)
	if err != nil {
		return nil, BrowseParams{}, err
	}
	p := BrowseParams{Type: t, Assignment: AssignApplication, Limit: BrowseLimit, Now: s.now()}
	if t == TypeGeographic {
		p.Assignment = AssignPerson
	}
	if req.Assignment != "" {
		if p.Assignment, err = ParseAssignment("assignmentType", req.Assignment); err != nil {
			return nil, p, err
		}
	}
	if p.Caps, err = parseCaps("capabilities", req.Calling, req.SMS, false); err != nil {
		return nil, p, err
	}
	if p.Caps.Calling == "" {
		p.Caps.Calling = CapNone
	}
	if p.Caps.SMS == "" {
		p.Caps.SMS = CapNone
	}
	for i, pre := range req.Prefixes {
		pre = strings.TrimPrefix(strings.TrimSpace(pre), "+")
		if pre == "" || len(pre) > 11 || strings.Trim(pre, "0123456789") != "" || pre[0] != '1' {
			return nil, p, problem.Invalid("phoneNumberPrefixes["+strconv.Itoa(i)+"]", "%q is not a prefix of a +1 number (e.g. 1425)", req.Prefixes[i]).WithCode("InvalidPrefix")
		}
		p.Prefixes = append(p.Prefixes, pre)
	}
	ns, err := s.store.NumberBrowse(ctx, p)
	return ns, p, err
}
