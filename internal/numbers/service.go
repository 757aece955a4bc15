// Package numbers is telgw's US number inventory: operator import (CSV files, ranges), NANP
// validation, search-and-hold, reservations, purchase, capabilities, release with FCC
// quarantine, and per-number routing for the call and SMS engines. It knows nothing of HTTP or
// SQL: internal/api serves it as the ACS phone numbers API and internal/store persists it.
//
// Lifecycle: available → held (a search or a reservation, expiring) → purchased → released,
// which is quarantined for Config.QuarantineDays → available. A number's FreeAt is the instant
// it may be held again, so holds and quarantines run out without any process calling in.
package numbers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/problem"
)

// Config configures the Service.
type Config struct {
	// Store persists the inventory. Required.
	Store Store
	// QuarantineDays is how long a released number rests before it is offered again (FCC
	// number aging). Default 45 (DefaultConfig); 0: no quarantine. New leaves it as given.
	QuarantineDays int
	// SearchTTL is how long a search holds its numbers. Default 15 minutes (ACS: "less than 15min").
	SearchTTL time.Duration
	// ReservationTTL is how long a reservation lives after its last change. Default 15 minutes.
	ReservationTTL time.Duration
	// ReservationMaxAge caps a reservation's life from its creation. Default 2 hours.
	ReservationMaxAge time.Duration
	// MaxQuantity caps one search. Default 1000.
	MaxQuantity int
	// SweepInterval is how often Run tidies lifecycle labels and old records. Default 30s.
	SweepInterval time.Duration
	// UserExists, when set, tells AssignUser whether a communication user id exists, so a
	// number is never assigned to a user that was never created (internal/identity answers it;
	// it is a function so this package does not depend on identity). Default nil: ids are only
	// checked for form.
	UserExists func(ctx context.Context, id string) (bool, error)
	// Logger receives sweep and import logs. Default discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultQuarantineDays is the default FCC number-aging period.
const DefaultQuarantineDays = 45

// DefaultConfig returns the inventory defaults (docs/CONFIG.md numbers); Store, UserExists and
// Logger are the caller's.
func DefaultConfig() Config {
	return Config{QuarantineDays: DefaultQuarantineDays, SearchTTL: 15 * time.Minute, ReservationTTL: 15 * time.Minute,
		ReservationMaxAge: 2 * time.Hour, MaxQuantity: 1000, SweepInterval: 30 * time.Second}
}

// withDefaults returns c with its unset (≤ 0) durations and limits set from DefaultConfig (not
// QuarantineDays, whose 0 means none), a discarding Logger and time.Now.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *time.Duration }{{&c.SearchTTL, &d.SearchTTL}, {&c.ReservationTTL, &d.ReservationTTL},
		{&c.ReservationMaxAge, &d.ReservationMaxAge}, {&c.SweepInterval, &d.SweepInterval}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.MaxQuantity <= 0 {
		c.MaxQuantity = d.MaxQuantity
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c, keys as docs/CONFIG.md names them under numbers
// ("quarantineDays"). Pure: c is not modified. Zero durations and limits are valid (New takes
// the defaults for them).
func (c Config) Validate() error {
	var errs []error
	if c.QuarantineDays < 0 {
		errs = append(errs, errors.New("quarantineDays: must not be negative"))
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"searchTTL", c.SearchTTL}, {"reservationTTL", c.ReservationTTL}, {"reservationMaxAge", c.ReservationMaxAge}, {"sweepInterval", c.SweepInterval}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.key))
		}
	}
	if c.MaxQuantity < 0 {
		errs = append(errs, errors.New("maxQuantity: must not be negative"))
	}
	return errors.Join(errs...)
}

// Service is the numbers domain.
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger
}

// New builds a Service.
func New(cfg Config) *Service {
	cfg = cfg.withDefaults()
	return &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Quarantine is how long released numbers rest.
func (s *Service) Quarantine() time.Duration {
	return time.Duration(s.cfg.QuarantineDays) * 24 * time.Hour
}

// Country is the one country telgw sells numbers in.
const Country = "US"

// CheckCountry validates an ACS countryCode path parameter.
func CheckCountry(code string) error {
	if code == Country || code == "us" {
		return nil
	}
	return problem.Invalid("countryCode", "%q is not offered; telgw sells US numbers only", code).WithCode("InvalidCountryCode")
}

// ImportReport summarises an import.
type ImportReport struct {
	// Read counts data lines (or range numbers) seen.
	Read int `json:"read"`
	// Imported counts numbers added to the inventory.
	Imported int `json:"imported"`
	// Existing counts valid numbers already in the inventory (left untouched).
	Existing int `json:"existing"`
	// Invalid counts rejected lines; Errors lists the first of them.
	Invalid int        `json:"invalid"`
	Errors  []RowError `json:"errors"`
}

// ImportBatch is how many rows go to the store at once.
const ImportBatch = 5000

// ImportCSV loads an inventory file (see CSVHeader). Invalid lines are reported, valid ones
// load, numbers already present are left as they are.
func (s *Service) ImportCSV(ctx context.Context, r io.Reader) (ImportReport, error) {
	cr, err := NewCSVReader(r, s.now())
	if err != nil {
		return ImportReport{}, problem.Invalid("file", "%v", err).WithCode("InvalidImportFile")
	}
	var rep ImportReport
	for {
		batch, err := cr.Next(ImportBatch)
		if len(batch) > 0 {
			n, ierr := s.store.NumberImport(ctx, batch)
			if ierr != nil {
				return rep, fmt.Errorf("import near line %d: %w", cr.Line(), ierr)
			}
			rep.Imported += n
			rep.Existing += len(batch) - n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rep.Invalid, rep.Errors = cr.Invalid, cr.Errors
			return rep, problem.Invalid("file", "%v", err).WithCode("InvalidImportFile")
		}
	}
	rep.Invalid, rep.Errors = cr.Invalid, cr.Errors
	rep.Read = rep.Imported + rep.Existing + rep.Invalid
	s.log.InfoContext(ctx, "numbers imported", "imported", rep.Imported, "existing", rep.Existing, "invalid", rep.Invalid)
	return rep, nil
}

// ImportRange loads every valid number of "FIRST:LAST" with tmpl's other fields; numbers the
// NANP rules reject (e.g. 555-01XX) are reported, the rest load.
func (s *Service) ImportRange(ctx context.Context, rng string, tmpl ImportInput) (ImportReport, error) {
	from, to, err := ParseRange(rng)
	if err != nil {
		return ImportReport{}, problem.Invalid("range", "%v", err).WithCode("InvalidRange")
	}
	now := s.now()
	var rep ImportReport
	batch := make([]Number, 0, ImportBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := s.store.NumberImport(ctx, batch)
		if err != nil {
			return err
		}
		rep.Imported += n
		rep.Existing += len(batch) - n
		batch = batch[:0]
		return nil
	}
	err = RangeInputs(from, to, tmpl, func(in ImportInput) error {
		rep.Read++
		n, err := NewNumber(in, now)
		if err != nil {
			rep.Invalid++
			if len(rep.Errors) < 1000 {
				rep.Errors = append(rep.Errors, RowError{Line: rep.Read, PhoneNumber: in.PhoneNumber, Error: err.Error()})
			}
			return nil
		}
		batch = append(batch, n)
		if len(batch) == ImportBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, fmt.Errorf("import range: %w", err)
	}
	return rep, nil
}

// List pages through the inventory for the operator.
func (s *Service) List(ctx context.Context, p ListParams) ([]Number, error) {
	p.Now = s.now()
	if p.AreaCode != "" && !ValidNPA(p.AreaCode) {
		return nil, problem.Invalid("areaCode", "%q is not an area code", p.AreaCode)
	}
	switch p.State {
	case "", StateAvailable, StateHeld, StatePurchased, StateQuarantined:
	default:
		return nil, problem.Invalid("state", "%q is not available, held, purchased or quarantined", p.State)
	}
	return s.store.NumberList(ctx, p)
}

// Get reads one inventory number, whatever its state (operator view).
func (s *Service) Get(ctx context.Context, number string) (Number, error) {
	e, err := ParseField("phoneNumber", number)
	if err != nil {
		return Number{}, err
	}
	n, err := s.store.NumberGet(ctx, e)
	if errors.Is(err, problem.ErrNotFound) {
		return Number{}, problem.NotFound("phoneNumber", "%s is not in the inventory", e).WithCode("PhoneNumberNotFound")
	}
	return n, err
}

// Withdraw removes an unsold number from the inventory.
func (s *Service) Withdraw(ctx context.Context, number string) error {
	e, err := ParseField("phoneNumber", number)
	if err != nil {
		return err
	}
	err = s.store.NumberWithdraw(ctx, e, s.now())
	switch {
	case errors.Is(err, problem.ErrNotFound):
		return problem.NotFound("phoneNumber", "%s is not in the inventory", e).WithCode("PhoneNumberNotFound")
	case errors.Is(err, problem.ErrConflict):
		return problem.Conflict("phoneNumber", "%s is purchased or held; only unsold numbers can be withdrawn", e).WithCode("PhoneNumberInUse")
	}
	return err
}

// SetRoute sets who receives a purchased number's calls and messages.
func (s *Service) SetRoute(ctx context.Context, number string, r Route) error {
	e, err := ParseField("phoneNumber", number)
	if err != nil {
		return err
	}
	err = s.store.NumberSetRoute(ctx, e, r)
	switch {
	case errors.Is(err, problem.ErrNotFound):
		return problem.NotFound("phoneNumber", "%s is not in the inventory", e).WithCode("PhoneNumberNotFound")
	case errors.Is(err, problem.ErrConflict):
		return problem.Conflict("phoneNumber", "%s is not purchased; only purchased numbers are routed", e).WithCode("PhoneNumberNotPurchased")
	}
	return err
}

// NumberRoute tells the call and SMS engines about one of telgw's numbers: its carrier,
// purchased capabilities and route. It is problem.ErrNotFound (kind NotFound) unless the
// number is purchased; a malformed number is KindInvalid.
func (s *Service) NumberRoute(ctx context.Context, number string) (Routing, error) {
	e, err := Parse(number)
	if err != nil {
		return Routing{}, problem.Invalid("phoneNumber", "%q: %v", number, err)
	}
	return s.store.NumberRouting(ctx, e)
}

// Run sweeps lifecycle labels and old records every SweepInterval until ctx ends. Correctness
// never depends on it: expired holds are free the instant they expire.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "numbers sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep runs one sweep now.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	r, err := s.store.NumberSweep(ctx, s.now())
	if err == nil && (r.Freed+r.Unquarantined+r.ReservationsExpired+r.Deleted) > 0 {
		s.log.DebugContext(ctx, "numbers sweep", "freed", r.Freed, "unquarantined", r.Unquarantined,
			"reservations_expired", r.ReservationsExpired, "deleted", r.Deleted)
	}
	return r, err
}

func newOp(t OperationType, resource string, now time.Time) Operation {
	return Operation{ID: t.Prefix() + uuid.NewString(), Type: t, Status: OpSucceeded, Resource: resource, CreatedAt: now, UpdatedAt: now}
}

// failOp records op as failed with err's ACS code and message.
func (s *Service) failOp(ctx context.Context, op Operation, err error) (Operation, error) {
	op.Status, op.ErrCode, op.ErrMsg = OpFailed, "InternalError", "the operation failed"
	if pe, ok := problem.As(err); ok && pe.Kind != problem.KindInternal {
		op.ErrCode, op.ErrMsg = pe.Code, pe.Message
		if pe.Target != "" {
			op.ErrMsg = pe.Target + ": " + pe.Message
		}
	} else {
		s.log.ErrorContext(ctx, "numbers operation failed", "op", op.ID, "err", err)
	}
	if cerr := s.store.NumberOperationCreate(ctx, op); cerr != nil {
		return Operation{}, fmt.Errorf("record failed operation: %w", cerr)
	}
	return op, nil
}
