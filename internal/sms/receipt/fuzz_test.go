package receipt

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks the receipt parser never panics and that what it accepts is usable: a
// non-empty id without spaces, a set state, and matching candidates that include its own key.
func FuzzParse(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2611280615 done date:2611280616 stat:DELIVRD err:000 Text:Hello")
	f.Add("stat:UNDELIV id:ab")
	f.Add("id:\x00 stat:")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if r.ID == "" || strings.ContainsAny(r.ID, " \t\n") || r.State == StateUnset {
			t.Fatalf("accepted %+v", r)
		}
		c := Candidates(r.ID)
		if len(c) == 0 || c[0] != Key(r.ID) {
			t.Fatalf("candidates %v for %q", c, r.ID)
		}
	})
}

// FuzzFindFields: the hand-written field scanner finds what fieldRE finds, and parseDate
// reads what time.Parse reads.
func FuzzFindFields(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2611280615 done date:2611280616 stat:DELIVRD err:000 Text:Hello")
	f.Add(" ID:x\tSubmit_Date:260229 Done_date:2402291200 stat:: id:: text:")
	f.Add("\fid:a  stat:b\rerr:c\nsub:d sub date: submit  date:x idstat:y")
	f.Add("ſtat:DELIVRD id:1")
	f.Add("6902291200")
	f.Fuzz(func(t *testing.T, s string) {
		want := fieldRE.FindAllStringSubmatchIndex(s, -1)
		got := findFields(s)
		if len(got) != len(want) {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
		for i := range got {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("%q: %v, want %v", s, got, want)
			}
		}
		for _, v := range []string{s, strings.TrimSpace(s)} {
			var want time.Time
			for _, layout := range []string{"0601021504", "060102150405"} {
				if len(v) == len(layout) {
					if d, err := time.Parse(layout, v); err == nil {
						want = d
					}
				}
			}
			if got := parseDate(v); !got.Equal(want) || got.Location() != want.Location() {
				t.Fatalf("parseDate(%q) = %v, want %v", v, got, want)
			}
		}
	})
}
