package numbers

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the import file's header; only phoneNumber is required, columns may come in any
// order.
const CSVHeader = "phoneNumber,phoneNumberType,calling,sms,locality,administrativeDivision,carrier,monthlyCost"

// Default monthly prices (USD) when an import names none.
const (
	DefaultGeographicUSD = 1.00
	DefaultTollFreeUSD   = 2.00
)

// RowError is one rejected import line.
type RowError struct {
	Line        int    `json:"line"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
	Error       string `json:"error"`
}

// ImportInput is one number to import, as the operator wrote it; NewNumber validates it and
// derives what is missing.
type ImportInput struct {
	PhoneNumber, Type, Calling, SMS, Locality, State, Carrier, MonthlyCost string
}

// NewNumber validates in and fills the defaults: type from the NPA, capabilities
// inbound+outbound, town and state from the area code, 1.00 USD monthly (2.00 toll-free).
func NewNumber(in ImportInput, now time.Time) (Number, error) {
	e, err := Parse(in.PhoneNumber)
	if err != nil {
		return Number{}, err
	}
	loc, st, ok := AreaCodeInfo(e.NPA())
	if !ok {
		return Number{}, fmt.Errorf("area code %s is not in service in the US", e.NPA())
	}
	n := Number{E164: e, Type: e.Type(), Offered: Capabilities{CapBoth, CapBoth}, Locality: loc, State: st,
		Carrier: strings.TrimSpace(in.Carrier), Status: StateAvailable, ImportedAt: now}
	zero := time.UnixMilli(0).UTC()
	n.FreeAt = &zero
	if v := strings.TrimSpace(in.Type); v != "" {
		t, err := ParseType("phoneNumberType", v)
		if err != nil {
			return Number{}, errors.New(strings.TrimPrefix(err.Error(), "phoneNumberType: "))
		}
		if t != n.Type {
			return Number{}, fmt.Errorf("phoneNumberType %s does not match area code %s (%s)", t, e.NPA(), n.Type)
		}
	}
	for _, c := range []struct {
		name, v string
		dst     *Capability
	}{{"calling", in.Calling, &n.Offered.Calling}, {"sms", in.SMS, &n.Offered.SMS}} {
		if v := strings.TrimSpace(c.v); v != "" {
			capv, err := ParseCapability(c.name, v)
			if err != nil {
				return Number{}, fmt.Errorf("%s: %q is not none, inbound, outbound or inbound+outbound", c.name, v)
			}
			*c.dst = capv
		}
	}
	if v := strings.TrimSpace(in.Locality); v != "" {
		n.Locality = v
	}
	if v := strings.TrimSpace(in.State); v != "" {
		a := StateAbbr(v)
		if a == "" {
			return Number{}, fmt.Errorf("administrativeDivision %q is not a US state", v)
		}
		n.State = a
	}
	n.MonthlyUSD = DefaultGeographicUSD
	if n.Type == TypeTollFree {
		n.MonthlyUSD = DefaultTollFreeUSD
	}
	if v := strings.TrimSpace(in.MonthlyCost); v != "" {
		f, err := strconv.ParseFloat(strings.TrimPrefix(v, "$"), 64)
		if err != nil || f < 0 || f > 1e6 || f != f {
			return Number{}, fmt.Errorf("monthlyCost %q is not a price in USD", v)
		}
		n.MonthlyUSD = f
	}
	return n, nil
}

// CSVReader streams numbers from an import file, collecting rejected lines.
type CSVReader struct {
	r       *csv.Reader
	cols    [8]int // index of each CSVHeader column, -1 when absent
	now     time.Time
	line    int
	Errors  []RowError // first MaxErrors rejected lines
	Invalid int        // all rejected lines
	// MaxErrors caps Errors (default 1000); Invalid still counts them all.
	MaxErrors int
}

// NewCSVReader reads the header of r and checks its columns.
func NewCSVReader(r io.Reader, now time.Time) (*CSVReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("line 1: empty file; want the header " + CSVHeader)
		}
		return nil, fmt.Errorf("line 1: %w", err)
	}
	c := &CSVReader{r: cr, now: now, line: 1, MaxErrors: 1000}
	for i := range c.cols {
		c.cols[i] = -1
	}
	names := strings.Split(CSVHeader, ",")
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		found := false
		for j, n := range names {
			if strings.EqualFold(h, n) {
				if c.cols[j] >= 0 {
					return nil, fmt.Errorf("line 1: column %q appears twice", n)
				}
				c.cols[j], found = i, true
			}
		}
		if !found {
			return nil, fmt.Errorf("line 1: unknown column %q; the header is %s", h, CSVHeader)
		}
	}
	if c.cols[0] < 0 {
		return nil, errors.New("line 1: the header must name the phoneNumber column (" + CSVHeader + ")")
	}
	return c, nil
}

// Next returns up to max valid numbers; an empty slice with io.EOF ends the file. Rejected
// lines are recorded in Errors, not returned as errors; a malformed CSV stream is an error.
func (c *CSVReader) Next(max int) ([]Number, error) {
	out := make([]Number, 0, max)
	for len(out) < max {
		rec, err := c.r.Read()
		if errors.Is(err, io.EOF) {
			if len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return out, fmt.Errorf("line %d: %w", c.line+1, err)
			}
			c.line = pe.Line
			if !errors.Is(pe.Err, csv.ErrQuote) && !errors.Is(pe.Err, csv.ErrBareQuote) {
				return out, fmt.Errorf("line %d: %w", c.line, err)
			}
			c.reject(c.line, "", err.Error())
			if errors.Is(pe.Err, csv.ErrQuote) {
				return out, fmt.Errorf("line %d: %w", c.line, err) // unterminated quote: the rest is unreadable
			}
			continue
		}
		c.line, _ = c.r.FieldPos(0)
		var in ImportInput
		fields := [8]*string{&in.PhoneNumber, &in.Type, &in.Calling, &in.SMS, &in.Locality, &in.State, &in.Carrier, &in.MonthlyCost}
		for i, col := range c.cols {
			if col >= 0 && col < len(rec) {
				*fields[i] = rec[col]
			}
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		n, err := NewNumber(in, c.now)
		if err != nil {
			c.reject(c.line, in.PhoneNumber, err.Error())
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// Line is the last line read.
func (c *CSVReader) Line() int { return c.line }

func (c *CSVReader) reject(line int, number, msg string) {
	c.Invalid++
	if len(c.Errors) < c.MaxErrors {
		c.Errors = append(c.Errors, RowError{Line: line, PhoneNumber: strings.TrimSpace(number), Error: msg})
	}
}

// MaxRange caps one --range import.
const MaxRange = 1_000_000

// ParseRange reads "+14155550100:+14155550199" (inclusive) into its two ends.
func ParseRange(s string) (from, to E164, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("range %q: want FIRST:LAST, e.g. +14255550100:+14255550199", s)
	}
	// The ends only need to be +1 numbers: a carrier's block may start or end on a number
	// the numbering plan rejects (555-0100), which is then reported like any other.
	da, err := nanpDigits(a)
	if err != nil {
		return "", "", fmt.Errorf("range start %q: %w", a, err)
	}
	db, err := nanpDigits(b)
	if err != nil {
		return "", "", fmt.Errorf("range end %q: %w", b, err)
	}
	from, to = E164("+"+string(da[:])), E164("+"+string(db[:]))
	if to < from {
		return "", "", fmt.Errorf("range %q: the end is below the start", s)
	}
	if span(from, to) > MaxRange {
		return "", "", fmt.Errorf("range %q: more than %d numbers", s, MaxRange)
	}
	return from, to, nil
}

func span(from, to E164) int64 {
	a, _ := strconv.ParseInt(from.ID(), 10, 64)
	b, _ := strconv.ParseInt(to.ID(), 10, 64)
	return b - a + 1
}

// RangeInputs yields the numbers from..to (inclusive) as import inputs sharing tmpl's other
// fields, in order; fn's error stops the walk.
func RangeInputs(from, to E164, tmpl ImportInput, fn func(ImportInput) error) error {
	a, _ := strconv.ParseInt(from.ID(), 10, 64)
	b, _ := strconv.ParseInt(to.ID(), 10, 64)
	for v := a; v <= b; v++ {
		in := tmpl
		in.PhoneNumber = "+" + strconv.FormatInt(v, 10)
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}
