package speech

import (
	"strings"
	"unicode"

	"github.com/telgw/telgw/internal/media/dtmf"
)

// Choice is one of a recognize request's choices (ACS RecognitionChoice).
type Choice struct {
	Label   string
	Phrases []string
	// Tone, when set, selects the choice by DTMF (speechOrDtmf and choices with tones).
	Tone *dtmf.Tone
}

// Normalize lowercases s and reduces it to words separated by single spaces (punctuation
// dropped, apostrophes kept), the form phrases and transcripts are compared in.
func Normalize(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	return strings.Join(f, " ")
}

// MatchSpeech finds the choice a transcript selects, comparing case-insensitively without
// punctuation: a phrase equal to the transcript wins, otherwise the longest phrase the
// transcript contains as whole words ("I want billing please" selects the phrase "billing").
// It returns the choice's label and the phrase matched.
func MatchSpeech(choices []Choice, transcript string) (label, phrase string, ok bool) {
	t := Normalize(transcript)
	if t == "" {
		return "", "", false
	}
	padded := " " + t + " "
	best := -1
	for _, c := range choices {
		for _, p := range c.Phrases {
			n := Normalize(p)
			if n == "" {
				continue
			}
			if n == t {
				return c.Label, p, true
			}
			if strings.Contains(padded, " "+n+" ") && len(n) > best {
				best, label, phrase, ok = len(n), c.Label, p, true
			}
		}
	}
	return label, phrase, ok
}

// MatchTone finds the choice a key press selects.
func MatchTone(choices []Choice, t dtmf.Tone) (string, bool) {
	for _, c := range choices {
		if c.Tone != nil && *c.Tone == t {
			return c.Label, true
		}
	}
	return "", false
}

// Phrases lists every phrase of the choices, for a recogniser's grammar.
func Phrases(choices []Choice) []string {
	var out []string
	for _, c := range choices {
		out = append(out, c.Phrases...)
	}
	return out
}
