package events

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification.
func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	got := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	body := []byte(`[{"id":"1"}]`)
	good := http.Header{}
	SetHeaders(good, "a-secret", "evt-1", now, body)
	tests := []struct {
		name   string
		secret string
		mod    func(h http.Header)
		body   []byte
		at     time.Time
		err    error
	}{
		{"valid", "a-secret", nil, body, now, nil},
		{"several signatures", "a-secret", func(h http.Header) { h.Set(HeaderSignature, "v1,AAAA "+h.Get(HeaderSignature)) }, body, now, nil},
		{"wrong secret", "other", nil, body, now, ErrBadSignature},
		{"tampered body", "a-secret", nil, []byte(`[{"id":"2"}]`), now, ErrBadSignature},
		{"tampered id", "a-secret", func(h http.Header) { h.Set(HeaderID, "evt-2") }, body, now, ErrBadSignature},
		{"old", "a-secret", nil, body, now.Add(10 * time.Minute), ErrBadTimestamp},
		{"missing", "a-secret", func(h http.Header) { h.Del(HeaderSignature) }, body, now, ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := good.Clone()
			if tt.mod != nil {
				tt.mod(h)
			}
			if err := Verify(tt.secret, h, tt.body, tt.at, 5*time.Minute); !errors.Is(err, tt.err) {
				t.Fatalf("Verify = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	ev := Event{EventType: TypeSMSReceived, Numbers: []string{"+14255550100", "+14255550199"}}
	tests := []struct {
		name string
		sub  Subscription
		want bool
	}{
		{"all", Subscription{}, true},
		{"type", Subscription{EventTypes: []string{"microsoft.communication.smsreceived"}}, true},
		{"other type", Subscription{EventTypes: []string{TypeIncomingCall}}, false},
		{"number", Subscription{PhoneNumbers: []string{"+14255550199"}}, true},
		{"other number", Subscription{PhoneNumbers: []string{"+14255550000"}}, false},
		{"disabled", Subscription{Disabled: true}, false},
	}
	for _, tt := range tests {
		if got := tt.sub.Matches(ev); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
