package events

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// TestCreateRunsValidationHandshake: Create posts Event Grid's SubscriptionValidationEvent
// (signed, aeg-event-type SubscriptionValidation) and stores the subscription only when the
// endpoint echoes the code; otherwise it is refused with a 400 naming url and nothing is
// stored.
func TestCreateRunsValidationHandshake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var seen struct {
		header http.Header
		events []Event
	}
	answering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen.header = r.Header.Clone()
		_ = json.Unmarshal(body, &seen.events)
		if err := Verify("s3cret", r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("handshake not signed: %v", err)
		}
		if !AnswerValidation(w, body) {
			t.Errorf("AnswerValidation did not recognise %s", body)
		}
	}))
	t.Cleanup(answering.Close)
	silent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(silent.Close)
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"validationResponse":"not-the-code"}`))
	}))
	t.Cleanup(wrong.Close)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(refusing.Close)
	down := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	down.Close()

	st := &memStore{}
	d := NewDispatcher(Config{Store: st, Guard: &Guard{AllowPrivate: true}})
	s, err := d.Create(ctx, Subscription{URL: answering.URL + "/hook", Secret: "s3cret"})
	if err != nil {
		t.Fatalf("create with an answering endpoint: %v", err)
	}
	if got := seen.header.Get("aeg-event-type"); got != "SubscriptionValidation" {
		t.Errorf("aeg-event-type %q", got)
	}
	if len(seen.events) != 1 || seen.events[0].EventType != TypeSubscriptionValidation || seen.events[0].DataVersion != "2" {
		t.Fatalf("handshake events %+v", seen.events)
	}
	var data SubscriptionValidationData
	if err := json.Unmarshal(seen.events[0].Data, &data); err != nil || len(data.ValidationCode) < 16 {
		t.Fatalf("validation data %s: %v", seen.events[0].Data, err)
	}
	if _, err := st.SubscriptionGet(ctx, s.ID); err != nil {
		t.Fatalf("created subscription not stored: %v", err)
	}

	for name, u := range map[string]string{"silent": silent.URL, "wrong code": wrong.URL, "403": refusing.URL, "down": down.URL} {
		_, err := d.Create(ctx, Subscription{URL: u})
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Kind != problem.KindInvalid || pe.Target != "url" {
			t.Errorf("%s endpoint: Create = %v, want invalid url", name, err)
		}
	}
	if subs, _ := st.SubscriptionList(ctx); len(subs) != 1 {
		t.Fatalf("%d subscriptions stored, want only the validated one", len(subs))
	}
}

// TestAnswerValidationIgnoresEvents: an ordinary delivery is left to the handler.
func TestAnswerValidationIgnoresEvents(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if AnswerValidation(rec, []byte(`[{"id":"1","eventType":"Microsoft.Communication.SMSReceived","data":{}}]`)) || rec.Body.Len() != 0 {
		t.Fatal("answered an SMSReceived delivery")
	}
	if AnswerValidation(rec, []byte(`not json`)) {
		t.Fatal("answered garbage")
	}
}
