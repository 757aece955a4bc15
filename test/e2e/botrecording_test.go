package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/media/audio"
)

// TestBotRecordingSDK: a bot written with the npm @azure/communication-call-automation 1.6.0
// SDK (test/peers/callautomation_recording.mjs) answers a SIPp caller streaming a 440 Hz tone
// (G.711 RTP from a file) on a real telgw serve and records the call: start, pause, resume,
// stop; RecordingStateChanged to its recording callback; RecordingFileStatusUpdated to its
// Event Grid webhook; downloadToPath of the WAV and the metadata, downloadStreaming of a
// range, delete then 404; then a mixed mp3 recording (encoded by Debian's lame), downloaded.
// The WAV it downloaded is checked here: 8 kHz 16-bit mono, as long as the time the app
// recorded (±0.3 s, the paused second left out), the tone's energy throughout; the MP3 decodes
// (go-mp3) to its recorded time (±0.3 s, plus lame's encoder delay and padding) with the tone
// in it. On SQLite and on PostgreSQL.
func TestBotRecordingSDK(t *testing.T) {
	sippBin(t)
	_, err := exec.LookPath("lame")
	requirePeer(t, err == nil, "lame (apt-get install -y lame)")
	peers := requireNodePeers(t)
	for _, pg := range []bool{false, true} {
		name := "SQLite"
		if pg {
			name = "PostgreSQL"
		}
		t.Run(name, func(t *testing.T) { botRecording(t, peers, pg) })
	}
}

func botRecording(t *testing.T, peers string, pg bool) {
	const botNumber = "+14252000145"
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nmedia:\n  recording:\n    locationURL: https://telgw-recordings.asm.skype.com/\nsip:\n  trunks:\n"+
		"    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n", carrierIP, freePortOn(t, carrierIP), carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Postgres: pg, Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	out := t.TempDir()
	app := startNodeApp(t, peers, "callautomation_recording.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString,
		"TELGW_ENDPOINT="+tg.Endpoint, "CALLER_NUMBER="+pstnNumber, "OUT_DIR="+out)
	appURL := app.wait(t, "APP_URL=")
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + appURL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": appURL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall, events.TypeRecordingFileStatusUpdated}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	sc := scenarioCopy(t, "AUDIO_FILE", "tone.ul", "HOLD_MS", "12000")
	pcm := make([]int16, 14*8000)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	if err := os.WriteFile(filepath.Join(sc, "tone.ul"), audio.PCMU.Encode(nil, pcm), 0o644); err != nil {
		t.Fatal(err)
	}
	caller := sippRunFor(t, sc, 60*time.Second, tg.Addrs.SIP, "-sf", "uac_inband.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	var res struct {
		WAV           string `json:"wav"`
		RecordedMs    int64  `json:"recordedMs"`
		DurationMs    int64  `json:"durationMs"`
		MP3           string `json:"mp3"`
		MP3RecordedMs int64  `json:"mp3RecordedMs"`
		MP3DurationMs int64  `json:"mp3DurationMs"`
	}
	if err := json.Unmarshal([]byte(app.wait(t, "RESULT=")), &res); err != nil {
		t.Fatal(err)
	}
	app.wait(t, "RECORDING OK")
	b, err := os.ReadFile(res.WAV)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audio.ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Samples()
	got := time.Duration(len(s)) * time.Second / 8000
	want := time.Duration(res.RecordedMs) * time.Millisecond
	t.Logf("recorded %v (the app's clock: %v; recordingDurationMs %d)", got, want, res.DurationMs)
	if w.Format != audio.FormatPCM || w.Channels != 1 || w.Rate != 8000 || w.Bits != 16 {
		t.Fatalf("WAV %+v", w)
	}
	if math.Abs((got-want).Seconds()) > 0.3 || res.DurationMs != got.Milliseconds() {
		t.Errorf("the file lasts %v, the app recorded %v (event says %d ms)", got, want, res.DurationMs)
	}
	// The caller's tone is in the file: every 100 ms window after the jitter buffer's first
	// 40 ms is loud (≈ -12 dBFS; silence would be 0).
	quiet := 0
	for i := 320; i+800 <= len(s); i += 800 {
		var e float64
		for _, v := range s[i : i+800] {
			e += float64(v) * float64(v)
		}
		if math.Sqrt(e/800) < 2000 {
			quiet++
		}
	}
	if quiet > 1 {
		t.Errorf("%d quiet 100 ms windows in a recording of a caller talking throughout", quiet)
	}
	mb, err := os.ReadFile(res.MP3)
	if err != nil {
		t.Fatal(err)
	}
	mp3, err := audio.LoadPrompt(mb) // go-mp3, resampled to 8 kHz
	if err != nil {
		t.Fatalf("the MP3 does not decode: %v", err)
	}
	md := time.Duration(len(mp3)) * time.Second / 8000
	var e float64
	for _, v := range mp3 {
		e += float64(v) * float64(v)
	}
	rms := math.Sqrt(e / float64(max(len(mp3), 1)))
	t.Logf("mp3: %d bytes, decodes to %v (the app's clock: %d ms; recordingDurationMs %d); RMS %.0f", len(mb), md, res.MP3RecordedMs, res.MP3DurationMs, rms)
	if math.Abs(md.Seconds()-float64(res.MP3RecordedMs)/1000) > 0.3+0.11 || md < time.Duration(res.MP3DurationMs)*time.Millisecond || rms < 2000 {
		t.Errorf("the MP3 decodes to %v, the app recorded %d ms (event says %d ms), RMS %.0f", md, res.MP3RecordedMs, res.MP3DurationMs, rms)
	}
	caller(40 * time.Second)
	app.exit(t)
}
