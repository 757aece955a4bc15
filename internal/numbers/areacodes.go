package numbers

import "sort"

//go:generate go run areacodes_gen.go

// areaCode is what telgw knows about an NPA without asking anyone.
type areaCode struct {
	Locality string // main town ("" when unknown, as for most overlays)
	State    string // two-letter abbreviation ("" for toll-free)
}

// AreaCodeInfo returns the main town and state of a US area code, and whether the code is in
// service in the US at all (toll-free codes are, with no town or state). The table is built
// from nyaruka/phonenumbers' geocoding data by areacodes_gen.go.
func AreaCodeInfo(npa string) (locality, state string, ok bool) {
	a, ok := areaCodeTable[npa]
	return a.Locality, a.State, ok
}

// USAreaCodes lists every area code in service in the US, sorted.
func USAreaCodes() []string {
	out := make([]string, 0, len(areaCodeTable))
	for k := range areaCodeTable {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// StateName returns the full name of a US state abbreviation ("WA" → "Washington"), or the
// abbreviation itself when unknown.
func StateName(abbr string) string {
	if n, ok := stateNames[abbr]; ok {
		return n
	}
	return abbr
}

// StateAbbr turns a state name or abbreviation, in any case, into its abbreviation ("" when
// unknown).
func StateAbbr(s string) string {
	if len(s) == 2 {
		u := string([]byte{upper(s[0]), upper(s[1])})
		if _, ok := stateNames[u]; ok {
			return u
		}
	}
	for a, n := range stateNames {
		if equalFold(n, s) {
			return a
		}
	}
	return ""
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if upper(a[i]) != upper(b[i]) {
			return false
		}
	}
	return true
}

var stateNames = map[string]string{
	"AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
	"CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
	"FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
	"IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
	"ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
	"MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
	"NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
	"NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
	"PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
	"TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
	"WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
