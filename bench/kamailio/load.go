package kamailio

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed scenarios/*.xml
var scenarios embed.FS

// Parties are the load's endpoints around the target under test. Zero fields take the
// documented defaults; Defaults fills them, after which Callee is fixed and the target can be
// configured to route to it.
type Parties struct {
	// Dir is the working directory for scenarios and SIPp's logs. Required.
	Dir string
	// CallerIP is the SIPp caller's and the caller-side media address. Default 127.0.0.2 (the
	// carrier trunk's address in telgw's SIPp tests).
	CallerIP string
	// CalleeIP is the SIPp callee's and the callee-side media address. Default 127.0.0.3.
	CalleeIP string
	// CalleePort is the SIPp callee's UDP port. Default: a free port.
	CalleePort int
	// Number is the R-URI user called. Default 4155550100.
	Number string
	// SIPp is the SIPp binary. Default: sipp from PATH.
	SIPp string
}

// Defaults fills the zero fields of p.
func (p *Parties) Defaults() error {
	if p.Dir == "" {
		return errors.New("parties: Dir is required")
	}
	if p.CallerIP == "" {
		p.CallerIP = "127.0.0.2"
	}
	if p.CalleeIP == "" {
		p.CalleeIP = "127.0.0.3"
	}
	if p.Number == "" {
		p.Number = "4155550100"
	}
	if p.CalleePort == 0 {
		port, err := FreePort(p.CalleeIP)
		if err != nil {
			return err
		}
		p.CalleePort = port
	}
	if p.SIPp == "" {
		path, err := exec.LookPath("sipp")
		if err != nil {
			return fmt.Errorf("sipp not installed (apt-get install -y sip-tester): %w", err)
		}
		p.SIPp = path
	}
	entries, err := scenarios.ReadDir("scenarios")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := scenarios.ReadFile("scenarios/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.Dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Callee is the SIPp callee's host:port, where the target must route calls to Number.
func (p *Parties) Callee() string {
	return net.JoinHostPort(p.CalleeIP, strconv.Itoa(p.CalleePort))
}

// Step is one call rate of a signalling ramp.
type Step struct {
	// CPS is the requested call rate; Achieved the rate of 200 OKs actually seen.
	CPS      int
	Achieved float64
	// Calls were placed; Failed did not complete INVITE/200/ACK/BYE/200.
	Calls, Failed int
	// Retrans counts the caller's retransmissions (a sign of a saturated target); Unexpected
	// the messages it did not expect where they came (e.g. a 180 after the 200), which do
	// not fail a call.
	Retrans, Unexpected int
	// P50, P99 and Max are setup latencies (INVITE sent to 200 received, 1 ms resolution).
	P50, P99, Max time.Duration
}

// RampOptions shape a signalling ramp. Zero fields take the documented defaults.
type RampOptions struct {
	// Rates are tried in order; the ramp stops after the first step with a failed call.
	// Default 100, 250, 500, 750, 1000, 1250, 1500, 2000.
	Rates []int
	// StepDuration is how long each rate runs (Calls = rate × duration). Default 5 s.
	StepDuration time.Duration
	// Hold is how long each call stays up between ACK and BYE. Default 100 ms.
	Hold time.Duration
	// Pause is the quiet time between steps, for the target to drain. Default 2 s.
	Pause time.Duration
}

// SignallingRamp runs SIPp caller → target → SIPp callee at each rate of o and returns the
// steps run. No RTP flows: the SDP offer and answer point at addresses nobody sends from,
// but the target still anchors media for every call as it would for real ones.
func SignallingRamp(ctx context.Context, target string, p Parties, o RampOptions) ([]Step, error) {
	if len(o.Rates) == 0 {
		o.Rates = []int{100, 250, 500, 750, 1000, 1250, 1500, 2000}
	}
	if o.StepDuration == 0 {
		o.StepDuration = 5 * time.Second
	}
	if o.Pause == 0 {
		o.Pause = 2 * time.Second
	}
	if o.Hold == 0 {
		o.Hold = 100 * time.Millisecond
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.CallerIP)})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.CalleeIP)})
	if err != nil {
		return nil, err
	}
	defer echo.Close()
	var steps []Step
	for i, rate := range o.Rates {
		if i > 0 {
			select {
			case <-ctx.Done():
				return steps, ctx.Err()
			case <-time.After(o.Pause):
			}
		}
		calls := int(math.Ceil(float64(rate) * o.StepDuration.Seconds()))
		res, err := runCalls(ctx, target, p, callOptions{
			calls: calls, rate: rate, hold: o.Hold,
			mediaA: sink.LocalAddr().(*net.UDPAddr), mediaB: echo.LocalAddr().(*net.UDPAddr),
			tag: fmt.Sprintf("cps%d", rate),
		})
		if err != nil {
			return steps, err
		}
		st := Step{CPS: rate, Calls: calls, Failed: res.failed, Retrans: res.retrans, Unexpected: res.unexpected, Achieved: res.achieved}
		st.P50, st.P99, st.Max = percentile(res.rtts, 0.50), percentile(res.rtts, 0.99), percentile(res.rtts, 1)
		steps = append(steps, st)
		if st.Failed > 0 {
			break
		}
	}
	return steps, nil
}

// MaxCPS is the highest rate among steps with no failed call, and its step; ok is false when
// every step failed.
func MaxCPS(steps []Step) (best Step, ok bool) {
	for _, s := range steps {
		if s.Failed == 0 && s.CPS > best.CPS {
			best, ok = s, true
		}
	}
	return best, ok
}

type callOptions struct {
	calls, rate    int
	hold           time.Duration
	mediaA, mediaB *net.UDPAddr
	tag            string
	logs           bool // -trace_logs: the MEDIA lines Media streams to
}

type callResult struct {
	failed, retrans, unexpected int
	achieved                    float64
	rtts                        []time.Duration
}

// runCalls runs one SIPp callee for o.calls calls and one SIPp caller placing them, and
// collects the caller's outcome. Each started function is called once the caller runs, with
// the directory its logs go to.
func runCalls(ctx context.Context, target string, p Parties, o callOptions, started ...func(dir string)) (callResult, error) {
	// A fresh directory per run: SIPp names its logs by pid, the harness finds them by glob.
	dir, err := os.MkdirTemp(p.Dir, o.tag+"-")
	if err != nil {
		return callResult{}, err
	}
	for _, f := range []string{"uac.xml", "uas.xml"} {
		b, err := os.ReadFile(filepath.Join(p.Dir, f))
		if err != nil {
			return callResult{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return callResult{}, err
		}
	}
	budget := time.Duration(float64(o.calls)/float64(o.rate)*float64(time.Second)) + o.hold + 40*time.Second
	secs := strconv.Itoa(int(budget.Seconds()))
	callerPort, err := FreePort(p.CallerIP)
	if err != nil {
		return callResult{}, err
	}
	// SIPp may bind its own media port (-mp, default 6000) though nothing uses it: give each
	// process a free one so that runs never collide.
	mpA, err := FreePort(p.CallerIP)
	if err != nil {
		return callResult{}, err
	}
	mpB, err := FreePort(p.CalleeIP)
	if err != nil {
		return callResult{}, err
	}
	uas := exec.CommandContext(ctx, p.SIPp, "-sf", "uas.xml", "-i", p.CalleeIP, "-p", strconv.Itoa(p.CalleePort),
		"-mi", p.CalleeIP, "-mp", strconv.Itoa(mpB),
		"-key", "media_b_ip", o.mediaB.IP.String(), "-key", "media_b_port", strconv.Itoa(o.mediaB.Port),
		"-m", strconv.Itoa(o.calls), "-nostdin", "-timeout", secs+"s", "-trace_err", "-trace_screen")
	uas.Dir = dir
	uas.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	uasOut, err := os.Create(filepath.Join(dir, "uas.out"))
	if err != nil {
		return callResult{}, err
	}
	defer uasOut.Close()
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		return callResult{}, fmt.Errorf("sipp callee: %w", err)
	}
	uasDone := make(chan error, 1)
	go func() { uasDone <- uas.Wait() }()
	defer func() {
		// The callee exits by itself after its calls; a failed run leaves it waiting.
		select {
		case <-uasDone:
		case <-time.After(3 * time.Second):
			_ = uas.Process.Kill()
			<-uasDone
		}
	}()
	time.Sleep(200 * time.Millisecond) // let it bind
	args := []string{target, "-sf", "uac.xml", "-s", p.Number, "-i", p.CallerIP, "-p", strconv.Itoa(callerPort),
		"-mi", p.CallerIP, "-mp", strconv.Itoa(mpA),
		"-key", "media_a_ip", o.mediaA.IP.String(), "-key", "media_a_port", strconv.Itoa(o.mediaA.Port),
		"-m", strconv.Itoa(o.calls), "-r", strconv.Itoa(o.rate), "-d", strconv.Itoa(int(o.hold.Milliseconds())),
		"-l", strconv.Itoa(o.calls), "-recv_timeout", "10000", "-default_behaviors", "all,-abortunexp", "-timeout", secs + "s", "-nostdin",
		"-trace_rtt", "-rtt_freq", "1", "-trace_screen", "-trace_err"}
	if o.logs {
		args = append(args, "-trace_logs")
	}
	uac := exec.CommandContext(ctx, p.SIPp, args...)
	uac.Dir = dir
	uac.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := os.Create(filepath.Join(dir, "uac.out"))
	if err != nil {
		return callResult{}, err
	}
	defer out.Close()
	uac.Stdout, uac.Stderr = out, out
	if err := uac.Start(); err != nil {
		return callResult{}, err
	}
	for _, f := range started {
		f(dir)
	}
	err = uac.Wait()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		// 0: all calls succeeded, 1: some failed; anything else is SIPp failing to run.
		return callResult{}, fmt.Errorf("sipp caller: %w\n%s%s", err, tailFiles(dir, "uac.out"), tailFiles(dir, "uac_*_errors.log"))
	}
	return parseCaller(dir, o.calls)
}

// parseCaller reads the caller's final screen (calls and retransmissions) and per-call
// response times.
func parseCaller(dir string, calls int) (callResult, error) {
	var r callResult
	screens, _ := filepath.Glob(filepath.Join(dir, "uac_*_screen.log"))
	if len(screens) == 0 {
		return r, fmt.Errorf("no caller screen log in %s", dir)
	}
	b, err := os.ReadFile(screens[0])
	if err != nil {
		return r, err
	}
	success := -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.ReplaceAll(line, "|", " "))
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "Successful call") && len(f) >= 4:
			success, _ = strconv.Atoi(f[len(f)-1])
		case strings.Contains(line, "---------->") && len(f) >= 4:
			// "INVITE ---------->  B-RTD1 2   0   0": messages, retrans, timeouts.
			if nums := numericFields(f); len(nums) >= 2 {
				r.retrans += nums[1]
			}
		case strings.Contains(line, "Pause [") && len(f) >= 4:
			// "Pause [  0ms]  1499   0": calls paused, unexpected.
			if nums := numericFields(f); len(nums) >= 2 {
				r.unexpected += nums[1]
			}
		case strings.Contains(line, "<----------") && len(f) >= 4:
			// "200 <----------  E-RTD1 2   0   0   0": code, messages, retrans, timeouts,
			// unexpected.
			if nums := numericFields(f); len(nums) >= 5 {
				r.unexpected += nums[4]
			}
		}
	}
	if success < 0 {
		return r, fmt.Errorf("no call counts in %s", screens[0])
	}
	r.failed = calls - success
	rtts, _ := filepath.Glob(filepath.Join(dir, "uac_*_rtt.csv"))
	var first, last float64
	for _, name := range rtts {
		f, err := os.Open(name)
		if err != nil {
			return r, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// Date_ms;response_time_ms;rtd_no
			parts := strings.Split(sc.Text(), ";")
			if len(parts) < 3 {
				continue
			}
			at, err1 := strconv.ParseFloat(parts[0], 64)
			ms, err2 := strconv.ParseFloat(parts[1], 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if len(r.rtts) == 0 || at < first {
				first = at
			}
			last = max(last, at)
			r.rtts = append(r.rtts, time.Duration(ms*float64(time.Millisecond)))
		}
		_ = f.Close()
	}
	if n := len(r.rtts); n > 1 && last > first {
		r.achieved = float64(n-1) / ((last - first) / 1000)
	}
	return r, nil
}

func numericFields(f []string) []int {
	var n []int
	for _, s := range f {
		if v, err := strconv.Atoi(s); err == nil {
			n = append(n, v)
		}
	}
	return n
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func tailFiles(dir, pattern string) string {
	names, _ := filepath.Glob(filepath.Join(dir, pattern))
	var b strings.Builder
	for _, n := range names {
		data, _ := os.ReadFile(n)
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		b.Write(data)
	}
	return b.String()
}

func globOne(dir, pattern string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(names) == 0 {
		return "", err
	}
	return names[0], nil
}
