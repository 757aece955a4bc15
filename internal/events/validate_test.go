package events

import (
	"strings"
	"testing"
)

func TestSubscriptionValidate(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://example.com/hook":         true,
		"http://nonexistent.invalid:8080/": true, // no DNS: the Guard resolves when it stores and dials
		"http://10.0.0.1/":                 true, // internal addresses are the Guard's call
		"ftp://example.com/":               false,
		"https://":                         false,
		"example.com/hook":                 false,
		"https://user:pw@example.com/":     false,
		"":                                 false,
	} {
		s := Subscription{URL: url}
		err := s.Validate()
		if ok != (err == nil) {
			t.Errorf("%q: ok %v, err %v", url, ok, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "url:") {
			t.Errorf("%q: error does not name url: %v", url, err)
		}
		if s.URL != url {
			t.Errorf("%q: Validate changed the subscription", url)
		}
	}
}
