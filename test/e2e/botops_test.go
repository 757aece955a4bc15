package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/speech"
)

// TestBotOpsSDK: an IVR written with the npm @azure/communication-call-automation 1.6.0 SDK
// (test/peers/callautomation_ops.mjs) answers a SIPp caller (uac_ivr.xml) on a real telgw
// serve: continuous DTMF reports the caller's 1 (RFC 4733, SIPp's pcap) with sequenceId 1 and
// stops; a choices recognition behind an SSML prompt hears SIPp say "billing" (espeak-ng
// audio made here, streamed as μ-law RTP; pocketsphinx with the choices' grammar) →
// choiceResult billing; hold with music re-INVITEs SIPp with a=sendonly (its scenario checks)
// and unhold with a=sendrecv.
func TestBotOpsSDK(t *testing.T) {
	sippBin(t)
	peers := requireNodePeers(t)
	const pcaps = "/usr/share/sip-tester"
	sphinx := speech.DefaultSphinxConfig()
	for _, f := range []string{pcaps + "/dtmf_2833_1.pcap", sphinx.Dict} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skipf("%s is not installed", f)
		}
	}
	es, err := speech.NewEspeak(speech.DefaultEspeakConfig())
	if err != nil {
		t.Fatal(err)
	}
	said, err := es.Synthesize(context.Background(), speech.SynthRequest{Text: "billing", VoiceName: "en-US-GuyNeural"})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("espeak-ng: %v", err)
	}
	const botNumber = "+14252000145"
	dir := t.TempDir()
	cfg := fmt.Sprintf("webhooks:\n  allowPrivate: true\nsip:\n  trunks:\n"+
		"    - name: carrier1\n      address: %s:%d\n      inbound: {allow: [\"%s/32\"]}\n", carrierIP, freePortOn(t, carrierIP), carrierIP)
	cfgPath := filepath.Join(dir, "telgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	c := NewClient(t, tg.ConnString)
	buyNumber(t, c, botNumber)
	app := startNodeApp(t, peers, "callautomation_ops.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString, "CALLER_NUMBER="+pstnNumber)
	appURL := app.wait(t, "APP_URL=")
	if r := c.Do(t, "PUT", "/telgw/numbers/"+url.PathEscape(botNumber)+"/route", map[string]string{"route": "bot:" + appURL + "/callbacks"}); r.Status/100 != 2 {
		t.Fatalf("route: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": appURL + "/events", "secret": "s",
		"eventTypes": []string{events.TypeIncomingCall}}); r.Status != http.StatusCreated {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	sc := scenarioCopy(t, "PCAP_DIR", pcaps, "WAIT_MS", "2500", "SPEECH_MS", "2000", "AUDIO_FILE", "billing.ul", "HOLD_MS", "1000")
	// "billing" after a second of silence, then a second more.
	pcm := append(make([]int16, 8000), said...)
	pcm = append(pcm, make([]int16, 8000)...)
	if err := os.WriteFile(filepath.Join(sc, "billing.ul"), audio.PCMU.Encode(nil, pcm), 0o644); err != nil {
		t.Fatal(err)
	}
	caller := sippRunFor(t, sc, 90*time.Second, tg.Addrs.SIP, "-sf", "uac_ivr.xml", "-i", carrierIP, "-p", strconv.Itoa(freePortOn(t, carrierIP)),
		"-s", botNumber, "-key", "caller", pstnNumber, "-m", "1", "-mp", strconv.Itoa(freePortOn(t, carrierIP)))
	app.wait(t, "OPS OK")
	caller(40 * time.Second)
	app.exit(t)
	for _, op := range []string{"hold", "unhold", "startContinuousDtmfRecognition", "stopContinuousDtmfRecognition", "recognize"} {
		if n := labeledMetric(t, tg.Endpoint, "telgw_callautomation_operations_total", `operation="`+op+`",result="ok"`); n < 1 {
			t.Errorf("telgw_callautomation_operations_total{operation=%q,result=\"ok\"} = %v", op, n)
		}
	}
}
