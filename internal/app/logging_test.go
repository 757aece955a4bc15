package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/telgw/telgw/config"
)

// lines decodes JSON log lines, failing on a duplicate key.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		// Walk the tokens: decoding into a map would hide duplicates.
		dec := json.NewDecoder(strings.NewReader(l))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object: %q", l)
		}
		row := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			var v any
			if err == nil {
				err = dec.Decode(&v)
			}
			if err != nil {
				t.Fatalf("not JSON: %q: %v", l, err)
			}
			if _, dup := row[k.(string)]; dup {
				t.Errorf("duplicate key %q in %s", k, l)
			}
			row[k.(string)] = v
		}
		out = append(out, row)
	}
	return out
}

// TestLoggerOneKeyOnce: keys added along the way (component=sip then component=sipgo, sipgo's
// caller at each layer, a record attribute repeating a With one) appear once, the last value.
func TestLoggerOneKeyOnce(t *testing.T) {
	var b bytes.Buffer
	log := NewLogger(config.Log{Level: "debug", Format: "json"}, &b)
	log.With("component", "sip").With("component", "sipgo", "caller", "TransportLayer").With("caller", "Transport<UDP>").
		Info("begin listening", "addr", "127.0.0.1:5060", "caller", "udp")
	log.With("component", "sms").WithGroup("g").Info("grouped", "k", 1)
	got := lines(t, &b)
	if len(got) != 2 || got[0]["component"] != "sipgo" || got[0]["caller"] != "udp" || got[0]["addr"] != "127.0.0.1:5060" {
		t.Fatalf("%v", got)
	}
	if got[1]["component"] != "sms" || got[1]["g"].(map[string]any)["k"] != float64(1) {
		t.Fatalf("group: %v", got[1])
	}
}

// TestQuietLoggers: River's Info chatter is demoted to Debug, its warnings stay; sipgo's
// reference-count noise is demoted even at Warn.
func TestQuietLoggers(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		var b bytes.Buffer
		log := NewLogger(config.Log{Level: level, Format: "json"}, &b)
		river := quiet(log.With("component", "river"))
		river.Info("producer: Run loop started")
		river.Warn("job failed")
		sipgo := slog.New(&shiftHandler{h: log.Handler(), below: slog.LevelWarn, noise: []string{"ref went negative"}})
		sipgo.Info("Unhandled sip request")
		sipgo.Warn("WS ref went negative")
		sipgo.Error("listener failed")
		var msgs []string
		for _, l := range lines(t, &b) {
			msgs = append(msgs, l["level"].(string)+" "+l["msg"].(string))
		}
		want := "WARN job failed|ERROR listener failed"
		if level == "debug" {
			want = "DEBUG producer: Run loop started|WARN job failed|DEBUG Unhandled sip request|DEBUG WS ref went negative|ERROR listener failed"
		}
		if got := strings.Join(msgs, "|"); got != want {
			t.Errorf("log.level %s:\n got %s\nwant %s", level, got, want)
		}
	}
}
