package kamailio

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed kamailio.cfg.tmpl
var kamailioCfg string

// DefaultNumberRegexp matches the hundred numbers +1 415 555 0100–0199 in +1, 1 or 10-digit
// form: the per-number routing the reference proxy does.
const DefaultNumberRegexp = `^(\+?1)?41555501[0-9][0-9]$`

// DefaultRTPEngineFlags are the rtpengine_offer/answer flags: rewrite the SDP connection and
// origin to rtpengine's address and drop ICE, as an anchoring B2BUA does.
const DefaultRTPEngineFlags = "replace-origin replace-session-connection ICE=remove"

// Config describes the reference proxy. Zero fields take the documented defaults.
type Config struct {
	// Dir receives the rendered configuration and the peers' logs. Required.
	Dir string
	// Callee is the host:port every routed INVITE goes to (the SIPp callee). Required.
	Callee string
	// Listen is Kamailio's UDP SIP address. Default: 127.0.0.1 on a free port.
	Listen string
	// RTPEngineNG is rtpengine's ng control address. Default: 127.0.0.1 on a free port.
	RTPEngineNG string
	// NumberRegexp selects the routed R-URI users; others get 404. Default DefaultNumberRegexp.
	NumberRegexp string
	// RTPEngineFlags are passed to rtpengine_offer/answer. Default DefaultRTPEngineFlags.
	RTPEngineFlags string
	// Children is Kamailio's number of UDP worker processes. Default 4.
	Children int
	// RTPEngineThreads is rtpengine's number of worker threads. Default 2.
	RTPEngineThreads int
	// PortMin and PortMax bound rtpengine's media ports. Default 10000–21999 (below the
	// kernel's ephemeral range, where FreePort picks the SIP ports).
	PortMin, PortMax int
	// SharedMemMB is Kamailio's shared memory in MiB. Default 256.
	SharedMemMB int
}

func (c *Config) defaults() error {
	if c.Dir == "" || c.Callee == "" {
		return errors.New("kamailio: Dir and Callee are required")
	}
	if c.Listen == "" {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		c.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	if c.RTPEngineNG == "" {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		c.RTPEngineNG = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	if c.NumberRegexp == "" {
		c.NumberRegexp = DefaultNumberRegexp
	}
	if c.RTPEngineFlags == "" {
		c.RTPEngineFlags = DefaultRTPEngineFlags
	}
	if c.Children == 0 {
		c.Children = 4
	}
	if c.RTPEngineThreads == 0 {
		c.RTPEngineThreads = 2
	}
	if c.PortMin == 0 {
		c.PortMin, c.PortMax = 10000, 21999
	}
	if c.SharedMemMB == 0 {
		c.SharedMemMB = 256
	}
	return nil
}

// Reference is a running Kamailio + rtpengine pair.
type Reference struct {
	// Addr is the SIP address to send calls to.
	Addr string
	cfg  Config
	cmds []*exec.Cmd
	done []chan error
}

// Start writes the configuration to cfg.Dir, starts rtpengine and Kamailio in the foreground
// and returns once both answer (an ng ping, a SIP OPTIONS). Close stops them.
func Start(ctx context.Context, cfg Config) (*Reference, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &Reference{Addr: cfg.Listen, cfg: cfg}
	ngHost, _, err := net.SplitHostPort(cfg.RTPEngineNG)
	if err != nil {
		return nil, fmt.Errorf("rtpengine ng address: %w", err)
	}
	// Userspace forwarding only (--table=-1), no config file, sessions freed on delete so that
	// a high call rate does not run out of ports.
	if err := r.run("rtpengine", "rtpengine", "--config-file=none", "--table=-1",
		"--interface="+ngHost, "--listen-ng="+cfg.RTPEngineNG,
		"--port-min="+strconv.Itoa(cfg.PortMin), "--port-max="+strconv.Itoa(cfg.PortMax),
		"--num-threads="+strconv.Itoa(cfg.RTPEngineThreads), "--delete-delay=0",
		"--foreground", "--log-stderr", "--log-level=4"); err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, 10*time.Second, func() error { return ngPing(cfg.RTPEngineNG) }); err != nil {
		r.Close()
		return nil, fmt.Errorf("rtpengine not answering on %s: %w\n%s", cfg.RTPEngineNG, err, r.log("rtpengine"))
	}
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(kamailioCfg)).Execute(&b, kamailioValues(cfg)); err != nil {
		r.Close()
		return nil, err
	}
	path := filepath.Join(cfg.Dir, "kamailio.cfg")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.run("kamailio", "kamailio", "-DD", "-E", "-f", path, "-m", strconv.Itoa(cfg.SharedMemMB),
		"-M", "16", "-w", cfg.Dir, "-Y", cfg.Dir); err != nil {
		r.Close()
		return nil, err
	}
	if err := waitUntil(ctx, 10*time.Second, func() error { return sipPing(cfg.Listen) }); err != nil {
		r.Close()
		return nil, fmt.Errorf("kamailio not answering on %s: %w\n%s", cfg.Listen, err, r.log("kamailio"))
	}
	return r, nil
}

// kamailioValues escapes what goes into the configuration's double-quoted strings.
func kamailioValues(c Config) Config {
	c.NumberRegexp = strings.ReplaceAll(c.NumberRegexp, `\`, `\\`)
	return c
}

func (r *Reference) run(name, bin string, args ...string) error {
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("%s not installed (apt-get install -y kamailio rtpengine-daemon): %w", bin, err)
	}
	logf, err := os.Create(filepath.Join(r.cfg.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Close reaches Kamailio's worker processes too; killed
	// with the harness if that dies first (Linux).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); _ = logf.Close() }()
	r.cmds, r.done = append(r.cmds, cmd), append(r.done, done)
	return nil
}

func (r *Reference) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.cfg.Dir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Close stops Kamailio, then rtpengine (SIGTERM to each process group, SIGKILL after 5 s).
func (r *Reference) Close() {
	for i := len(r.cmds) - 1; i >= 0; i-- {
		pid := r.cmds[i].Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-r.done[i]:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-r.done[i]
		}
	}
	r.cmds, r.done = nil, nil
}

func waitUntil(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ngPing sends the ng protocol's ping (a bencoded dictionary after a cookie) and wants pong.
func ngPing(addr string) error {
	reply, err := udpExchange(addr, []byte("bench d7:command4:pinge"))
	if err != nil {
		return err
	}
	if !bytes.Contains(reply, []byte("pong")) {
		return fmt.Errorf("ng ping: %q", reply)
	}
	return nil
}

// sipPing sends an OPTIONS request and wants a 200.
func sipPing(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-bench-" + id + "\r\n" +
		"From: <sip:bench@" + local + ">;tag=bench\r\nTo: <sip:" + addr + ">\r\n" +
		"Call-ID: bench-ping-" + id + "\r\nCSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	reply, err := exchange(c, []byte(msg))
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(reply, []byte("SIP/2.0 200")) {
		return fmt.Errorf("OPTIONS: %q", firstLine(reply))
	}
	return nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func udpExchange(addr string, msg []byte) ([]byte, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return exchange(c, msg)
}

func exchange(c net.Conn, msg []byte) ([]byte, error) {
	if err := c.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return nil, err
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// FreePort returns a UDP port free on ip at the time of the call.
func FreePort(ip string) (int, error) {
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
