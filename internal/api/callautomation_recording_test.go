package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/calls/callstest"
)

// fakeRecorder is a transport that records by writing a fixed file on Stop.
type fakeRecorder struct {
	fakeControl
	mu    sync.Mutex
	specs []calls.RecordingSpec
}

type fakeHandle struct {
	path   string
	paused bool
	ended  chan struct{}
	once   sync.Once
}

func (f *fakeRecorder) Record(spec calls.RecordingSpec) (calls.RecordingHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	return &fakeHandle{path: spec.Path, paused: spec.Paused, ended: make(chan struct{})}, nil
}

func (h *fakeHandle) Pause()                 { h.paused = true }
func (h *fakeHandle) Resume()                { h.paused = false }
func (h *fakeHandle) Ended() <-chan struct{} { return h.ended }
func (h *fakeHandle) Stop() calls.RecordingResult {
	h.once.Do(func() { _ = os.WriteFile(h.path, []byte("RIFF....WAVEfmt 0123456789abcdef0123456789"), 0o600) })
	return calls.RecordingResult{Duration: time.Second, Bytes: 44, Participants: []calls.Participant{calls.Phone("+12125550199")}}
}

type capFiles struct{ ch chan calls.RecordingFile }

func (c capFiles) PublishRecordingFile(_ context.Context, f calls.RecordingFile) error {
	c.ch <- f
	return nil
}

// fileRequest sends a request to a recording location as the SDK's content downloader does:
// signed for the endpoint's host (x-ms-host) and path, sent to the location.
func fileRequest(t *testing.T, method, location, endpointHost string, key []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, location, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if key != nil {
		req.Header.Set("x-ms-host", endpointHost)
		Sign(key, method, req.URL.Path, endpointHost, nil, time.Now(), req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestCallRecordingAPI(t *testing.T) {
	t.Parallel()
	a, pub, cbs, _, _ := automationServer(t)
	files := capFiles{ch: make(chan calls.RecordingFile, 4)}
	// The recording routes on a server of their own, so the locations can name it.
	reg := prometheus.NewRegistry()
	s := New(Config{Registry: reg, Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }, Skew: 15 * time.Minute}})
	s.MountCallAutomation(a)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	recs, err := calls.NewRecordings(a, calls.RecordingsConfig{Store: callstest.NewRecordings(), Dir: t.TempDir(),
		Publisher: files, Locations: func() string { return srv.URL + "/" }})
	if err != nil {
		t.Fatal(err)
	}
	s.MountCallRecording(recs)
	token := answerWith(t, a, pub, &fakeRecorder{})
	var conn callConnectionJSON
	if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, `{"incomingCallContext":"`+token+`","callbackUri":"https://app.example/cb"}`, true, &conn); code != 200 {
		t.Fatalf("answer: %d", code)
	}
	locator := `{"callLocator":{"kind":"serverCallLocator","serverCallId":"` + conn.ServerCallID + `"}`
	for _, c := range []struct {
		body, target string
		code         int
	}{
		{`{}`, "callLocator", 400},
		{`{"callLocator":{"kind":"groupCallLocator","groupCallId":"g"}}`, "callLocator.groupCallId", 400},
		{`{"callLocator":{"kind":"serverCallLocator","serverCallId":"nope"}}`, "callLocator.serverCallId", 404},
		{locator + `,"recordingFormatType":"mp3"}`, "recordingFormatType", 400},
		{locator + `,"recordingContentType":"audioVideo"}`, "recordingContentType", 400},
		{locator + `,"recordingChannelType":"stereo"}`, "recordingChannelType", 400},
		{locator + `,"recordingChannelType":"unmixed","channelAffinity":[{"channel":7,"participant":{"phoneNumber":{"value":"+12125550199"}}}]}`, "channelAffinity.channel", 400},
		{locator + `,"recordingStateCallbackUri":"ftp://x"}`, "recordingStateCallbackUri", 400},
		{locator + `,"externalStorage":{"recordingStorageKind":"azureBlobStorage"}}`, "externalStorage", 400},
	} {
		var e ErrorBody
		if code := call(t, srv, "POST", "/calling/recordings"+caVersion, c.body, true, &e); code != c.code || e.Error.Target != c.target {
			t.Errorf("%s: %d %+v, want %d naming %s", c.body, code, e.Error, c.code, c.target)
		}
	}
	var st recordingStateJSON
	if code := call(t, srv, "POST", "/calling/recordings"+caVersion, locator+`,"recordingContentType":"audio","recordingChannelType":"mixed","recordingFormatType":"wav","recordingStateCallbackUri":"https://app.example/rec"}`, true, &st); code != 200 ||
		st.RecordingState != "active" || len(st.RecordingID) < 40 || st.RecordingKind != "azureCommunicationServices" {
		t.Fatalf("start: %d %+v", code, st)
	}
	if code := call(t, srv, "POST", "/calling/recordings"+caVersion, locator+`}`, true, nil); code != 409 {
		t.Errorf("a second recording: %d", code)
	}
	rec := "/calling/recordings/" + st.RecordingID
	if code := call(t, srv, "GET", rec+caVersion, "", false, nil); code != 401 {
		t.Errorf("unsigned get: %d", code)
	}
	if code := call(t, srv, "POST", rec+":pause"+caVersion, "", true, nil); code != 202 {
		t.Errorf("pause: %d", code)
	}
	var got recordingStateJSON
	if code := call(t, srv, "GET", rec+caVersion, "", true, &got); code != 200 || got.RecordingState != "inactive" {
		t.Errorf("state after pause: %d %+v", code, got)
	}
	if code := call(t, srv, "POST", rec+":resume"+caVersion, "", true, nil); code != 202 {
		t.Errorf("resume: %d", code)
	}
	if code := call(t, srv, "POST", rec+":rewind"+caVersion, "", true, nil); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
	if code := call(t, srv, "DELETE", rec+caVersion, "", true, nil); code != 204 {
		t.Fatalf("stop: %d", code)
	}
	if code := call(t, srv, "DELETE", rec+caVersion, "", true, nil); code != 404 {
		t.Errorf("stop again: %d", code)
	}
	if code := call(t, srv, "GET", rec+caVersion, "", true, &got); code != 200 || got.RecordingState != "inactive" {
		t.Errorf("state after stop: %d %+v", code, got)
	}
	if code := call(t, srv, "GET", "/calling/recordings/nope"+caVersion, "", true, nil); code != 404 {
		t.Errorf("unknown recording: %d", code)
	}
	f := <-files.ch
	if !strings.HasPrefix(f.ContentLocation, srv.URL+"/v1/objects/0-") || f.MetadataLocation != f.DeleteLocation+"/content/acsmetadata" {
		t.Fatalf("locations %+v", f)
	}
	cbs.mu.Lock()
	n := strings.Count(strings.Join(cbs.types, " "), "RecordingStateChanged")
	cbs.mu.Unlock()
	if n != 4 {
		t.Errorf("%d RecordingStateChanged, want 4 (active, inactive, active, inactive)", n)
	}

	// The file, as the SDK downloads it: signed for the endpoint's host, Range honoured.
	const endpoint = "acs.example.com"
	if code, _, _ := fileRequest(t, "GET", f.ContentLocation, endpoint, nil, nil); code != 401 {
		t.Errorf("unsigned download: %d", code)
	}
	if code, _, _ := fileRequest(t, "GET", f.ContentLocation, endpoint, []byte("another resource's key"), nil); code != 401 {
		t.Errorf("download signed with another key: %d", code)
	}
	code, hdr, body := fileRequest(t, "GET", f.ContentLocation, endpoint, testKey, nil)
	if code != 200 || !strings.HasPrefix(string(body), "RIFF") || hdr.Get("Content-Type") != "audio/wav" {
		t.Fatalf("download: %d %q %v", code, body, hdr)
	}
	code, h, part := fileRequest(t, "GET", f.ContentLocation, endpoint, testKey, map[string]string{"Range": "bytes=4-7"})
	if code != 206 || string(part) != "...." || h.Get("Content-Range") != "bytes 4-7/"+strconv.Itoa(len(body)) {
		t.Errorf("range: %d %q %v", code, part, h)
	}
	code, _, md := fileRequest(t, "GET", f.MetadataLocation, endpoint, testKey, nil)
	if code != 200 || !strings.Contains(string(md), `"participantId":"4:+12125550199"`) || !strings.Contains(string(md), `"chunkDocumentId":"`+f.Recording.DocumentID) {
		t.Errorf("metadata: %d %s", code, md)
	}
	if code, _, _ := fileRequest(t, "GET", strings.Replace(f.ContentLocation, f.Recording.DocumentID, f.Recording.ID, 1), endpoint, testKey, nil); code != 404 {
		t.Errorf("a recordingId is not a document: %d", code)
	}
	if code, _, _ := fileRequest(t, "DELETE", f.DeleteLocation, endpoint, testKey, nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code, _, _ := fileRequest(t, "GET", f.ContentLocation, endpoint, testKey, nil); code != 404 {
		t.Errorf("download after delete: %d", code)
	}
	if code, _, _ := fileRequest(t, "DELETE", f.DeleteLocation, endpoint, testKey, nil); code != 404 {
		t.Errorf("delete again: %d", code)
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{{"start", "ok", 1}, {"start", "invalid", 8}, {"pause", "ok", 1}, {"download", "ok", 3}, {"delete", "not_found", 1}} {
		if got := counterValue(t, reg, "telgw_callrecording_operations_total", map[string]string{"operation": c.op, "result": c.result}); got != c.want {
			t.Errorf("telgw_callrecording_operations_total{%s,%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
}

// fakeMP3 is an MP3 encoder writing a fixed "MP3".
type fakeMP3 struct{}

const fakeMP3Bytes = "\xff\xf3\x48\xc4 not really an mp3"

func (fakeMP3) EncodeMP3(_ context.Context, _, mp3 string) error {
	return os.WriteFile(mp3, []byte(fakeMP3Bytes), 0o600)
}

func (fakeMP3) MP3Format() (int, int) { return 16000, 32000 }

// TestCallRecordingAPIMP3: recordingFormatType mp3 with an encoder: mixed is recorded and
// served as audio/mpeg, unmixed is 400 naming recordingFormatType (without an encoder mp3 is
// 400 NotSupported: TestCallRecordingAPI).
func TestCallRecordingAPIMP3(t *testing.T) {
	t.Parallel()
	a, pub, _, _, _ := automationServer(t)
	files := capFiles{ch: make(chan calls.RecordingFile, 4)}
	s := New(Config{Registry: prometheus.NewRegistry(), Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }, Skew: 15 * time.Minute}})
	s.MountCallAutomation(a)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	recs, err := calls.NewRecordings(a, calls.RecordingsConfig{Store: callstest.NewRecordings(), Dir: t.TempDir(),
		Publisher: files, Locations: func() string { return srv.URL + "/" }, MP3: fakeMP3{}})
	if err != nil {
		t.Fatal(err)
	}
	s.MountCallRecording(recs)
	token := answerWith(t, a, pub, &fakeRecorder{})
	var conn callConnectionJSON
	if code := call(t, srv, "POST", "/calling/callConnections:answer"+caVersion, `{"incomingCallContext":"`+token+`","callbackUri":"https://app.example/cb"}`, true, &conn); code != 200 {
		t.Fatalf("answer: %d", code)
	}
	locator := `{"callLocator":{"kind":"serverCallLocator","serverCallId":"` + conn.ServerCallID + `"}`
	var e ErrorBody
	if code := call(t, srv, "POST", "/calling/recordings"+caVersion, locator+`,"recordingFormatType":"mp3","recordingChannelType":"unmixed"}`, true, &e); code != 400 || e.Error.Target != "recordingFormatType" {
		t.Errorf("unmixed mp3: %d %+v", code, e.Error)
	}
	var st recordingStateJSON
	if code := call(t, srv, "POST", "/calling/recordings"+caVersion, locator+`,"recordingFormatType":"mp3","recordingChannelType":"mixed"}`, true, &st); code != 200 || st.RecordingState != "active" {
		t.Fatalf("start mp3: %d %+v", code, st)
	}
	if code := call(t, srv, "DELETE", "/calling/recordings/"+st.RecordingID+caVersion, "", true, nil); code != 204 {
		t.Fatalf("stop: %d", code)
	}
	f := <-files.ch
	code, hdr, body := fileRequest(t, "GET", f.ContentLocation, "acs.example.com", testKey, nil)
	if code != 200 || string(body) != fakeMP3Bytes || hdr.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("download: %d %q %v", code, body, hdr)
	}
	code, _, md := fileRequest(t, "GET", f.MetadataLocation, "acs.example.com", testKey, nil)
	if code != 200 || !strings.Contains(string(md), `"format":"mp3"`) {
		t.Errorf("metadata: %d %s", code, md)
	}
}
