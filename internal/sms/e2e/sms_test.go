package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

const (
	us   = "+14252000100"
	them = "+14255550199"
)

type sendItem struct {
	To                  string `json:"to"`
	MessageID           string `json:"messageId"`
	HTTPStatusCode      int    `json:"httpStatusCode"`
	Successful          bool   `json:"successful"`
	RepeatabilityResult string `json:"repeatabilityResult"`
	ErrorMessage        string `json:"errorMessage"`
}

type sendResponse struct {
	Value []sendItem `json:"value"`
}

func sendBody(msg string, report bool, tos ...string) map[string]any {
	var rc []map[string]any
	for _, to := range tos {
		rc = append(rc, map[string]any{"to": to})
	}
	return map[string]any{"from": us, "smsRecipients": rc, "message": msg,
		"smsSendOptions": map[string]any{"enableDeliveryReport": report, "tag": "t1"}}
}

func TestSMSGateway(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			db := ""
			if dialect == "postgres" {
				db = postgres(t)
			}
			smsc := smsctest.Start(t, peers, map[string]any{"rejectDest": []string{"14255550666"}})
			rcv, url := newReceiver(t)
			dataDir := t.TempDir()
			n := startNode(t, nodeOpts{SMSC: smsc.Addr(), DatabaseURL: db, Webhooks: []string{url}, DataDir: dataDir})
			smsc.Wait("bind", nil, 10*time.Second)

			// Send to a valid, an invalid and a refused recipient.
			var res sendResponse
			if st := n.Do("POST", "/sms?api-version=2021-03-07", sendBody("Hello €", true, them, "12345", "+14255550666"), &res); st != 202 {
				t.Fatalf("POST /sms = %d %+v", st, res)
			}
			if len(res.Value) != 3 || !res.Value[0].Successful || res.Value[0].HTTPStatusCode != 202 || res.Value[0].MessageID == "" ||
				res.Value[1].Successful || res.Value[1].HTTPStatusCode != 400 || !res.Value[2].Successful {
				t.Fatalf("per-recipient results %+v", res.Value)
			}
			id := res.Value[0].MessageID
			ev := smsc.Wait("submit", func(e map[string]any) bool { return e["to"] == "14255550199" }, 10*time.Second)
			if ev["message"] != "Hello €" || ev["registeredDelivery"] != 1.0 || ev["srcTon"] != 1.0 {
				t.Fatalf("SMSC got %v", ev)
			}
			d := rcv.wait(t, events.TypeSMSDeliveryReportReceived, func(d map[string]any) bool { return d["messageId"] == id }, 15*time.Second)
			if d["deliveryStatus"] != "Delivered" || d["tag"] != "t1" || d["from"] != us || d["to"] != them {
				t.Fatalf("delivery report event %v", d)
			}
			failed := rcv.wait(t, events.TypeSMSDeliveryReportReceived, func(d map[string]any) bool { return d["messageId"] == res.Value[2].MessageID }, 15*time.Second)
			if failed["deliveryStatus"] != "Failed" {
				t.Fatalf("refused recipient report %v", failed)
			}
			var rep map[string]any
			if st := n.Do("GET", "/deliveryReports/"+id+"?api-version=2026-01-23", nil, &rep); st != 200 || rep["deliveryStatus"] != "Delivered" {
				t.Fatalf("GET deliveryReports = %d %v", st, rep)
			}
			var msg map[string]any
			if st := n.Do("GET", "/telgw/sms/messages/"+id, nil, &msg); st != 200 || msg["status"] != "delivered" || msg["segmentsSucceeded"] != 1.0 {
				t.Fatalf("message log = %d %v", st, msg)
			}

			// Repeatability: the retry answers "rejected" with the first id and sends nothing.
			rid := uuid.NewString()
			body := map[string]any{"from": us, "message": "once", "smsRecipients": []map[string]any{
				{"to": them, "repeatabilityRequestId": rid, "repeatabilityFirstSent": time.Now().UTC().Format(time.RFC1123)}}}
			var r1, r2 sendResponse
			n.Do("POST", "/sms?api-version=2026-01-23", body, &r1)
			n.Do("POST", "/sms?api-version=2026-01-23", body, &r2)
			if r1.Value[0].RepeatabilityResult != "accepted" || r2.Value[0].RepeatabilityResult != "rejected" || r1.Value[0].MessageID != r2.Value[0].MessageID {
				t.Fatalf("repeatability %+v then %+v", r1.Value, r2.Value)
			}
			smsc.Wait("submit", func(e map[string]any) bool { return e["message"] == "once" }, 10*time.Second)
			time.Sleep(300 * time.Millisecond)
			if n := countSubmits(smsc, "once"); n != 1 {
				t.Fatalf("repeatable message submitted %d times", n)
			}

			// Inbound STOP: SMSReceived, one confirmation, then sends to them fail as opted out.
			smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14252000100", "message": "Stop"})
			in := rcv.wait(t, events.TypeSMSReceived, func(d map[string]any) bool { return d["message"] == "Stop" }, 10*time.Second)
			if in["from"] != them || in["to"] != us || in["segmentCount"] != 1.0 {
				t.Fatalf("SMSReceived %v", in)
			}
			smsc.Wait("submit", func(e map[string]any) bool {
				return e["to"] == "14255550199" && strings.Contains(fmt.Sprint(e["message"]), "unsubscribed")
			}, 10*time.Second)
			var chk map[string][]map[string]any
			n.Do("POST", "/sms/optouts:check?api-version=2026-01-23", map[string]any{"from": us, "recipients": []map[string]any{{"to": them}}}, &chk)
			if chk["value"][0]["isOptedOut"] != true {
				t.Fatalf("optouts:check %v", chk)
			}
			var res2 sendResponse
			n.Do("POST", "/sms?api-version=2021-03-07", sendBody("blocked", true, them), &res2)
			blocked := rcv.wait(t, events.TypeSMSDeliveryReportReceived, func(d map[string]any) bool { return d["messageId"] == res2.Value[0].MessageID }, 10*time.Second)
			if blocked["deliveryStatus"] != "Failed" || !strings.Contains(fmt.Sprint(blocked["deliveryStatusDetails"]), "opted out") {
				t.Fatalf("opted-out send %v", blocked)
			}
			// START opts back in (via the API remove here).
			n.Do("POST", "/sms/optouts:remove?api-version=2026-01-23", map[string]any{"from": us, "recipients": []map[string]any{{"to": them}}}, nil)
			n.Do("POST", "/sms/optouts:check?api-version=2026-01-23", map[string]any{"from": us, "recipients": []map[string]any{{"to": them}}}, &chk)
			if chk["value"][0]["isOptedOut"] != false {
				t.Fatalf("after remove %v", chk)
			}

			// Multipart inbound (UDH) reaches the app reassembled.
			smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14252000100", "udh": "0500030a0202", "message": "world"})
			smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14252000100", "udh": "0500030a0201", "message": "hello "})
			if d := rcv.wait(t, events.TypeSMSReceived, func(d map[string]any) bool { return d["message"] == "hello world" }, 10*time.Second); d["segmentCount"] != 2.0 {
				t.Fatalf("reassembled %v", d)
			}
			rcv.mu.Lock()
			bad := rcv.bad
			rcv.mu.Unlock()
			if bad != 0 {
				t.Fatalf("%d deliveries with bad signatures", bad)
			}

			// A long message with a report: every part's receipt counts.
			long := strings.Repeat("Lorem ipsum dolor sit amet. ", 8)
			var res3 sendResponse
			n.Do("POST", "/sms?api-version=2021-03-07", sendBody(long, true, them), &res3)
			lr := rcv.wait(t, events.TypeSMSDeliveryReportReceived, func(d map[string]any) bool { return d["messageId"] == res3.Value[0].MessageID }, 15*time.Second)
			att := lr["deliveryAttempts"].([]any)[0].(map[string]any)
			if lr["deliveryStatus"] != "Delivered" || att["segmentsSucceeded"] != 2.0 || att["segmentsFailed"] != 0.0 {
				t.Fatalf("multipart report %v", lr)
			}

			// Metrics show the traffic.
			resp, err := http.Get(n.Endpoint + "metrics")
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{`telgw_sms_messages_total{event="delivered"}`, `telgw_smpp_submits_total{carrier="smsc1",result="ok"}`,
				`telgw_smpp_bound_links{carrier="smsc1"} 1`, `telgw_webhook_deliveries_total{result="ok"}`, `telgw_sms_inbound_total{keyword="optout"} 1`} {
				if !strings.Contains(string(mb), want) {
					t.Errorf("metrics lack %s", want)
				}
			}

			// The operator CLI reads the same log.
			cmd := exec.Command(telgwBin, "messages", "-to", them, "-status", "delivered")
			cmd.Env = append(os.Environ(), "TELGW_DATA_DIR="+dataDir, "TELGW_DATABASE_URL="+db)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), id) || !strings.Contains(string(out), res3.Value[0].MessageID) {
				t.Fatalf("telgw messages: %v\n%s", err, out)
			}
		})
	}
}

func countSubmits(s *smsctest.SMSC, text string) int {
	n := 0
	for _, e := range s.All("submit") {
		if e["message"] == text {
			n++
		}
	}
	return n
}

func TestBadInput(t *testing.T) {
	smsc := smsctest.Start(t, peers, nil)
	n := startNode(t, nodeOpts{SMSC: smsc.Addr()})
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("+1425555%04d", i)
	}
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		target string
	}{
		{"no api-version", "/sms", sendBody("x", false, them), 400, "api-version"},
		{"101 recipients", "/sms?api-version=2021-03-07", sendBody("x", false, many...), 400, "smsRecipients"},
		{"no recipients", "/sms?api-version=2021-03-07", sendBody("x", false), 400, "smsRecipients"},
		{"empty message", "/sms?api-version=2021-03-07", sendBody("", false, them), 400, "message"},
		{"over-long message", "/sms?api-version=2021-03-07", sendBody(strings.Repeat("x", 2049), false, them), 400, "message"},
		{"bad from", "/sms?api-version=2021-03-07", map[string]any{"from": "telgw", "message": "x", "smsRecipients": []map[string]any{{"to": them}}}, 400, "from"},
		{"unowned from", "/sms?api-version=2021-03-07", map[string]any{"from": "+14255550123", "message": "x", "smsRecipients": []map[string]any{{"to": them}}}, 400, "from"},
		{"missing from", "/sms?api-version=2021-03-07", map[string]any{"message": "x", "smsRecipients": []map[string]any{{"to": them}}}, 400, "from"},
		{"wrong type", "/sms?api-version=2021-03-07", map[string]any{"from": us, "message": 5, "smsRecipients": []map[string]any{{"to": them}}}, 400, "message"},
		{"bad report timeout", "/sms?api-version=2026-01-23", map[string]any{"from": us, "message": "x", "smsRecipients": []map[string]any{{"to": them}},
			"smsSendOptions": map[string]any{"enableDeliveryReport": true, "deliveryReportTimeoutInSeconds": 5}}, 400, "smsSendOptions.deliveryReportTimeoutInSeconds"},
		{"unknown report", "/deliveryReports/nope?api-version=2026-01-23", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e struct {
				Error struct{ Code, Message, Target string } `json:"error"`
			}
			method := "POST"
			if tt.body == nil {
				method = "GET"
			}
			st := n.Do(method, tt.path, tt.body, &e)
			if st != tt.status || e.Error.Message == "" || (tt.target != "" && e.Error.Target != tt.target) {
				t.Fatalf("%s = %d %+v, want %d target %q", tt.path, st, e, tt.status, tt.target)
			}
		})
	}
}
