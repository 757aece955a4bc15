package smsctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartKannel runs Kannel's bearerbox (an SMPP transceiver to smsc, as system_id "telgw")
// and smsbox (sendsms user "bench"/"bench") until the test ends and returns the sendsms URL
// and a function returning the tails of their logs.
// extra is appended to the configuration (e.g. an sms-service group). Without Kannel it
// skips, unless CI=true.
func StartKannel(t testing.TB, smsc, extra string) (sendsms string, logs func() string) {
	k := RunKannel(t, KannelOptions{SMSC: smsc, Extra: extra})
	return k.SendSMS, k.Logs
}

// KannelOptions configures RunKannel.
type KannelOptions struct {
	// SMSC is the SMPP SMSC's host:port.
	SMSC string
	// Core is appended to the core group (e.g. a store-type).
	Core string
	// Extra is appended to the configuration (e.g. an sms-service group).
	Extra string
}

// Kannel is a running bearerbox and smsbox.
type Kannel struct {
	// SendSMS is the sendsms URL.
	SendSMS string
	// Logs returns the tails of their logs.
	Logs func() string
	// Pids are bearerbox's and smsbox's process ids.
	Pids []int
}

// RunKannel is StartKannel with options and the processes' ids.
func RunKannel(t testing.TB, o KannelOptions) *Kannel {
	smsc, extra := o.SMSC, o.Extra
	k := &Kannel{}
	for _, b := range []string{"bearerbox", "smsbox"} {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (apt-get install kannel)", b)
			}
			t.Skipf("skipping: %s is not installed (apt-get install kannel)", b)
		}
	}
	dir := t.TempDir()
	admin, box, send := FreeAddr(t), FreeAddr(t), FreeAddr(t)
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	host, smscPort, _ := net.SplitHostPort(smsc)
	conf := fmt.Sprintf(`group = core
admin-port = %s
admin-password = bench
smsbox-port = %s
box-allow-ip = 127.0.0.1
log-level = 3
log-file = %q
%s
group = smsc
smsc = smpp
smsc-id = npm
host = %s
port = %s
transceiver-mode = true
smsc-username = telgw
smsc-password = secret
system-type = kannel
msg-id-type = 0x01
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
`, port(admin), port(box), filepath.Join(dir, "bearerbox.log"), o.Core, host, smscPort, port(box), port(send), filepath.Join(dir, "smsbox.log"))
	conf += extra
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
		k.Pids = append(k.Pids, cmd.Process.Pid)
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
			k.SendSMS = base
			k.Logs = func() string {
				b, _ := os.ReadFile(filepath.Join(dir, "bearerbox.out"))
				s, _ := os.ReadFile(filepath.Join(dir, "smsbox.out"))
				return "bearerbox:\n" + tail(b) + "\nsmsbox:\n" + tail(s)
			}
			return k
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "bearerbox.out"))
			s, _ := os.ReadFile(filepath.Join(dir, "smsbox.out"))
			t.Fatalf("kannel sendsms not up:\n%s\n%s", tail(b), tail(s))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
