package e2e

import (
	"net/http"
	"testing"
)

// TestConsoleCanBeTurnedOff: console.enabled=false leaves /console/ unserved; by default its
// sign-in page answers.
func TestConsoleCanBeTurnedOff(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		env  []string
		want func(int) bool
	}{
		{nil, func(c int) bool { return c == http.StatusOK || c/100 == 3 }},
		{[]string{"TELGW_CONSOLE_ENABLED=false"}, func(c int) bool { return c == http.StatusNotFound }},
	} {
		tg := StartTelgw(t, Options{Env: tc.env})
		resp, err := noRedirect.Get(tg.Endpoint + "console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !tc.want(resp.StatusCode) {
			t.Errorf("env %v: /console/ answered %d", tc.env, resp.StatusCode)
		}
	}
}
