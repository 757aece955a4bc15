package e2e

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/api"
)

// BenchmarkIssueAccessToken measures end-to-end issueAccessToken over HTTP with HMAC signing
// against a real `telgw serve` on each store; the tokens/s metric is the figure to report (the
// client shares the machine's two cores with the server).
func BenchmarkIssueAccessToken(b *testing.B) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		b.Run(name, func(b *testing.B) { benchIssue(b, pg) })
	}
}

func benchIssue(b *testing.B, pg bool) {
	tg := StartTelgw(b, Options{Postgres: pg})
	c := NewClient(b, tg.ConnString)
	r := c.Do(b, "POST", "/identities?api-version=2023-10-01", nil)
	var created struct {
		Identity struct{ ID string } `json:"identity"`
	}
	r.JSON(b, &created)
	path := "identities/" + created.Identity.ID + "/:issueAccessToken?api-version=2023-10-01"
	body := []byte(`{"scopes":["voip"],"expiresInMinutes":60}`)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			req, _ := http.NewRequest("POST", c.Base.String()+path, bytes.NewReader(body))
			api.Sign(c.Key, "POST", req.URL.RequestURI(), req.URL.Host, body, time.Now(), req.Header)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
