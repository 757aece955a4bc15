package e2e

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/testnode"
	"github.com/telgw/telgw/test/browser"
)

// The cluster tests (issue 14): telgw nodes on 127.0.0.2–4 sharing one PostgreSQL database,
// Kamailio (deploy/kamailio/kamailio.cfg, the dispatcher the docs ship) in front, SIPp as the
// carrier calling through Kamailio and as the PBX the test number is routed to. Kamailio and
// the SIPp peers have addresses of their own.
const (
	kamIP       = "127.0.0.40" // the dispatcher
	clCarrierIP = "127.0.0.41" // SIPp carrier (caller)
	clPBXIP     = "127.0.0.42" // SIPp PBX (callee of clNumber)
	clNumber    = "+14252000142"
	clUser      = "+14252000143" // assigned to a WebRTC user
)

var clNodeIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

// clusterEnv is a running cluster: the nodes, Kamailio and the SIPp PBX.
type clusterEnv struct {
	t       *testing.T
	dir     string
	db      string
	kamAddr string
	kamLog  string // Kamailio's log file
	pbxAddr string
	nodes   []*Telgw
	opts    []testnode.Options
	sipAddr []string
	client  *Client
}

func kamailioBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kamailio")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/kamailio"); serr == nil {
			return "/usr/sbin/kamailio"
		}
	}
	requirePeer(t, err == nil, "kamailio (apt-get install -y kamailio)")
	return p
}

// startCluster starts n nodes at the same moment on one fresh PostgreSQL database (their
// migrations take turns under advisory locks), Kamailio dispatching to them, and a SIPp PBX
// echoing RTP that clNumber is routed to.
func startCluster(t *testing.T, n int) *clusterEnv {
	t.Helper()
	kam := kamailioBin(t)
	sippBin(t)
	c := &clusterEnv{t: t, dir: t.TempDir(), db: PostgresURL(t)}
	kport := freePortOn(t, kamIP)
	c.kamAddr = net.JoinHostPort(kamIP, strconv.Itoa(kport))
	var list strings.Builder
	for i := range n {
		addr := net.JoinHostPort(clNodeIPs[i], strconv.Itoa(freePortOn(t, clNodeIPs[i])))
		c.sipAddr = append(c.sipAddr, addr)
		fmt.Fprintf(&list, "1 sip:%s\n", addr)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "dispatcher.list"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile, _ := filepath.Abs("../../deploy/kamailio/kamailio.cfg")
	cmd := exec.Command(kam, "-DD", "-E", "-f", cfgFile, "-m", "64", "-M", "8", "-w", c.dir, "-Y", c.dir,
		"-A", "LISTEN=udp:"+c.kamAddr, "-A", `DISPATCHER_LIST="`+filepath.Join(c.dir, "dispatcher.list")+`"`,
		"-A", `CARRIER="sip:`+clCarrierIP+`:5999"`, "-A", "CHILDREN=2")
	c.kamLog = filepath.Join(c.dir, "kamailio.log")
	kamLog, err := os.Create(c.kamLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = kamLog, kamLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = kamLog.Close()
		if t.Failed() {
			b, _ := os.ReadFile(kamLog.Name())
			t.Logf("kamailio log:\n%s", tail(string(b), 4000))
		}
	})
	// The PBX: answers every call and echoes its RTP, until the test ends.
	pbxDir := scenarioCopy(t)
	pport := freePortOn(t, clPBXIP)
	c.pbxAddr = net.JoinHostPort(clPBXIP, strconv.Itoa(pport))
	pbx := exec.Command(sippBin(t), "-sf", "uas.xml", "-i", clPBXIP, "-p", strconv.Itoa(pport), "-mp", strconv.Itoa(freePortOn(t, clPBXIP)),
		"-rtp_echo", "-nostdin", "-trace_err")
	pbx.Dir = pbxDir
	pbx.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := pbx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pbx.Process.Kill(); _ = pbx.Wait() })

	cfg := fmt.Sprintf(`http:
  shutdownTimeout: 30s
sip:
  sourceRate: 100000
  sourceBurst: 100000
  trunks:
    - name: carrier1
      address: %s
      inbound: {allow: ["%s/32", "%s/32"]}
`, c.kamAddr, kamIP, clCarrierIP)
	c.nodes = make([]*Telgw, n)
	c.opts = make([]testnode.Options, n)
	var wg sync.WaitGroup
	for i := range n {
		c.opts[i] = testnode.Options{Bin: telgwBin, DataDir: t.TempDir(), DatabaseURL: c.db, Config: cfg, Env: []string{
			"TELGW_SIP_ADDR=" + c.sipAddr[i], "TELGW_HTTP_ADDR=" + clNodeIPs[i] + ":0", "TELGW_TURN_ADDR=" + clNodeIPs[i] + ":0",
			"TELGW_CLUSTER_NODE_NAME=node" + strconv.Itoa(i+1), "TELGW_LOG_LEVEL=" + clLogLevel()}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.nodes[i] = testnode.Start(t, c.opts[i])
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	c.client = NewClient(t, c.nodes[0].ConnString)
	c.waitNodes(n, 10*time.Second)
	// The test number, routed to the PBX; shared by every node through the store.
	buyNumber(t, c.client, clNumber)
	if r := c.client.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(clNumber)+"/route", map[string]string{"route": "sip:pbx@" + c.pbxAddr}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	return c
}

// clLogLevel is the nodes' log level: warn, or TELGW_CLUSTER_TEST_LOG.
func clLogLevel() string {
	if l := os.Getenv("TELGW_CLUSTER_TEST_LOG"); l != "" {
		return l
	}
	return "warn"
}

// clNode is one node of GET /telgw/nodes.
type clNode struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	SIPAddr       string `json:"sipAddr"`
	Draining      bool   `json:"draining"`
	Calls         int    `json:"calls"`
	Registrations int    `json:"registrations"`
	Self          bool   `json:"self"`
}

// nodesView reads GET /telgw/nodes from node i.
func (c *clusterEnv) nodesView(i int) []clNode {
	c.t.Helper()
	var v struct{ Value []clNode }
	NewClient(c.t, c.nodes[i].ConnString).Do(c.t, "GET", "/telgw/nodes", nil).JSON(c.t, &v)
	return v.Value
}

// waitNodes waits until the cluster lists n live nodes.
func (c *clusterEnv) waitNodes(n int, max time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		var v struct{ Value []clNode }
		c.client.Do(c.t, "GET", "/telgw/nodes", nil).JSON(c.t, &v)
		if len(v.Value) == n {
			return time.Since(start)
		}
		if time.Since(start) > max {
			c.t.Fatalf("cluster lists %d nodes after %s, want %d: %+v", len(v.Value), max, n, v.Value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kamOffset is the current size of Kamailio's log (kamSaw looks after it).
func (c *clusterEnv) kamOffset() int64 {
	fi, err := os.Stat(c.kamLog)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// kamSaw waits until Kamailio logs a line containing what after offset, and returns when.
func (c *clusterEnv) kamSaw(what string, offset int64, max time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(max)
	for {
		b, _ := os.ReadFile(c.kamLog)
		if int64(len(b)) > offset && bytes.Contains(b[offset:], []byte(what)) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("kamailio did not log %q within %s", what, max)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sippLoad is one SIPp carrier placing calls to clNumber through target.
type sippLoad struct {
	cmd  *exec.Cmd
	dir  string
	out  bytes.Buffer
	done chan error
}

// load starts SIPp placing calls calls at rate per second, each held hold, to target.
func (c *clusterEnv) load(target string, calls, rate int, hold time.Duration) *sippLoad {
	c.t.Helper()
	l := &sippLoad{dir: scenarioCopy(c.t), done: make(chan error, 1)}
	l.cmd = exec.Command(sippBin(c.t), target, "-sf", "uac.xml", "-s", clNumber, "-key", "caller", "+12125550100",
		"-i", clCarrierIP, "-p", strconv.Itoa(freePortOn(c.t, clCarrierIP)), "-mp", strconv.Itoa(freePortOn(c.t, clCarrierIP)),
		"-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(4*rate*int(hold/time.Second+1)+10),
		"-d", strconv.Itoa(int(hold.Milliseconds())), "-recv_timeout", "15000", "-nostdin", "-timeout", "120s",
		"-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_err")
	l.cmd.Dir = l.dir
	l.cmd.Stdout, l.cmd.Stderr = &l.out, &l.out
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	c.t.Cleanup(func() { _ = l.cmd.Process.Kill() })
	return l
}

// wait waits for the run to end and returns its successful and failed calls (SIPp's
// cumulative counters).
func (l *sippLoad) wait(t *testing.T, max time.Duration) (ok, failed int) {
	t.Helper()
	select {
	case err := <-l.done:
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			t.Fatalf("sipp: %v\n%s", err, l.out.String())
		}
	case <-time.After(max):
		_ = l.cmd.Process.Kill()
		t.Fatalf("sipp still running after %s\n%s", max, l.out.String())
	}
	f, err := os.Open(filepath.Join(l.dir, "stat.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.FieldsPerRecord = ';', -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("sipp stat file: %v (%d rows)", err, len(rows))
	}
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				n, _ := strconv.Atoi(rows[len(rows)-1][i])
				return n
			}
		}
		t.Fatalf("no %s column in sipp stats", name)
		return 0
	}
	return col("SuccessfulCall(C)"), col("FailedCall(C)")
}

func (l *sippLoad) errors() string {
	logs, _ := filepath.Glob(filepath.Join(l.dir, "*_errors.log"))
	var b strings.Builder
	for _, p := range logs {
		s, _ := os.ReadFile(p)
		b.Write(s)
	}
	return tail(b.String(), 3000)
}

// TestCluster runs three nodes behind Kamailio on one PostgreSQL and checks, in order: they
// start together and see each other; a WebRTC user (JsSIP in Chromium) registered on node 1
// answers a carrier call that reaches node 2; a rolling restart (SIGTERM: drain, then start
// again) of every node under load loses no call; and after node 3 is killed with -9 a third of
// the way into a load run, every call started after a short detection window succeeds.
func TestCluster(t *testing.T) {
	c := startCluster(t, 3)
	for i := range c.nodes {
		v := c.nodesView(i)
		self := 0
		for _, n := range v {
			if n.Self {
				self++
				if n.SIPAddr != c.sipAddr[i] {
					t.Fatalf("node %d announces SIP %s, want %s", i+1, n.SIPAddr, c.sipAddr[i])
				}
			}
		}
		if len(v) != 3 || self != 1 {
			t.Fatalf("node %d sees %+v", i+1, v)
		}
	}
	// The view needs the access key; `telgw nodes` reads the same from the database.
	if res, err := http.Get(c.nodes[0].Endpoint + "telgw/nodes"); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned GET /telgw/nodes: %v %v, want 401", res, err)
	} else {
		res.Body.Close()
	}
	cmd := exec.Command(telgwBin, "nodes")
	cmd.Env = append(os.Environ(), "TELGW_DATABASE_URL="+c.db, "TELGW_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("telgw nodes: %v\n%s", err, out)
	}
	for i := range c.nodes {
		if !strings.Contains(string(out), "node"+strconv.Itoa(i+1)+" ") || !strings.Contains(string(out), c.sipAddr[i]) {
			t.Fatalf("telgw nodes does not list node%d at %s:\n%s", i+1, c.sipAddr[i], out)
		}
	}
	// A warm-up through the dispatcher: every node takes calls.
	if ok, failed := c.load(c.kamAddr, 6, 6, time.Second).wait(t, 60*time.Second); ok != 6 || failed != 0 {
		t.Fatalf("warm-up: %d ok, %d failed", ok, failed)
	}

	t.Run("UserOnAnotherNode", func(t *testing.T) { clusterUserOnAnotherNode(t, c) })
	t.Run("RollingRestart", func(t *testing.T) { clusterRollingRestart(t, c) })
	t.Run("KillOneNode", func(t *testing.T) { clusterKill(t, c) })
}

// clusterUserOnAnotherNode: the softphone registers on node 1; the carrier's call to its
// number arrives at node 2, which forks it to node 1 (node-to-node SIP); the browser answers,
// audio flows both ways through both nodes, and the browser hangs up.
func clusterUserOnAnotherNode(t *testing.T, c *clusterEnv) {
	chromium := browser.Require(t)
	cl := c.client
	buyNumber(t, cl, clUser)
	var id struct {
		Identity    struct{ ID string }    `json:"identity"`
		AccessToken struct{ Token string } `json:"accessToken"`
	}
	r := cl.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("identity: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &id)
	if r := cl.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(clUser)+"/assignment", map[string]string{"communicationUser": id.Identity.ID}); r.Status != http.StatusOK {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	type out struct {
		res browser.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := browser.RunContext(t.Context(), chromium, browser.Options{URL: c.nodes[0].Endpoint + "phone/", Token: id.AccessToken.Token,
			Mode: "answer", Hangup: "local", Talk: 3 * time.Second, Timeout: 40 * time.Second})
		done <- out{res, err}
	}()
	// Node 2 must learn the registration from the store.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := c.nodesView(1)
		reg := 0
		for _, n := range v {
			if n.SIPAddr == c.sipAddr[0] {
				reg = n.Registrations
			}
		}
		if reg > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 never saw node 1's registration: %+v", v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dir := scenarioCopy(t)
	// The browser hangs up after 3 s: its BYE goes to node 1, node 1's to node 2 (across
	// addresses: node 2's dialog source check must take it), node 2's to the carrier.
	wait := sippRun(t, dir, c.sipAddr[1], "-sf", "uac_callee_bye.xml", "-i", clCarrierIP, "-p", strconv.Itoa(freePortOn(t, clCarrierIP)),
		"-s", clUser, "-key", "caller", "+12125550111", "-m", "1", "-mp", strconv.Itoa(freePortOn(t, clCarrierIP)))
	wait(60 * time.Second)
	o := <-done
	if o.err != nil {
		t.Fatalf("%v\n%+v", o.err, o.res)
	}
	if o.res.Stats == nil {
		t.Fatalf("browser: %+v", o.res)
	}
	checkStats(t, o.res.Stats)
	checkCDR(t, cl, "inbound", "+12125550111", clUser, "callee")
}

// clusterRollingRestart: calls run through the dispatcher while each node in turn gets
// SIGTERM (it answers OPTIONS and new INVITEs 503, the dispatcher moves new calls to the
// others, its calls finish), exits and starts again; no call fails.
func clusterRollingRestart(t *testing.T, c *clusterEnv) {
	const rate, hold = 4, 3 * time.Second
	l := c.load(c.kamAddr, rate*36, rate, hold) // ~36 s of calls
	time.Sleep(3 * time.Second)
	up := 0
	for i := range c.nodes {
		calls := -1
		for _, n := range c.nodesView(i) {
			if n.Self {
				calls = n.Calls
			}
		}
		up += calls
		start := time.Now()
		c.nodes[i].Drain(t, 45*time.Second)
		t.Logf("node %d had %d calls up at SIGTERM (last heartbeat); drained and stopped in %s", i+1, calls, time.Since(start).Round(time.Millisecond))
		c.nodes[i] = testnode.Start(c.t, c.opts[i]) // stopped when the whole test ends
		c.client = NewClient(t, c.nodes[i].ConnString)
		c.waitNodes(len(c.nodes), 10*time.Second)
		time.Sleep(2 * time.Second) // the dispatcher's next probe finds it up
	}
	ok, failed := l.wait(t, 120*time.Second)
	t.Logf("rolling restart: %d calls ok, %d failed", ok, failed)
	if up == 0 {
		t.Fatal("no node had a call up when it was told to drain: the test proved nothing")
	}
	if failed != 0 || ok != rate*36 {
		t.Fatalf("rolling restart lost calls: %d ok, %d failed\n%s", ok, failed, l.errors())
	}
}

// clusterKill: load through the dispatcher; node 3 is killed with -9 a third of the way in.
// Calls already on it are lost with it (their media was anchored there); calls started after
// the detection window (a failed probe or a failed-over INVITE) all succeed, and the cluster
// view drops the node within its lease TTL.
func clusterKill(t *testing.T, c *clusterEnv) {
	const rate, hold = 8, time.Second
	const window = 3 * time.Second
	c.client = NewClient(t, c.nodes[0].ConnString)
	before := c.load(c.kamAddr, rate*4, rate, hold) // 4 s of calls: the kill at ~1.3 s
	time.Sleep(1300 * time.Millisecond)
	off := c.kamOffset()
	killed := time.Now()
	c.nodes[2].Kill()
	down := c.kamSaw("telgw node down: sip:"+c.sipAddr[2], off, window)
	t.Logf("the dispatcher marked the killed node down after %s", down.Sub(killed).Round(10*time.Millisecond))
	time.Sleep(time.Until(killed.Add(window)))
	after := c.load(c.kamAddr, rate*8, rate, hold)
	c.waitNodes(2, 15*time.Second)
	t.Logf("cluster view dropped the killed node after %s", time.Since(killed).Round(100*time.Millisecond))
	okB, failedB := before.wait(t, 60*time.Second)
	okA, failedA := after.wait(t, 60*time.Second)
	t.Logf("calls started before the detection window: %d ok, %d failed; after: %d ok, %d failed", okB, failedB, okA, failedA)
	if failedA != 0 || okA != rate*8 {
		t.Fatalf("calls after the detection window failed: %d ok, %d failed\n%s", okA, failedA, after.errors())
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestKamailioConfig: the dispatcher configuration the docs ship parses (kamailio -c) with its
// defaults and with the overrides the docs show.
func TestKamailioConfig(t *testing.T) {
	kam := kamailioBin(t)
	cfgFile, _ := filepath.Abs("../../deploy/kamailio/kamailio.cfg")
	list := filepath.Join(t.TempDir(), "dispatcher.list")
	if err := os.WriteFile(list, []byte("1 sip:127.0.0.2:5060\n1 sip:127.0.0.3:5060\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-A", `DISPATCHER_LIST="` + list + `"`},
		{"-A", "LISTEN=udp:127.0.0.40:5999", "-A", `DISPATCHER_LIST="` + list + `"`, "-A", `CARRIER="sip:198.51.100.7:5060"`,
			"-A", "PROBE_INTERVAL=2", "-A", "NODE_TIMEOUT=3000"},
	} {
		out, err := exec.Command(kam, append([]string{"-c", "-f", cfgFile}, args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "config file ok") {
			t.Fatalf("kamailio -c %v: %v\n%s", args, err, out)
		}
	}
}
