package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/test/browser"
)

// confPeer is a PSTN person's phone in the conference test: the RTP socket a SIPp leg's SDP
// names (uac_listen.xml, uas_listen.xml). Once telgw sends to it, it answers from the same
// socket (symmetric RTP) with a steady sine at its own frequency in 20 ms PCMU frames, and it
// keeps what it hears, decoded, so the test can tell whose voices reach it.
type confPeer struct {
	name string
	freq float64
	conn *net.UDPConn

	mu     sync.Mutex
	remote *net.UDPAddr
	heard  []int16
}

func newConfPeer(t *testing.T, name string, freq float64) *confPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(carrierIP)})
	if err != nil {
		t.Fatal(err)
	}
	p := &confPeer{name: name, freq: freq, conn: c}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = c.Close()
		<-done
	})
	go func() {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			hn, err := h.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			p.mu.Lock()
			if p.remote == nil {
				p.remote = from
			}
			if h.PayloadType == 0 {
				p.heard = audio.PCMU.Decode(p.heard, buf[hn:n])
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]int16, audio.FrameSamples)
		pkt := make([]byte, 12+audio.FrameSamples)
		var seq uint16
		var ts uint32
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p.mu.Lock()
			to := p.remote
			p.mu.Unlock()
			ts += audio.FrameSamples
			if to == nil {
				continue
			}
			for i := range frame {
				frame[i] = int16(4000 * math.Sin(2*math.Pi*freq*float64(int(ts)+i)/8000))
			}
			h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: 0x5eed0000 + uint32(freq), Marker: seq == 0}
			seq++
			hn, _ := h.MarshalTo(pkt)
			payload := audio.PCMU.Encode(pkt[hn:hn], frame)
			if _, err := c.WriteToUDP(pkt[:hn+len(payload)], to); err != nil {
				return
			}
		}
	}()
	return p
}

func (p *confPeer) port() string { return strconv.Itoa(p.conn.LocalAddr().(*net.UDPAddr).Port) }

// levels listens for 500 ms (after 100 ms to settle) and returns the amplitude heard at each
// frequency (Goertzel; a 4000-peak sine reads ≈4000).
func (p *confPeer) levels(t *testing.T, freqs ...float64) map[float64]float64 {
	t.Helper()
	p.mu.Lock()
	p.heard = p.heard[:0]
	p.mu.Unlock()
	const skip, want = 800, 800 + 4000
	var pcm []int16
	for deadline := time.Now().Add(10 * time.Second); pcm == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		if len(p.heard) >= want {
			pcm = append([]int16(nil), p.heard[skip:want]...)
		}
		p.mu.Unlock()
	}
	if pcm == nil {
		t.Fatalf("%s heard no audio", p.name)
	}
	out := map[float64]float64{}
	for _, f := range freqs {
		var re, im float64
		for i, s := range pcm {
			w := 2 * math.Pi * f * float64(i) / 8000
			re += float64(s) * math.Cos(w)
			im -= float64(s) * math.Sin(w)
		}
		out[f] = 2 * math.Hypot(re, im) / float64(len(pcm))
	}
	return out
}

func (p *confPeer) expect(t *testing.T, what string, yes, no []float64) {
	t.Helper()
	lv := p.levels(t, append(append([]float64(nil), yes...), no...)...)
	for _, f := range yes {
		if lv[f] < 1000 {
			t.Errorf("%s: %s does not hear %v Hz (levels %v)", what, p.name, f, lv)
		}
	}
	for _, f := range no {
		if lv[f] > 300 {
			t.Errorf("%s: %s hears %v Hz (levels %v)", what, p.name, f, lv)
		}
	}
}

// confBrowser is test/peers/conference_phone.mjs: JsSIP in Chromium answering one call,
// speaking fWeb and sampling what it hears.
type confBrowser struct {
	lines chan string
	res   chan confBrowserResult
}

type confBrowserResult struct {
	Registered bool   `json:"registered"`
	CallStatus string `json:"callStatus"`
	Stats      *struct {
		PacketsReceived int64  `json:"packetsReceived"`
		PacketsSent     int64  `json:"packetsSent"`
		Codec           string `json:"codec"`
	} `json:"stats"`
	Samples []struct {
		T  int64              `json:"t"`
		Lv map[string]float64 `json:"lv"`
	} `json:"samples"`
	Log   []string `json:"log"`
	Error string   `json:"error"`
}

func startConfBrowser(t *testing.T, tg *Telgw, token string, tone float64, freqs string) *confBrowser {
	t.Helper()
	chromium := browser.Require(t)
	b := &confBrowser{lines: make(chan string, 16), res: make(chan confBrowserResult, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(browser.Dir(), "..", "peers", "conference_phone.mjs"))
	cmd.Env = append(os.Environ(), "PHONE_URL="+tg.Endpoint+"phone/", "PHONE_TOKEN="+token, "CHROMIUM="+chromium,
		"PHONE_TONE_HZ="+strconv.FormatFloat(tone, 'f', -1, 64), "PHONE_FREQS="+freqs, "PHONE_TIMEOUT_MS=60000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var res confBrowserResult
		for sc.Scan() {
			if j, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
				if err := json.Unmarshal([]byte(j), &res); err != nil {
					res.Error = "bad report: " + err.Error()
				}
				continue
			}
			b.lines <- sc.Text()
		}
		if err := cmd.Wait(); err != nil && res.Error == "" {
			res.Error = err.Error() + ": " + stderr.String()
		}
		b.res <- res
	}()
	return b
}

// waitLine waits for the script to print line.
func (b *confBrowser) waitLine(t *testing.T, line string) {
	t.Helper()
	timer := time.NewTimer(40 * time.Second)
	defer timer.Stop()
	for {
		select {
		case l := <-b.lines:
			if l == line {
				return
			}
		case res := <-b.res:
			t.Fatalf("the browser stopped before %s: %+v", line, res)
		case <-timer.C:
			t.Fatalf("the browser never printed %s", line)
		}
	}
}

// median level (dBFS) the browser heard at f between from and to.
func (r confBrowserResult) median(f string, from, to time.Time) (float64, int) {
	var v []float64
	for _, s := range r.Samples {
		if s.T >= from.UnixMilli() && s.T < to.UnixMilli() {
			v = append(v, s.Lv[f])
		}
	}
	if len(v) == 0 {
		return math.Inf(-1), 0
	}
	sort.Float64s(v)
	return v[len(v)/2], len(v)
}

// TestConferenceBrowserAndPSTN: a three-way conference on a real telgw: a carrier's caller (A,
// SIPp whose RTP is the test's tone peer at 700 Hz) calls an app's number, the app adds a PSTN
// participant (B, SIPp callee, tone peer at 1100 Hz) and a communication user whose JsSIP
// softphone in headless Chromium answers and speaks 1500 Hz. Each hears the other two and not
// themselves (Goertzel on what the peers receive; analyser levels in the browser); muting the
// user takes 1500 Hz out of what A and B hear; muting A takes 700 Hz out of what the browser
// and B hear. Terminate ends every leg.
func TestConferenceBrowserAndPSTN(t *testing.T) {
	browser.Require(t)
	sippBin(t)
	const farNumber = "+12025550142"
	const fA, fB, fWeb = 700.0, 1100.0, 1500.0
	farPort := freePortOn(t, carrierIP)
	tg, c, token, userID, app := userAppGateway(t, farPort)
	routes := map[string]any{"routes": []map[string]any{{"name": "us", "numberPattern": `\+1[2-9]\d{9}`, "trunks": []string{"carrier1"}}}}
	if r := c.Do(t, "PATCH", "/sip?"+sipRoutingV, routes, func(req *http.Request) {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}); r.Status != http.StatusOK {
		t.Fatalf("sip routes: %d %s", r.Status, r.Body)
	}
	web := startConfBrowser(t, tg, token, fWeb, "700,1100,1500")
	web.waitLine(t, "REGISTERED")

	pa, pb := newConfPeer(t, "A (caller)", fA), newConfPeer(t, "B (PSTN participant)", fB)
	far := sippRunFor(t, scenarioCopy(t, "RTP_IP", carrierIP, "RTP_PORT", pb.port()), 90*time.Second,
		"-sf", "uas_listen.xml", "-i", carrierIP, "-p", strconv.Itoa(farPort), "-m", "1")
	caller := sippRunFor(t, scenarioCopy(t, "RTP_IP", carrierIP, "RTP_PORT", pa.port()), 90*time.Second,
		tg.Addrs.SIP, "-sf", "uac_listen_bye.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", appNumber, "-key", "caller", pstnNumber, "-m", "1")
	app.waitFor(t, "IncomingCall", func() bool { return len(app.incoming) > 0 })
	app.mu.Lock()
	data, _ := app.incoming[0]["data"].(map[string]any)
	app.mu.Unlock()
	r := c.Do(t, "POST", "/calling/callConnections:answer?api-version=2025-05-15", map[string]any{
		"incomingCallContext": data["incomingCallContext"], "callbackUri": app.URL + "/callbacks"})
	if r.Status != http.StatusOK {
		t.Fatalf("answer: %d %s", r.Status, r.Body)
	}
	var conn struct {
		CallConnectionID string `json:"callConnectionId"`
	}
	r.JSON(t, &conn)
	base := "/calling/callConnections/" + conn.CallConnectionID
	count := func(typ string) func() bool {
		return func() bool {
			n := 0
			for _, ev := range app.callbacks {
				if ev["type"] == "Microsoft.Communication."+typ {
					n++
				}
			}
			return n > 0 && (typ != "AddParticipantSucceeded" || n >= 2)
		}
	}
	app.waitFor(t, "CallConnected", count("CallConnected"))
	for _, target := range []map[string]any{
		{"kind": "phoneNumber", "phoneNumber": map[string]string{"value": farNumber}},
		{"kind": "communicationUser", "communicationUser": map[string]string{"id": userID}},
	} {
		if r := c.Do(t, "POST", base+"/participants:add?api-version=2025-05-15", map[string]any{"participantToAdd": target}); r.Status != http.StatusAccepted {
			t.Fatalf("add: %d %s", r.Status, r.Body)
		}
	}
	web.waitLine(t, "ANSWERED")
	app.waitFor(t, "two AddParticipantSucceeded", count("AddParticipantSucceeded"))

	// Three-way: each hears the others, not themselves.
	mixed := time.Now()
	pa.expect(t, "three-way", []float64{fB, fWeb}, []float64{fA})
	pb.expect(t, "three-way", []float64{fA, fWeb}, []float64{fB})
	time.Sleep(time.Second) // the browser samples every 200 ms: give it a window to judge
	mute := func(target map[string]any) time.Time {
		t.Helper()
		at := time.Now()
		if r := c.Do(t, "POST", base+"/participants:mute?api-version=2025-05-15", map[string]any{"targetParticipants": []any{target}}); r.Status != http.StatusOK {
			t.Fatalf("mute: %d %s", r.Status, r.Body)
		}
		return at
	}
	mutedWeb := mute(map[string]any{"kind": "communicationUser", "communicationUser": map[string]string{"id": userID}})
	pa.expect(t, "the user muted", []float64{fB}, []float64{fA, fWeb})
	pb.expect(t, "the user muted", []float64{fA}, []float64{fB, fWeb})
	mutedA := mute(map[string]any{"kind": "phoneNumber", "phoneNumber": map[string]string{"value": pstnNumber}})
	pb.expect(t, "the caller muted too", nil, []float64{fA, fB, fWeb})
	time.Sleep(time.Second)
	end := time.Now()
	if r := c.Do(t, "POST", base+":terminate?api-version=2025-05-15", map[string]any{}); r.Status/100 != 2 {
		t.Fatalf("terminate: %d %s", r.Status, r.Body)
	}
	res := <-web.res
	if res.Error != "" || res.Stats == nil {
		t.Fatalf("browser: %+v", res)
	}
	t.Logf("browser: %d samples, RTP received %d sent %d, codec %s", len(res.Samples), res.Stats.PacketsReceived, res.Stats.PacketsSent, res.Stats.Codec)
	// The browser's levels (dBFS at the analyser): a voice reads ≈ -30, nothing below -70.
	const heard, silent = -50.0, -65.0
	check := func(what string, from, to time.Time, yes, no []string) {
		t.Helper()
		var got []string
		for _, f := range append(append([]string(nil), yes...), no...) {
			m, n := res.median(f, from.Add(300*time.Millisecond), to)
			got = append(got, fmt.Sprintf("%s Hz %.1f dBFS (%d samples)", f, m, n))
		}
		t.Logf("the browser, %s: %s", what, strings.Join(got, ", "))
		for _, f := range yes {
			if m, n := res.median(f, from.Add(300*time.Millisecond), to); n < 2 || m < heard {
				t.Errorf("%s: the browser does not hear %s Hz (median %.1f dBFS of %d samples)", what, f, m, n)
			}
		}
		for _, f := range no {
			if m, n := res.median(f, from.Add(300*time.Millisecond), to); n < 2 || m > silent {
				t.Errorf("%s: the browser hears %s Hz (median %.1f dBFS of %d samples)", what, f, m, n)
			}
		}
	}
	check("three-way", mixed, mutedWeb, []string{"700", "1100"}, []string{"1500"})
	check("the caller muted", mutedA, end, []string{"1100"}, []string{"700", "1500"})
	caller(30 * time.Second)
	far(30 * time.Second)
}
