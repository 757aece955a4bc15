package sip_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/telgw/telgw/internal/sip"
)

// End-to-end calls with baresip (Debian package baresip), a real user agent, in the place of
// the customer's PBX (inbound) and of the customer's SIP phone (outbound): telgw's SIP, SDP,
// digest and RTP relay against an implementation nobody here wrote. SIPp plays the carrier.

// baresipPath finds baresip: skipped with a message when missing, a failure when CI=true.
func baresipPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("baresip not installed (Debian package baresip); CI must install it")
		}
		t.Skip("baresip not installed: apt-get install -y --no-install-recommends baresip")
	}
	return p
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// baresipMsg is a message from baresip's ctrl_tcp module: a response to a command or an
// event (CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED, ...).
type baresipMsg struct {
	Response  bool   `json:"response"`
	OK        bool   `json:"ok"`
	Data      string `json:"data"`
	Token     string `json:"token"`
	Event     bool   `json:"event"`
	Type      string `json:"type"`
	Direction string `json:"direction"`
	PeerURI   string `json:"peeruri"`
	Param     string `json:"param"`
}

// baresip is one baresip process driven over ctrl_tcp.
type baresip struct {
	t     *testing.T
	cmd   *exec.Cmd
	out   lockedBuffer
	done  chan struct{} // closed when the process has exited
	conn  net.Conn
	read  chan struct{} // closed when the ctrl_tcp reader has returned
	mu    sync.Mutex
	msgs  []baresipMsg
	token int
}

// startBaresip runs baresip with SIP on ip:sipPort, one account (a line of baresip's
// accounts file) and the control socket on ip, and connects to the control socket.
func startBaresip(t *testing.T, ip string, sipPort int, account string) *baresip {
	t.Helper()
	path := baresipPath(t)
	ctrlPort := freePort(t, ip)
	for ctrlPort == sipPort {
		ctrlPort = freePort(t, ip)
	}
	dir := t.TempDir()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "baresip", "config"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]string{
		"IP":         ip,
		"ModulePath": filepath.Join(filepath.Dir(filepath.Dir(path)), "lib", "baresip", "modules"), // Debian: /usr/lib/baresip/modules
		"SIPListen":  net.JoinHostPort(ip, strconv.Itoa(sipPort)),
		"CtrlListen": net.JoinHostPort(ip, strconv.Itoa(ctrlPort)),
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &baresip{t: t, cmd: exec.Command(path, "-f", dir), done: make(chan struct{}), read: make(chan struct{})}
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.stop)

	deadline := time.Now().Add(5 * time.Second)
	for b.conn == nil {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(ctrlPort)), time.Second)
		switch {
		case err == nil:
			b.conn = c
		case time.Now().After(deadline):
			t.Fatalf("baresip control socket: %v\n%s", err, tail(b.out.String(), 3000))
		default:
			select {
			case <-b.done:
				t.Fatalf("baresip exited\n%s", tail(b.out.String(), 3000))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	go b.readLoop()
	return b
}

// stop quits baresip (it hangs up a call still up), kills it if it lingers and closes the
// control connection.
func (b *baresip) stop() {
	if b.conn != nil {
		_ = writeNetstring(b.conn, map[string]string{"command": "quit", "token": "quit"})
	}
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	if b.conn != nil {
		_ = b.conn.Close()
		<-b.read
	}
	if b.t.Failed() {
		b.mu.Lock()
		var events []string
		for _, m := range b.msgs {
			if m.Event {
				events = append(events, m.Type+" "+m.Param)
			}
		}
		b.mu.Unlock()
		b.t.Logf("baresip events: %s\nbaresip output:\n%s", strings.Join(events, ", "), tail(b.out.String(), 6000))
	}
}

// readLoop collects ctrl_tcp messages: netstrings ("len:json,") holding JSON objects.
func (b *baresip) readLoop() {
	defer close(b.read)
	r := bufio.NewReader(b.conn)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(head[:len(head)-1])
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(r, body); err != nil || body[n] != ',' {
			return
		}
		var m baresipMsg
		if json.Unmarshal(body[:n], &m) != nil {
			continue
		}
		b.mu.Lock()
		b.msgs = append(b.msgs, m)
		b.mu.Unlock()
	}
}

func writeNetstring(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%d:%s,", len(j), j)
	return err
}

// await waits for the first message f accepts.
func (b *baresip) await(what string, f func(baresipMsg) bool) baresipMsg {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		for _, m := range b.msgs {
			if f(m) {
				b.mu.Unlock()
				return m
			}
		}
		b.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("baresip: %s: %v\n%s", what, errTimeout, tail(b.out.String(), 3000))
	return baresipMsg{}
}

// event waits for an event of type typ (CALL_ESTABLISHED, ...).
func (b *baresip) event(typ string) baresipMsg {
	b.t.Helper()
	return b.await("event "+typ, func(m baresipMsg) bool { return m.Event && m.Type == typ })
}

// command runs a baresip command (the menu module's: dial, hangup, ...) and waits for its
// response.
func (b *baresip) command(name, params string) {
	b.t.Helper()
	b.mu.Lock()
	b.token++
	token := "t" + strconv.Itoa(b.token)
	b.mu.Unlock()
	if err := writeNetstring(b.conn, map[string]string{"command": name, "params": params, "token": token}); err != nil {
		b.t.Fatal(err)
	}
	if m := b.await("response to "+name, func(m baresipMsg) bool { return m.Response && m.Token == token }); !m.OK {
		b.t.Fatalf("baresip %s %s: %s", name, params, m.Data)
	}
}

var baresipRTPStats = regexp.MustCompile(`packets:\s+(\d+)\s+(\d+)`)

// rtpStats waits for the statistics baresip prints when a call's audio ends (rtp_stats yes)
// and returns the RTP packets it sent and received.
func (b *baresip) rtpStats() (sent, received int) {
	b.t.Helper()
	var m []string
	eventually(b.t, "baresip rtp stats", func() bool {
		m = baresipRTPStats.FindStringSubmatch(b.out.String())
		return m != nil
	})
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}

// TestBaresipInboundPBX: a carrier (SIPp, streaming audio) calls one of telgw's numbers routed
// to the customer's PBX, baresip answering automatically and sending a tone back.
func TestBaresipInboundPBX(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	bs := startBaresip(t, pbxIP, pbxPort, fmt.Sprintf("<sip:pbx@%s:%d>;answermode=auto;audio_codecs=pcmu;regint=0", pbxIP, pbxPort))

	// Two seconds of talk; the carrier hangs up.
	e.call(carrierIP, e.scenario("uac.xml"), ourNumber, otherNumber, "-d", "2000")
	// Auto-answered calls raise no CALL_INCOMING: the first call event is CALL_ESTABLISHED.
	if in := bs.event("CALL_ESTABLISHED"); in.Direction != "incoming" || !strings.Contains(in.PeerURI, otherNumber) {
		t.Errorf("baresip saw an %s call with %q, want incoming from the caller %s", in.Direction, in.PeerURI, otherNumber)
	}
	bs.event("CALL_CLOSED")

	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Direction != sip.Inbound || cdr.Trunk != "carrier1" || cdr.Disposition != "answered" || cdr.SIPCode != 200 ||
		cdr.To != ourNumber || cdr.From != otherNumber || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	if d := cdr.Duration(); d < time.Second || d > 10*time.Second {
		t.Fatalf("duration %s", d)
	}
	// Media both ways: what baresip received came from the carrier through telgw; the rest of
	// what telgw relayed went from baresip to the carrier. 50 packets is a second of 20 ms
	// frames.
	sent, received := bs.rtpStats()
	relayed := int(e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}))
	t.Logf("baresip sent %d and received %d RTP packets; telgw relayed %d", sent, received, relayed)
	if received < 50 {
		t.Errorf("baresip received %d RTP packets from the carrier, want >= 50", received)
	}
	if sent < 50 || relayed-received < 50 {
		t.Errorf("baresip sent %d RTP packets, telgw relayed %d of them (%d in all) to the carrier, want >= 50", sent, relayed-received, relayed)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBaresipOutboundCustomer: baresip as the customer's phone, registered nowhere, calls a
// US number through telgw with digest credentials; the carrier (SIPp) answers and echoes the
// audio, so baresip hears its own tone back through both legs.
func TestBaresipOutboundCustomer(t *testing.T) {
	e, p1, _ := outbound(t, sip.TrunkConfig{Name: "carrier1"})
	carrier := e.start("carrier", carrierIP, p1, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	port := freePort(t, customerIP)
	// From is the endpoint's number; the digest username is the credential's.
	bs := startBaresip(t, customerIP, port, fmt.Sprintf(`<sip:%s@%s>;auth_user=acme;auth_pass=s3cret;outbound="sip:%s";audio_codecs=pcmu;regint=0`,
		ourNumber, customerIP, e.addr))

	bs.command("dial", fmt.Sprintf("sip:%s@%s", otherNumber, e.addr))
	bs.event("CALL_ESTABLISHED")
	// Talk until two seconds' worth of packets went each way (baresip's tone to the carrier and
	// the echo back), then the customer hangs up.
	eventually(t, "rtp relayed", func() bool {
		return e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}) >= 200
	})
	bs.command("hangup", "")
	bs.event("CALL_CLOSED")
	carrier.wait(t, 10*time.Second)

	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Direction != sip.Outbound || cdr.Trunk != "carrier1" || cdr.Disposition != "answered" || cdr.SIPCode != 200 ||
		cdr.To != otherNumber || cdr.From != ourNumber || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	sent, received := bs.rtpStats()
	t.Logf("baresip sent %d and received %d RTP packets", sent, received)
	if sent < 50 || received < 50 {
		t.Errorf("baresip sent %d and received %d RTP packets (its echo), want >= 50 each", sent, received)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}
