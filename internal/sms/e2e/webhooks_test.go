package e2e

import (
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

// TestWebhookOperatorAPI creates, filters, disables and deletes subscriptions through
// /telgw/webhooks.
func TestWebhookOperatorAPI(t *testing.T) {
	smsc := smsctest.Start(t, peers, nil)
	n := startNode(t, nodeOpts{SMSC: smsc.Addr()})
	smsc.Wait("bind", nil, 10*time.Second)
	mine, mineURL := newReceiver(t)
	other, otherURL := newReceiver(t)
	var sub events.Subscription
	if st := n.Do("POST", "/telgw/webhooks", map[string]any{"url": mineURL, "secret": "a-secret", "phoneNumbers": []string{us},
		"eventTypes": []string{events.TypeSMSReceived}}, &sub); st != 201 || sub.ID == "" {
		t.Fatalf("create = %d %+v", st, sub)
	}
	var sub2 events.Subscription
	n.Do("POST", "/telgw/webhooks", map[string]any{"url": otherURL, "secret": "a-secret", "phoneNumbers": []string{"+14252000999"}}, &sub2)
	if st := n.Do("POST", "/telgw/webhooks", map[string]any{"url": "ftp://x"}, nil); st != 400 {
		t.Fatalf("bad url = %d", st)
	}
	smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14252000100", "message": "filtered"})
	mine.wait(t, events.TypeSMSReceived, func(d map[string]any) bool { return d["message"] == "filtered" }, 15*time.Second)
	time.Sleep(500 * time.Millisecond)
	other.mu.Lock()
	got := len(other.events)
	other.mu.Unlock()
	if got != 0 {
		t.Fatalf("a subscription for another number got %d events", got)
	}
	if st := n.Do("DELETE", "/telgw/webhooks/"+sub.ID, nil, nil); st != 204 {
		t.Fatalf("delete = %d", st)
	}
	if st := n.Do("DELETE", "/telgw/webhooks/"+sub.ID, nil, nil); st != 404 {
		t.Fatalf("second delete = %d", st)
	}
	if st := n.Do("POST", "/telgw/webhooks/"+sub2.ID+":enable", nil, nil); st != 204 {
		t.Fatalf("enable = %d", st)
	}
	var list struct {
		Value []events.Subscription `json:"value"`
	}
	n.Do("GET", "/telgw/webhooks", nil, &list)
	if len(list.Value) != 1 || list.Value[0].ID != sub2.ID || list.Value[0].Secret != "" {
		t.Fatalf("list %+v", list.Value)
	}
}
