package sms

import "testing"

func TestClassifyKeyword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Keyword
	}{
		{"STOP", KeywordOptOut}, {"stop", KeywordOptOut}, {" Stop. ", KeywordOptOut}, {"STOPALL", KeywordOptOut},
		{"unsubscribe", KeywordOptOut}, {"Cancel", KeywordOptOut}, {"END", KeywordOptOut}, {"quit!", KeywordOptOut},
		{"START", KeywordOptIn}, {"yes", KeywordOptIn}, {"Unstop", KeywordOptIn},
		{"HELP", KeywordHelp}, {"info?", KeywordHelp},
		{"please stop", KeywordNone}, {"STOP IT", KeywordNone}, {"", KeywordNone}, {"stopp", KeywordNone},
		{"ＳＴＯＰ", KeywordNone}, {"hello", KeywordNone},
	}
	for _, tt := range tests {
		if got := ClassifyKeyword(tt.in); got != tt.want {
			t.Errorf("ClassifyKeyword(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
