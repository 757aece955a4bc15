package events

import (
	"encoding/json"
	"time"
)

// The webhook path encodes each event twice (the Event Grid event, then the delivery job
// that carries it) and encoding/json revalidates every json.RawMessage it copies: the
// encoders here append what encoding/json would write, copying the raw parts as they are.
// They are used only where those parts are known to be compact JSON (encoded here or by
// encoding/json).

// appendJSON appends ev as json.Marshal does. ok is false when ev's Data was not encoded by
// New (it may then need compacting or be invalid: the caller uses json.Marshal).
func (ev Event) appendJSON(b []byte) (_ []byte, ok bool) {
	if len(ev.Data) == 0 || len(ev.Data) != len(ev.newData) || &ev.Data[0] != &ev.newData[0] ||
		ev.EventTime.Year() < 0 || ev.EventTime.Year() > 9999 {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"topic":`...)
	b = appendString(b, ev.Topic)
	b = append(b, `,"subject":`...)
	b = appendString(b, ev.Subject)
	b = append(b, `,"eventType":`...)
	b = appendString(b, ev.EventType)
	b = append(b, `,"eventTime":`...)
	b = appendTime(b, ev.EventTime)
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	b = append(b, `,"dataVersion":`...)
	b = appendString(b, ev.DataVersion)
	b = append(b, `,"metadataVersion":`...)
	b = appendString(b, ev.MetadataVersion)
	return append(b, '}'), true
}

// MarshalJSON encodes the job's arguments as encoding/json would encode the struct, without
// revalidating the events (compact JSON from Dispatcher.jobs; an empty one is null).
func (a DeliverArgs) MarshalJSON() ([]byte, error) {
	size := 64 + len(a.SubscriptionID) + len(a.EventID) + len(a.Event)
	for _, e := range a.More {
		size += 20 + len(e.ID) + len(e.Event)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"subscriptionId":`...)
	b = appendString(b, a.SubscriptionID)
	b = append(b, `,"eventId":`...)
	b = appendString(b, a.EventID)
	b = append(b, `,"event":`...)
	b = appendRaw(b, a.Event)
	if len(a.More) > 0 {
		b = append(b, `,"more":[`...)
		for i, e := range a.More {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, e.ID)
			b = append(b, `,"event":`...)
			b = appendRaw(b, e.Event)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if !a.ExpiresAt.IsZero() {
		t, err := a.ExpiresAt.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"expiresAt":`...), t...)
	}
	return append(b, '}'), nil
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendTime appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds, quoted);
// the year must be within 0–9999.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string as encoding/json writes it: printable ASCII other
// than the characters it escapes is copied, anything else goes through json.Marshal.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
