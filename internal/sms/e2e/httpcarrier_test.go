package e2e

import (
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
)

// TestHTTPCarrierThroughKannel configures an HTTP carrier whose submit URL is Kannel's
// sendsms (Kannel relays over SMPP to the npm SMSC); a number bought with carrier "kannel"
// sends through it, and the SMSC's receipt comes back as a Kannel DLR callback into telgw.
func TestHTTPCarrierThroughKannel(t *testing.T) {
	smsc := smsctest.Start(t, peers, map[string]any{"receipt": "text"})
	sendsms, logs := smsctest.StartKannel(t, smsc.Addr(), "")
	defer func() {
		if t.Failed() {
			t.Logf("kannel:\n%s", logs())
		}
	}()
	extra := `    - name: kannel
      http:
        url: "` + sendsms + `?username=bench&password=bench&from={fromDigits}&to={toDigits}&text={text}&dlr-mask={dlrMask}&dlr-url={dlrUrl}"
        callbackToken: kannel-token
`
	n := startNode(t, nodeOpts{SMSC: smsc.Addr(), ExtraCarriers: extra})
	const viaKannel = "+14252000101"
	n.PurchaseNumber(viaKannel, "kannel")
	var res sendResponse
	body := sendBody("through Kannel", true, them)
	body["from"] = viaKannel
	if st := n.Do("POST", "/sms?api-version=2021-03-07", body, &res); st != 202 || !res.Value[0].Successful {
		t.Fatalf("POST /sms = %d %+v", st, res)
	}
	ev := smsc.Wait("submit", func(e map[string]any) bool { return e["message"] == "through Kannel" }, 30*time.Second)
	if ev["from"] != "14252000101" || ev["to"] != "14255550199" {
		t.Fatalf("SMSC got %v", ev)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rep map[string]any
		st := n.Do("GET", "/deliveryReports/"+res.Value[0].MessageID+"?api-version=2026-01-23", nil, &rep)
		if st == 200 {
			if rep["deliveryStatus"] != "Delivered" {
				t.Fatalf("report %v", rep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery report via Kannel's DLR callback (last %d %v)", st, rep)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var msg map[string]any
	n.Do("GET", "/telgw/sms/messages/"+res.Value[0].MessageID, nil, &msg)
	if msg["carrier"] != "kannel" || msg["status"] != "delivered" {
		t.Fatalf("message log %v", msg)
	}
}
