package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

// moPart is one part of a concatenated mobile originated message: an 8-bit reference UDH
// (TS 23.040 §9.2.3.24.1) before GSM-7 text, from them to us.
func moPart(ref, total, seq int, text string) map[string]any {
	return map[string]any{"cmd": "mo", "from": them[1:], "to": us[1:], "udh": fmt.Sprintf("050003%02x%02x%02x", ref, total, seq), "message": text}
}

// ackedOK waits for the SMSC to get the next deliver_sm_resp and checks it is ESME_ROK.
func ackedOK(t *testing.T, smsc *smsctest.SMSC) {
	t.Helper()
	if ev := smsc.Wait("deliver_sm_resp", nil, 10*time.Second); ev["status"] != 0.0 {
		t.Fatalf("deliver_sm_resp %v", ev)
	}
}

// received lists the texts of the SMSReceived events the receiver got from them.
func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if ev.EventType != events.TypeSMSReceived {
			continue
		}
		var d map[string]any
		_ = json.Unmarshal(ev.Data, &d)
		if d["from"] == them {
			out = append(out, fmt.Sprint(d["message"]))
		}
	}
	return out
}

// exactlyOnce waits for the whole message and checks, after a grace period for duplicates or
// stray partial messages, that it is the only SMSReceived event.
func exactlyOnce(t *testing.T, rcv *receiver, text string, segments int) {
	t.Helper()
	d := rcv.wait(t, events.TypeSMSReceived, func(d map[string]any) bool { return d["message"] == text }, 30*time.Second)
	if d["segmentCount"] != float64(segments) {
		t.Fatalf("SMSReceived %v, want %d segments", d, segments)
	}
	time.Sleep(2 * time.Second)
	if got := rcv.received(); len(got) != 1 {
		t.Fatalf("SMSReceived messages %q, want only %q", got, text)
	}
}

// TestKill9BetweenParts: part 1 of a 3-part message is acknowledged to the SMSC, telgw is
// killed with SIGKILL, restarted on the same store, and gets parts 2 and 3: the app's webhook
// gets the whole message once. The SMSC never resends an acknowledged part, so part 1 must
// have been durable before its deliver_sm_resp.
func TestKill9BetweenParts(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			smsc := smsctest.Start(t, peers, nil)
			rcv, url := newReceiver(t)
			o := nodeOpts{SMSC: smsc.Addr(), DataDir: t.TempDir(), Webhooks: []string{url}}
			if dialect == "postgres" {
				o.DatabaseURL = postgres(t)
			}
			n := startNode(t, o)
			smsc.Wait("bind", nil, 10*time.Second)
			smsc.Send(moPart(0x5a, 3, 1, "Parts survive "))
			ackedOK(t, smsc)
			n.Kill()
			restartNode(t, o)
			smsc.Wait("bind", nil, 30*time.Second)
			smsc.Send(moPart(0x5a, 3, 3, "kill -9."))
			smsc.Send(moPart(0x5a, 3, 2, "a SIGKILL, even "))
			ackedOK(t, smsc)
			ackedOK(t, smsc)
			exactlyOnce(t, rcv, "Parts survive a SIGKILL, even kill -9.", 3)
		})
	}
}

// TestPartsOnTwoNodes: two telgw nodes share one PostgreSQL and the carrier's two binds
// (smpp.binds: 2 for the cluster, one on each node); the parts of one message arrive on binds
// of both nodes and the app gets the whole message once.
func TestPartsOnTwoNodes(t *testing.T) {
	db := postgres(t)
	smsc := smsctest.Start(t, peers, nil)
	rcv, url := newReceiver(t)
	a := startNode(t, nodeOpts{SMSC: smsc.Addr(), DatabaseURL: db, Webhooks: []string{url}, Links: 2})
	b := restartNode(t, nodeOpts{SMSC: smsc.Addr(), DatabaseURL: db, Webhooks: []string{url}, Links: 2})
	// Wait until each node holds one of the two binds (the first may have taken both and
	// hands one over) and the SMSC has exactly two.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v struct {
			Value []struct {
				Leases []struct{ Name string } `json:"leases"`
			}
		}
		a.Do("GET", "/telgw/nodes", nil, &v)
		spread := len(v.Value) == 2
		for _, n := range v.Value {
			spread = spread && len(n.Leases) == 1
		}
		bound := -1.0
		for _, e := range smsc.Events() {
			if n, ok := e["boundNow"].(float64); ok {
				bound = n
			}
		}
		if spread && bound == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("binds not one per node: %+v, SMSC bound %v", v.Value, bound)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = b
	on := func(session int, m map[string]any) map[string]any { m["session"] = session; return m }
	smsc.Send(on(0, moPart(0x3c, 4, 2, "from two ")))
	ackedOK(t, smsc)
	smsc.Send(on(1, moPart(0x3c, 4, 1, "Joined ")))
	ackedOK(t, smsc)
	// The last two parts at once, one on each node.
	smsc.Send(on(0, moPart(0x3c, 4, 4, "exactly once.")))
	smsc.Send(on(1, moPart(0x3c, 4, 3, "nodes, ")))
	ackedOK(t, smsc)
	ackedOK(t, smsc)
	exactlyOnce(t, rcv, "Joined from two nodes, exactly once.", 4)
}
