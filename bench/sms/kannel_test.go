package sms

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
)

// kannel runs bearerbox (SMPP transceiver to smsc) and smsbox (sendsms HTTP) and returns the
// sendsms base URL. Without Kannel it skips, unless CI=true.
func kannel(t *testing.T, smsc string) string {
	for _, b := range []string{"bearerbox", "smsbox"} {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (apt-get install kannel)", b)
			}
			t.Skipf("skipping: %s is not installed (apt-get install kannel)", b)
		}
	}
	dir := t.TempDir()
	admin, box, send := smsctest.FreeAddr(t), smsctest.FreeAddr(t), smsctest.FreeAddr(t)
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	host, smscPort, _ := net.SplitHostPort(smsc)
	conf := fmt.Sprintf(`group = core
admin-port = %s
admin-password = bench
smsbox-port = %s
box-allow-ip = 127.0.0.1
log-level = 3
log-file = %q

group = smsc
smsc = smpp
smsc-id = npm
host = %s
port = %s
transceiver-mode = true
smsc-username = telgw
smsc-password = secret
system-type = kannel
max-pending-submits = 50
source-addr-ton = 1
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %s
sendsms-port = %s
log-level = 3
log-file = %q

group = sendsms-user
username = bench
password = bench
max-messages = 10
concatenation = true
`, port(admin), port(box), filepath.Join(dir, "bearerbox.log"), host, smscPort, port(box), port(send), filepath.Join(dir, "smsbox.log"))
	cfg := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"bearerbox", "smsbox"} {
		cmd := exec.Command(b, cfg)
		cmd.Dir = dir
		logf, err := os.Create(filepath.Join(dir, b+".out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if b == "bearerbox" {
			// smsbox gives up at once if bearerbox does not listen yet.
			deadline := time.Now().Add(30 * time.Second)
			for {
				if c, err := net.Dial("tcp", box); err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					o, _ := os.ReadFile(filepath.Join(dir, "bearerbox.out"))
					t.Fatalf("bearerbox did not open its smsbox port:\n%s", tail(o))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	base := "http://" + send + "/cgi-bin/sendsms"
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base); err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "bearerbox.out"))
			s, _ := os.ReadFile(filepath.Join(dir, "smsbox.out"))
			t.Fatalf("kannel sendsms not up:\n%s\n%s", tail(b), tail(s))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runKannel sends n messages through Kannel's sendsms (100 space-separated receivers per
// request, conc requests in parallel) to the npm SMSC and returns messages per second end to
// end.
func runKannel(t *testing.T, n, conc int) float64 {
	smsc := smsctest.Start(t, peers, map[string]any{"quiet": true})
	base := kannel(t, smsc.Addr())
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
				q := url.Values{"username": {"bench"}, "password": {"bench"}, "from": {"14255550100"},
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

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
