package receipt

import (
	"strings"
	"testing"
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
