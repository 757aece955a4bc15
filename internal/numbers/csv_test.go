package numbers

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestCSVReader(t *testing.T) {
	t.Parallel()
	in := "\ufeffPhoneNumber,carrier,monthlyCost,sms,administrativeDivision\n" +
		"+14255551234,acme,0.80,outbound,\n" +
		"# a comment\n" +
		"\n" +
		"+14255550150,acme,,,\n" + // fictional
		"+18885551234,,,,\n" +
		"+14255551235,acme,-1,,\n" + // bad cost
		"+14255551236,acme,,sideways,\n" + // bad capability
		"+16045551234,,,,\n" + // Canada
		"+14255551237,,,,Oregon\n" +
		"+14255551238,,,,Narnia\n"
	cr, err := NewCSVReader(strings.NewReader(in), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cr.Next(2)
	if err != nil || len(got) != 2 {
		t.Fatalf("first batch: %v %v", got, err)
	}
	if n := got[0]; n.E164 != "+14255551234" || n.Carrier != "acme" || n.MonthlyUSD != 0.8 || n.Offered.SMS != CapOutbound ||
		n.Offered.Calling != CapBoth || n.State != "WA" || n.Locality != "Bellevue" {
		t.Fatalf("row: %+v", n)
	}
	if n := got[1]; n.Type != TypeTollFree || n.MonthlyUSD != 2 || n.State != "" {
		t.Fatalf("toll-free row: %+v", n)
	}
	rest, err := cr.Next(100)
	if err != nil || len(rest) != 1 || rest[0].State != "OR" {
		t.Fatalf("rest: %+v %v", rest, err)
	}
	if _, err := cr.Next(100); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	wantLines := []int{5, 7, 8, 9, 11}
	if cr.Invalid != len(wantLines) {
		t.Fatalf("invalid %d: %+v", cr.Invalid, cr.Errors)
	}
	for i, e := range cr.Errors {
		if e.Line != wantLines[i] || e.Error == "" {
			t.Errorf("error %d: %+v, want line %d", i, e, wantLines[i])
		}
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "carrier\n+14255551234\n", "phoneNumber,colour\n", "phoneNumber,phonenumber\n"} {
		if _, err := NewCSVReader(strings.NewReader(in), time.Now()); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	from, to, err := ParseRange("+14255550195:+14255550205")
	if err != nil {
		t.Fatal(err)
	}
	var ok, bad int
	_ = RangeInputs(from, to, ImportInput{Carrier: "x"}, func(in ImportInput) error {
		if _, err := NewNumber(in, time.Now()); err != nil {
			bad++
		} else {
			ok++
		}
		return nil
	})
	if ok != 6 || bad != 5 { // 0195–0199 fictional
		t.Fatalf("ok %d bad %d", ok, bad)
	}
	for _, s := range []string{"+14255550100", "+14255550300:+14255550200", "+14255550100:junk", "+12000000000:+19999999999"} {
		if _, _, err := ParseRange(s); err == nil {
			t.Errorf("ParseRange(%q) accepted", s)
		}
	}
}
