package sms

import (
	"strings"
	"unicode"
)

// Keyword classifies an inbound message for opt-out handling (the CTIA / US carrier keyword
// set).
type Keyword int

// The keyword classes.
const (
	// KeywordNone is an ordinary message.
	KeywordNone Keyword = iota
	// KeywordOptOut (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) opts the sender out of
	// messages from the number it wrote to.
	KeywordOptOut
	// KeywordOptIn (START, YES, UNSTOP) reverses an opt-out.
	KeywordOptIn
	// KeywordHelp (HELP, INFO) asks for the configured help reply.
	KeywordHelp
)

var keywords = map[string]Keyword{
	"STOP": KeywordOptOut, "STOPALL": KeywordOptOut, "UNSUBSCRIBE": KeywordOptOut,
	"CANCEL": KeywordOptOut, "END": KeywordOptOut, "QUIT": KeywordOptOut,
	"START": KeywordOptIn, "YES": KeywordOptIn, "UNSTOP": KeywordOptIn,
	"HELP": KeywordHelp, "INFO": KeywordHelp,
}

// String names the class.
func (k Keyword) String() string {
	switch k {
	case KeywordOptOut:
		return "optout"
	case KeywordOptIn:
		return "optin"
	case KeywordHelp:
		return "help"
	}
	return "none"
}

// ClassifyKeyword reports whether text is one of the opt-out, opt-in or help keywords. The
// whole message must be the keyword, in any case, with surrounding spaces and punctuation
// ignored ("Stop.", " stop! "); "please stop texting" is an ordinary message.
func ClassifyKeyword(text string) Keyword {
	t := strings.TrimFunc(text, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) })
	if len(t) > 11 {
		return KeywordNone
	}
	return keywords[strings.ToUpper(t)]
}
