package sip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip"
)

// Loopback addresses of the parties (Linux answers the whole of 127.0.0.0/8), so that telgw
// tells trunks, PBXs and customers apart by source address as it would on a real network.
const (
	telgwIP    = "127.0.0.1"
	carrierIP  = "127.0.0.2" // trunk "carrier1"
	pbxIP      = "127.0.0.3" // a customer's PBX, target of inbound routes
	customerIP = "127.0.0.4" // a customer's SIP endpoint calling out
	strangerIP = "127.0.0.5" // nobody
	carrier2IP = "127.0.0.6" // trunk "carrier2"
)

// fakeRouter is the numbers domain as the SIP service sees it.
type fakeRouter struct {
	mu     sync.Mutex
	routes map[string]sip.Route
}

func (f *fakeRouter) CallRoute(_ context.Context, e164 string) (sip.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[e164]
	if !ok {
		return nil, sip.ErrUnknownNumber
	}
	return r, nil
}

func (f *fakeRouter) set(e164 string, r sip.Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[e164] = r
}

type fakeCreds map[string]sip.Credential

func (f fakeCreds) SIPCredential(_ context.Context, user string) (sip.Credential, error) {
	c, ok := f[user]
	if !ok {
		return sip.Credential{}, sip.ErrUnknownCredential
	}
	return c, nil
}

type fakeCDRs struct {
	mu   sync.Mutex
	cdrs []sip.CDR
}

func (f *fakeCDRs) CDRInsert(_ context.Context, c sip.CDR) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cdrs = append(f.cdrs, c)
	return nil
}

func (f *fakeCDRs) all() []sip.CDR {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sip.CDR(nil), f.cdrs...)
}

// waitCDRs waits until n CDRs are written (a call's CDR follows its last SIP message).
func (f *fakeCDRs) wait(t *testing.T, n int) []sip.CDR {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c := f.all(); len(c) >= n {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("want %d CDRs, have %+v", n, f.all())
	return nil
}

type env struct {
	t      *testing.T
	svc    *sip.Service
	reg    *prometheus.Registry
	router *fakeRouter
	cdrs   *fakeCDRs
	dir    string
	addr   string
}

// sippPath finds SIPp: skipped with a message when missing, a failure when CI=true.
func sippPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp not installed (Debian package sip-tester); CI must install it")
		}
		t.Skip("sipp not installed: apt-get install -y sip-tester")
	}
	return p
}

// freePort returns a port free for UDP and TCP on ip.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

type envOpts struct {
	trunks  []sip.TrunkConfig
	routes  []sip.OutboundRoute
	creds   fakeCreds
	media   time.Duration
	tweak   func(*sip.Config)
	users   *sip.Users
	verbose bool
	// automation hands calls to bot-routed numbers to apps (bot_test.go).
	automation *calls.Automation
	// deps changes the dependencies (fraud_test.go: policy, STIR/SHAKEN).
	deps func(*sip.Deps)
	// maxParticipants is the automation's calls.maxParticipants (0: the default).
	maxParticipants int
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, reg: prometheus.NewRegistry(), router: &fakeRouter{routes: map[string]sip.Route{}}, cdrs: &fakeCDRs{}, dir: t.TempDir()}
	level := slog.LevelWarn + 4
	if o.verbose || os.Getenv("TELGW_SIP_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := sip.Config{
		Addr: net.JoinHostPort(telgwIP, "0"), Trunks: o.trunks, Routes: o.routes,
		FailoverTimeout: 2 * time.Second, Logger: log, Registerer: e.reg,
		Media: bridge.Config{ListenIP: netip.MustParseAddr(telgwIP), PortMin: 42000, PortMax: 42999, MediaTimeout: o.media},
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	deps := sip.Deps{Router: e.router, CDRs: e.cdrs, Users: o.users, Automation: o.automation}
	if o.creds != nil {
		deps.Credentials = o.creds
	}
	if o.deps != nil {
		o.deps(&deps)
	}
	svc, err := sip.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.addr = svc, svc.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	// Scenarios and the μ-law audio SIPp streams (rtp_stream reads raw payload).
	entries, err := os.ReadDir(scenarioDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		b, err := os.ReadFile(filepath.Join(scenarioDir(t), de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "tone.ul"), bytes.Repeat([]byte{0xff, 0x7f}, 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func scenarioDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "test", "sipp")
}

// scenario writes a copy of name with replacements (e.g. EXPECT_CODE) and returns its path.
func (e *env) scenario(name string, repl ...string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	b = []byte(strings.NewReplacer(repl...).Replace(string(b)))
	p := filepath.Join(e.dir, fmt.Sprintf("%d-%s", time.Now().UnixNano(), name))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// sipp is one SIPp process.
type sipp struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{} // closed when the process has exited; err is then set
	err  error
}

// start runs SIPp in the background (callees); args follow the scenario.
func (e *env) start(name, ip string, port int, scenario string, args ...string) *sipp {
	e.t.Helper()
	all := append([]string{"-sf", scenario, "-i", ip, "-p", strconv.Itoa(port), "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err"}, args...)
	s := &sipp{name: name, cmd: exec.Command(sippPath(e.t), all...), done: make(chan struct{})}
	s.cmd.Dir = e.dir
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	e.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	time.Sleep(150 * time.Millisecond) // let it bind
	return s
}

// wait waits for s to exit and fails the test (with its output and error log) unless it
// reports every call successful.
func (s *sipp) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.done:
		if err := s.err; err != nil {
			logs, _ := filepath.Glob(filepath.Join(s.cmd.Dir, "*_errors.log"))
			var errs []string
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				errs = append(errs, string(b))
			}
			t.Fatalf("%s: %v\n%s\n%s", s.name, err, tail(s.out.String(), 3000), tail(strings.Join(errs, "\n"), 4000))
		}
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("%s: still running after %s\n%s", s.name, timeout, tail(s.out.String(), 3000))
	}
}

// sippAuthURI makes SIPp answer digest challenges for the Request-URI its scenarios send
// (sip:[service]@[remote_ip]:[remote_port]), as phones do: its default digest-uri is
// remote_ip:remote_port, which telgw refuses (RFC 7616 §3.4.6).
func sippAuthURI(service, addr string, args []string) []string {
	if !slices.Contains(args, "-au") || slices.Contains(args, "-auth_uri") {
		return nil
	}
	return []string{"-auth_uri", service + "@" + addr}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// call runs a one-call SIPp caller to telgw and waits for it.
func (e *env) call(ip, scenario, service, caller string, args ...string) {
	e.t.Helper()
	all := append([]string{e.addr, "-s", service, "-key", "caller", caller, "-m", "1", "-d", "1000", "-mp", strconv.Itoa(freePort(e.t, ip))}, args...)
	all = append(all, sippAuthURI(service, e.addr, args)...)
	s := e.start("caller "+filepath.Base(scenario), ip, freePort(e.t, ip), scenario, all...)
	s.wait(e.t, 40*time.Second)
}

// counter reads a counter or gauge from the registry (sum over label sets matching labels).
func (e *env) counter(name string, labels map[string]string) float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !matches(m, labels) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

var errTimeout = errors.New("timeout")

// eventually polls f until it is true.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, errTimeout)
}
