package numbers

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse checks Parse never panics and that whatever it accepts is canonical E.164 that
// satisfies the NANP rules and parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"+14255550123", "1 (425) 555-0123", "+18005551234", "+14255550150", "+14254110000", "", "+", "+1", "++1", "+1-", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if e != "" {
				t.Fatalf("error with a value: %q", e)
			}
			return
		}
		v := string(e)
		if len(v) != 12 || v[:2] != "+1" || strings.Trim(v[1:], "0123456789") != "" {
			t.Fatalf("Parse(%q) = %q: not E.164", s, v)
		}
		if !ValidNPA(e.NPA()) || e.NXX()[0] < '2' || (e.NXX()[1] == '1' && e.NXX()[2] == '1') {
			t.Fatalf("Parse(%q) = %q breaks NANP rules", s, v)
		}
		if e.NXX() == "555" && v[8:] >= "0100" && v[8:] <= "0199" {
			t.Fatalf("Parse(%q) = %q is fictional", s, v)
		}
		if again, err := Parse(v); err != nil || again != e {
			t.Fatalf("Parse(%q) = %q, %v: not idempotent", v, again, err)
		}
	})
}

// FuzzCSV checks the import reader never panics and only yields valid numbers.
func FuzzCSV(f *testing.F) {
	f.Add(CSVHeader + "\n+14255551234,geographic,inbound,none,Bellevue,WA,acme,1.5\n")
	f.Add("phoneNumber\n\"+14255551234\n")
	f.Add("phoneNumber,monthlyCost\n+18885551234,NaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		cr, err := NewCSVReader(strings.NewReader(in), time.Unix(0, 0))
		if err != nil {
			return
		}
		for range 1000 {
			ns, err := cr.Next(10)
			for _, n := range ns {
				if _, perr := Parse(string(n.E164)); perr != nil || n.MonthlyUSD < 0 || n.MonthlyUSD != n.MonthlyUSD {
					t.Fatalf("yielded invalid %+v", n)
				}
			}
			if err != nil {
				return
			}
		}
	})
}
