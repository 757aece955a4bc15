package e2e

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

// burstSize is the kill -9 burst: TELGW_SMS_BURST (the issue asks for 10,000), default 2,000
// to keep the default test run short.
func burstSize() int {
	if n, err := strconv.Atoi(os.Getenv("TELGW_SMS_BURST")); err == nil && n > 0 {
		return n
	}
	return 2000
}

func recipient(i int) string { return fmt.Sprintf("+1206%07d", i) }

// post sends recipients [from, to) in requests of 100 and records every 202'd recipient.
func post(n *node, from, to int, accepted *sync.Map, count *atomic.Int64) {
	for i := from; i < to; i += 100 {
		var tos []string
		for j := i; j < min(i+100, to); j++ {
			tos = append(tos, recipient(j))
		}
		var res sendResponse
		st, ok := n.TryDo("POST", "/sms?api-version=2021-03-07", sendBody("burst", false, tos...), &res)
		if !ok || st != 202 {
			return // the node died under us
		}
		for _, r := range res.Value {
			if r.Successful {
				accepted.Store(r.To, true)
				count.Add(1)
			}
		}
	}
}

// TestKill9MidBurst kills telgw with SIGKILL in the middle of a burst, restarts it on the same
// store and checks every message that got a 202 reaches the SMSC, with duplicates only for
// messages in flight at the kill.
func TestKill9MidBurst(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			total := burstSize()
			smsc := smsctest.Start(t, peers, nil)
			// One sender number sends the whole burst: the fraud policy's daily cap per number
			// (1000 by default) is lifted, as for an A2P sender.
			o := nodeOpts{SMSC: smsc.Addr(), DataDir: t.TempDir(), Env: []string{"TELGW_POLICY_DEFAULTS_SMS_PER_DAY=0"}}
			if dialect == "postgres" {
				o.DatabaseURL = postgres(t)
			}
			n := startNode(t, o)
			var accepted sync.Map
			var count atomic.Int64
			var wg sync.WaitGroup
			const posters = 4
			per := total / posters
			var posting atomic.Int64
			posting.Store(posters)
			for p := range posters {
				wg.Go(func() {
					defer posting.Add(-1)
					post(n, p*per, (p+1)*per, &accepted, &count)
				})
			}
			// Kill once half the burst is accepted and sending has begun.
			for count.Load() < int64(total/2) || len(smsc.All("submit")) == 0 {
				if posting.Load() == 0 && count.Load() < int64(total/2) {
					t.Fatalf("the posters stopped after %d of %d accepted messages (a request was refused)", count.Load(), total)
				}
				time.Sleep(2 * time.Millisecond)
			}
			n.Kill()
			wg.Wait()
			want := int(count.Load())
			t.Logf("%d of %d messages accepted before the kill; %d submits seen so far", want, total, len(smsc.All("submit")))
			n2 := restartNode(t, o)
			deadline := time.Now().Add(120 * time.Second)
			for {
				got := map[string]int{}
				for _, e := range smsc.All("submit") {
					got["+"+fmt.Sprint(e["to"])]++
				}
				missing := 0
				accepted.Range(func(k, _ any) bool {
					if got[k.(string)] == 0 {
						missing++
					}
					return true
				})
				if missing == 0 {
					dups := 0
					for _, c := range got {
						dups += c - 1
					}
					t.Logf("all %d accepted messages reached the SMSC; %d duplicates", want, dups)
					// In flight at the kill: at most the window (10) of submitted, unrecorded messages.
					if dups > 10 {
						t.Fatalf("%d duplicates, more than the messages in flight at the kill", dups)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d accepted messages never reached the SMSC", missing, want)
				}
				time.Sleep(500 * time.Millisecond)
			}
			_ = n2
		})
	}
}

// TestSMSCOutages: the SMSC is down when telgw starts, and drops the bind mid-burst; messages
// wait, telgw rebinds, all are delivered.
func TestSMSCOutages(t *testing.T) {
	smsc := smsctest.Start(t, peers, nil)
	smsc.Send(map[string]any{"cmd": "stop"})
	smsc.Wait("stopped", nil, 5*time.Second)
	n := startNode(t, nodeOpts{SMSC: smsc.Addr()})
	var accepted sync.Map
	var count atomic.Int64
	post(n, 0, 200, &accepted, &count)
	if count.Load() != 200 {
		t.Fatalf("%d of 200 accepted while the SMSC is down", count.Load())
	}
	time.Sleep(time.Second)
	smsc.Send(map[string]any{"cmd": "start"})
	smsc.Wait("bind", nil, 30*time.Second)
	// Drop the bind while the backlog drains, then send more.
	for len(smsc.All("submit")) < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	smsc.Send(map[string]any{"cmd": "drop"})
	post(n, 200, 400, &accepted, &count)
	waitAll(t, smsc, &accepted, 60*time.Second)
}

func waitAll(t *testing.T, smsc *smsctest.SMSC, accepted *sync.Map, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]bool{}
		for _, e := range smsc.All("submit") {
			got["+"+fmt.Sprint(e["to"])] = true
		}
		missing := 0
		accepted.Range(func(k, _ any) bool {
			if !got[k.(string)] {
				missing++
			}
			return true
		})
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepted messages never reached the SMSC", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebhookReceiverDown: a subscriber down for a while gets every event once back; one that
// answers 410 is disabled.
func TestWebhookReceiverDown(t *testing.T) {
	smsc := smsctest.Start(t, peers, nil)
	rcv, url := newReceiver(t)
	gone, goneURL := newReceiver(t)
	gone.setDown(true, 410)
	n := startNode(t, nodeOpts{SMSC: smsc.Addr(), Webhooks: []string{url, goneURL}})
	smsc.Wait("bind", nil, 10*time.Second)
	rcv.setDown(true, 503)
	for i := range 5 {
		smsc.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14252000100", "message": fmt.Sprintf("while down %d", i)})
	}
	time.Sleep(4 * time.Second)
	rcv.setDown(false, 0)
	for i := range 5 {
		rcv.wait(t, events.TypeSMSReceived, func(d map[string]any) bool { return d["message"] == fmt.Sprintf("while down %d", i) }, 60*time.Second)
	}
	var subs struct {
		Value []events.Subscription `json:"value"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.Do("GET", "/telgw/webhooks", nil, &subs)
		disabled := map[string]bool{}
		for _, s := range subs.Value {
			disabled[s.URL] = s.Disabled
		}
		if disabled[goneURL] && !disabled[url] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions after 410: %+v", subs.Value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestThrottledSMSC: an SMSC answering ESME_RTHROTTLED to every fourth submit still gets every
// message, through the send worker's retries; a refused destination ends failed.
func TestThrottledSMSC(t *testing.T) {
	smsc := smsctest.Start(t, peers, map[string]any{"throttleEvery": 4, "quiet": true})
	n := startNode(t, nodeOpts{SMSC: smsc.Addr()})
	var accepted sync.Map
	var count atomic.Int64
	post(n, 0, 200, &accepted, &count)
	deadline := time.Now().Add(60 * time.Second)
	for {
		smsc.Send(map[string]any{"cmd": "count"})
		ev := smsc.Wait("count", nil, 5*time.Second)
		if int(ev["accepted"].(float64)) >= 200 {
			if ev["submits"].(float64) <= 200 {
				t.Fatalf("no submit was throttled: %v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMSC accepted %v of 200", ev["accepted"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	var msgs struct {
		Value []map[string]any `json:"value"`
	}
	n.Do("GET", "/telgw/sms/messages?status=sent&limit=1000", nil, &msgs)
	if len(msgs.Value) != 200 {
		t.Fatalf("%d messages sent in the log, want 200", len(msgs.Value))
	}
}
