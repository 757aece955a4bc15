package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

// TestOptOutWhileQueued: a message accepted (202) while the SMSC link is down, whose recipient
// then opts out, is never submitted once the link comes up: it ends failed with the opted-out
// delivery report Send gives an opted-out recipient, while the other recipient's message goes
// out.
func TestOptOutWhileQueued(t *testing.T) {
	const other = "+14255550188"
	smsc := smsctest.Start(t, peers, nil)
	smsc.Send(map[string]any{"cmd": "stop"})
	smsc.Wait("stopped", nil, 5*time.Second)
	rcv, url := newReceiver(t)
	n := startNode(t, nodeOpts{SMSC: smsc.Addr(), Webhooks: []string{url}})

	var res sendResponse
	if st := n.Do("POST", "/sms?api-version=2021-03-07", sendBody("offer", true, them, other), &res); st != 202 ||
		len(res.Value) != 2 || !res.Value[0].Successful || !res.Value[1].Successful {
		t.Fatalf("POST /sms = %d %+v", st, res.Value)
	}
	if st := n.Do("POST", "/sms/optouts:add?api-version=2026-01-23",
		map[string]any{"from": us, "recipients": []map[string]any{{"to": them}}}, nil); st != 200 {
		t.Fatalf("optouts:add = %d", st)
	}
	smsc.Send(map[string]any{"cmd": "start"})
	smsc.Wait("bind", nil, 30*time.Second)

	smsc.Wait("submit", func(e map[string]any) bool { return e["to"] == strings.TrimPrefix(other, "+") }, 30*time.Second)
	d := rcv.wait(t, events.TypeSMSDeliveryReportReceived, func(d map[string]any) bool { return d["messageId"] == res.Value[0].MessageID }, 30*time.Second)
	if d["deliveryStatus"] != "Failed" || !strings.Contains(fmt.Sprint(d["deliveryStatusDetails"]), "opted out") {
		t.Fatalf("delivery report of the opted-out recipient's message: %v", d)
	}
	var msg map[string]any
	if st := n.Do("GET", "/telgw/sms/messages/"+res.Value[0].MessageID, nil, &msg); st != 200 || msg["status"] != "failed" {
		t.Fatalf("message log = %d %v", st, msg)
	}
	time.Sleep(300 * time.Millisecond)
	for _, e := range smsc.All("submit") {
		if e["to"] == strings.TrimPrefix(them, "+") {
			t.Fatalf("the opted-out recipient's message reached the SMSC: %v", e)
		}
	}
}
