package sms

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
)

// runKannel sends n messages through Kannel's sendsms (100 space-separated receivers per
// request, conc requests in parallel) to the npm SMSC and returns messages per second end to
// end.
func runKannel(t *testing.T, n, conc int) float64 {
	smsc := smsctest.Start(t, peers, map[string]any{"quiet": true})
	base, _ := smsctest.StartKannel(t, smsc.Addr(), "")
	smsc.Wait("bind", nil, 30*time.Second)
	reqs := make(chan int, n/100+1)
	for i := 0; i < n; i += 100 {
		reqs <- i
	}
	close(reqs)
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range reqs {
				var to []string
				for j := i; j < min(i+100, n); j++ {
					to = append(to, fmt.Sprintf("1206%07d", j))
				}
				q := url.Values{"username": {"bench"}, "password": {"bench"}, "from": {"14252000100"},
					"to": {strings.Join(to, " ")}, "text": {"bench"}}
				resp, err := client.Get(base + "?" + q.Encode())
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					t.Errorf("sendsms = %s", resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	end := waitCount(t, smsc, n, 10*time.Minute)
	return float64(n) / end.Sub(start).Seconds()
}
