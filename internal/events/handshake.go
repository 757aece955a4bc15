package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/problem"
)

// TypeSubscriptionValidation is the event Event Grid sends a new webhook endpoint to prove
// that it wants the events (Event Grid "Webhook event delivery": endpoint validation).
const TypeSubscriptionValidation = "Microsoft.EventGrid.SubscriptionValidationEvent"

// SubscriptionValidationData is SubscriptionValidationEventData. ValidationURL is Event
// Grid's manual-validation link; telgw supports only the synchronous handshake and leaves
// it empty.
type SubscriptionValidationData struct {
	ValidationCode string `json:"validationCode"`
	ValidationURL  string `json:"validationUrl,omitempty"`
}

// SubscriptionValidationResponse is what the endpoint answers (200, JSON).
type SubscriptionValidationResponse struct {
	ValidationResponse string `json:"validationResponse"`
}

// validateEndpoint runs Event Grid's validation handshake with s.URL before s is created: a
// POST of a one-element array holding a SubscriptionValidationEvent (header aeg-event-type:
// SubscriptionValidation, signed with s.Secret like every delivery), which the endpoint must
// answer 2xx with {"validationResponse": validationCode}. So an ACS app's existing Event
// Grid endpoint works unchanged, and a URL that is nobody's endpoint (a typo, someone else's
// service) never receives events. Subscriptions from configuration skip it (SyncConfig):
// the operator vouches for them, and start-up must not depend on a subscriber being up.
func (d *Dispatcher) validateEndpoint(ctx context.Context, s Subscription) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	code := hex.EncodeToString(b[:])
	id := uuid.NewString()
	ev, err := New(id, "/telgw", "", TypeSubscriptionValidation, time.Now(), SubscriptionValidationData{ValidationCode: code})
	if err != nil {
		return err
	}
	ev.DataVersion = "2" // as Event Grid sends it
	body, err := json.Marshal([]Event{ev})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return problem.Invalid("url", "%q is not a valid URL", s.URL)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("aeg-event-type", "SubscriptionValidation")
	req.Header.Set("User-Agent", "telgw-webhooks")
	SetHeaders(req.Header, s.Secret, id, time.Now(), body)
	fail := func(format string, args ...any) error {
		return problem.Invalid("url", "%s did not answer the Event Grid subscription validation handshake (%s): %s",
			s.URL, TypeSubscriptionValidation, fmt.Sprintf(format, args...))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("it answered %s; it must answer 200 with {\"validationResponse\": validationCode}", resp.Status)
	}
	var got SubscriptionValidationResponse
	if err := json.Unmarshal(raw, &got); err != nil || got.ValidationResponse != code {
		return fail("its answer does not echo the validationCode as {\"validationResponse\": ...}")
	}
	return nil
}

// AnswerValidation answers Event Grid's validation handshake when body (a delivery's JSON
// array) is a SubscriptionValidationEvent, writing {"validationResponse": code}, and reports
// whether it did. For Go subscribers and telgw's own tests: call it first in the handler.
func AnswerValidation(w http.ResponseWriter, body []byte) bool {
	var evs []Event
	if err := json.Unmarshal(body, &evs); err != nil || len(evs) != 1 || evs[0].EventType != TypeSubscriptionValidation {
		return false
	}
	var d SubscriptionValidationData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(SubscriptionValidationResponse{ValidationResponse: d.ValidationCode})
	return true
}
