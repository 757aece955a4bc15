package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestEncodersMatchEncodingJSON: the webhook path's encoders write what encoding/json writes,
// escapes and all, and an event whose Data was replaced after New goes back to json.Marshal.
func TestEncodersMatchEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 15, 4, 5, 123456789, time.UTC)
	for _, s := range []string{"plain", `quote " and \ back`, "<html> & co", "tab\there\nnewline", "é ünïcode \u2028", "\xff bad utf-8", ""} {
		ev, err := New("id-"+s, "/topic/"+s, s, TypeSMSReceived, at, SMSReceivedData{MessageID: s, Message: s, ReceivedTimestamp: at})
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ev.appendJSON(nil)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("event %q:\n got %s (%v)\nwant %s", s, got, ok, want)
		}
		type plain DeliverArgs // no MarshalJSON
		for _, a := range []DeliverArgs{
			{SubscriptionID: "sub-" + s, EventID: ev.ID, Event: want},
			{SubscriptionID: s, EventID: s, Event: want, More: []QueuedEvent{{ID: s, Event: want}, {ID: "2", Event: json.RawMessage(`{"a":1}`)}}},
			{SubscriptionID: s, EventID: s, Event: want, ExpiresAt: at},
			{},
		} {
			got, err := json.Marshal(a) // through MarshalJSON, then compacted
			if err != nil {
				t.Fatal(err)
			}
			direct, _ := a.MarshalJSON()
			want, _ := json.Marshal(plain(a))
			if !bytes.Equal(got, want) || !bytes.Equal(direct, want) {
				t.Errorf("args:\n got %s\ndirect %s\nwant %s", got, direct, want)
			}
		}
	}
	ev, _ := New("x", "/t", "s", TypeSMSReceived, at, map[string]int{"a": 1})
	ev.Data = json.RawMessage(`{ "a" : 2 }`)
	if _, ok := ev.appendJSON(nil); ok {
		t.Error("appendJSON copied Data set after New")
	}
}
