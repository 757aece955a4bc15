package calls

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// recTransport is a transport that records: its handle reports failures through the spec.
type recTransport struct {
	recControl
	specs chan RecordingSpec
}

type recHandle struct {
	mu     sync.Mutex
	paused bool
	ended  chan struct{}
	stops  int
}

func (r *recTransport) Record(spec RecordingSpec) (RecordingHandle, error) {
	if err := os.WriteFile(spec.Path, []byte("RIFF"), 0o600); err != nil {
		return nil, err
	}
	r.specs <- spec
	return &recHandle{paused: spec.Paused, ended: make(chan struct{})}, nil
}

func (h *recHandle) Pause()                 { h.mu.Lock(); h.paused = true; h.mu.Unlock() }
func (h *recHandle) Resume()                { h.mu.Lock(); h.paused = false; h.mu.Unlock() }
func (h *recHandle) Ended() <-chan struct{} { return h.ended }
func (h *recHandle) Stop() RecordingResult {
	h.mu.Lock()
	h.stops++
	h.mu.Unlock()
	return RecordingResult{Duration: 1500 * time.Millisecond, Bytes: 24044, Participants: []Participant{Phone("+12125550199")},
		Channels: []Participant{{}, Phone("+12125550199")}}
}

type memRecStore struct {
	mu sync.Mutex
	m  map[string]Recording
}

func (s *memRecStore) RecordingPut(_ context.Context, r Recording) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.ID] = r
	return nil
}

func (s *memRecStore) RecordingGet(_ context.Context, id string) (Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[id]; ok {
		return r, nil
	}
	return Recording{}, problem.ErrNotFound
}

func (s *memRecStore) RecordingByDocument(_ context.Context, doc string) (Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.m {
		if r.DocumentID == doc {
			return r, nil
		}
	}
	return Recording{}, problem.ErrNotFound
}

func (s *memRecStore) RecordingDelete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *memRecStore) RecordingsUnfinished(_ context.Context, node string) ([]Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Recording
	for _, r := range s.m {
		if r.Node == node && (r.State == RecActive || r.State == RecPaused) {
			out = append(out, r)
		}
	}
	return out, nil
}

type recPublisher chan RecordingFile

func (p recPublisher) PublishRecordingFile(_ context.Context, f RecordingFile) error {
	p <- f
	return nil
}

func TestChannelMap(t *testing.T) {
	t.Parallel()
	a, b, c := Phone("+12125550101"), Phone("+12125550102"), Phone("+12125550103")
	fixed, n, err := channelMap([]Participant{a, b, c}, []ChannelAffinity{{Participant: b, Channel: 0}})
	if err != nil || n != 3 || fixed[b] != 0 || fixed[a] != 1 || fixed[c] != 2 {
		t.Fatalf("ordering around an affinity: %v %d %v", fixed, n, err)
	}
	if _, n, _ := channelMap(nil, []ChannelAffinity{{Participant: a, Channel: 4}}); n != MaxRecordingChannels {
		t.Fatalf("channel 4: %d channels", n)
	}
	if _, n, _ := channelMap(nil, nil); n != 2 {
		t.Fatalf("default: %d channels", n)
	}
	for _, bad := range [][]ChannelAffinity{
		{{Participant: a, Channel: 5}},
		{{Participant: a, Channel: -1}},
		{{Participant: a, Channel: 1}, {Participant: b, Channel: 1}},
		{{Participant: a, Channel: 1}, {Participant: a, Channel: 2}},
		{{Participant: Participant{Kind: App, ID: "x"}, Channel: 1}},
	} {
		if _, _, err := channelMap(nil, bad); problem.KindOf(err) != problem.KindInvalid {
			t.Errorf("%v: %v", bad, err)
		}
	}
	many := []Participant{a, b, c, Phone("+12125550104"), Phone("+12125550105"), Phone("+12125550106")}
	if _, _, err := channelMap(many, nil); problem.KindOf(err) != problem.KindInvalid {
		t.Errorf("six channels: %v", err)
	}
}

// TestRecordings: the engine's side of a recording: states and their callbacks, the
// metadata document, a failure reported by the transport, the call ending, delete.
func TestRecordings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cbs := &recCallbacks{}
	a, err := NewAutomation(AutomationConfig{Callbacks: cbs, Numbers: ownNumber("+14155550100")})
	if err != nil {
		t.Fatal(err)
	}
	call := NewCall(time.Now(), Leg{Kind: LegCarrier, Participant: Phone("+12125550199")})
	conn := &Connection{a: a, ID: "c1", call: call, callbackURI: "http://app.example/cb", state: StateConnected,
		hangup: make(chan struct{}), done: make(chan struct{})}
	a.conns[conn.ID] = conn
	pub := make(recPublisher, 4)
	dir := t.TempDir()
	recs, err := NewRecordings(a, RecordingsConfig{Store: &memRecStore{m: map[string]Recording{}}, Dir: dir, Publisher: pub,
		Locations: func() string { return "https://telgw.example/" }, ResourceID: func() string { return "res-1" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID}); problem.KindOf(err) != problem.KindConflict {
		t.Fatalf("before the call is connected: %v", err)
	}
	if _, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, ChannelType: "mixed", Ordering: []Participant{Phone("+12125550199")}}); problem.KindOf(err) != problem.KindInvalid {
		t.Fatalf("ordering of a mixed recording: %v", err)
	}
	ctl := &recTransport{specs: make(chan RecordingSpec, 4)}
	conn.Attach(ctl, Phone("+12125550199"))
	rec, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, ChannelType: "Unmixed", PauseOnStart: true,
		Affinity: []ChannelAffinity{{Participant: Phone("+12125550199"), Channel: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	spec := <-ctl.specs
	if !spec.Unmixed || !spec.Paused || spec.Channels != 2 || spec.Fixed[Phone("+12125550199")] != 1 || spec.Path != filepath.Join(dir, rec.File) {
		t.Fatalf("spec %+v", spec)
	}
	if rec.APIState() != "inactive" || rec.CallbackURI != "http://app.example/cb" {
		t.Fatalf("started paused: %+v", rec)
	}
	if ev := cbs.last(); ev.typ != "RecordingStateChanged" || ev.data["state"] != "inactive" || ev.data["recordingId"] != rec.ID {
		t.Fatalf("first state: %+v", ev)
	}
	if err := recs.Resume(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := recs.Resume(ctx, rec.ID); err != nil { // already active: nothing happens
		t.Fatal(err)
	}
	if n := len(cbs.evs); n != 2 {
		t.Fatalf("%d callbacks after resuming twice", n)
	}
	// The call ends: the recording is finished with it.
	conn.Disconnected(ResultInformation{Code: 200})
	f := <-pub
	if f.Recording.SessionEndReason != "CallEnded" || f.Recording.State != RecStopped || f.Recording.Duration != 1500*time.Millisecond {
		t.Fatalf("after the call: %+v", f.Recording)
	}
	md := f.Recording.Metadata
	for _, want := range []string{`"resourceId":"res-1"`, `"channelType":"unmixed"`, `"participantId":"4:+12125550199","channel":1`, `"channels":2`, `"pauseResumeIntervals":[{"startTime"`} {
		if !contains(md, want) {
			t.Errorf("metadata lacks %s: %s", want, md)
		}
	}
	if err := recs.Stop(ctx, rec.ID); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("stop after the end: %v", err)
	}
	if st, err := recs.State(ctx, rec.ID); err != nil || st.APIState() != "inactive" {
		t.Fatalf("state after the end: %+v %v", st, err)
	}
	got, path, err := recs.Document(ctx, f.Recording.DocumentID)
	if err != nil || got.ID != rec.ID || filepath.Base(path) != f.Recording.File {
		t.Fatalf("document: %+v %s %v", got, path, err)
	}
	if err := recs.DeleteDocument(ctx, f.Recording.DocumentID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file after delete: %v", err)
	}
	if _, _, err := recs.Document(ctx, f.Recording.DocumentID); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("document after delete: %v", err)
	}
}

// TestRecordingFails: the transport reports a write error → the recording fails (state
// callback 500, file event with its endReason), once.
func TestRecordingFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cbs := &recCallbacks{}
	a, _ := NewAutomation(AutomationConfig{Callbacks: cbs})
	call := NewCall(time.Now(), Leg{Kind: LegCarrier, Participant: Phone("+12125550199")})
	conn := &Connection{a: a, ID: "c2", call: call, callbackURI: "http://app.example/cb", state: StateConnected,
		hangup: make(chan struct{}), done: make(chan struct{})}
	a.conns[conn.ID] = conn
	ctl := &recTransport{specs: make(chan RecordingSpec, 4)}
	conn.Attach(ctl, Phone("+12125550199"))
	pub := make(recPublisher, 4)
	recs, _ := NewRecordings(a, RecordingsConfig{Store: &memRecStore{m: map[string]Recording{}}, Dir: t.TempDir(), Publisher: pub})
	rec, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, CallbackURI: "http://app.example/rec"})
	if err != nil {
		t.Fatal(err)
	}
	spec := <-ctl.specs
	spec.OnFail(errors.New("no space left on device"))
	spec.OnFail(errors.New("again"))
	f := <-pub
	if f.Recording.State != RecFailed || f.Recording.EndReason != "ChunkUploadFailure" || f.Recording.SessionEndReason != "RecordingFailed" {
		t.Fatalf("failed recording %+v", f.Recording)
	}
	if ev := cbs.last(); ev.typ != "RecordingStateChanged" || ev.uri != "http://app.example/rec" || ev.data["state"] != "inactive" ||
		ev.data["resultInformation"].(map[string]any)["code"] != float64(500) {
		t.Fatalf("state callback %+v", ev)
	}
	select {
	case f := <-pub:
		t.Fatalf("a second file event %+v", f)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID}); err != nil {
		t.Fatalf("a new recording after a failed one: %v", err)
	}
	_ = rec
	recs.Close()
	if f := <-pub; f.Recording.SessionEndReason != "CallEnded" {
		t.Fatalf("closed: %+v", f.Recording)
	}
	// The directory cannot be written: 503, nothing left behind.
	recs2, _ := NewRecordings(a, RecordingsConfig{Store: &memRecStore{m: map[string]Recording{}}, Dir: t.TempDir()})
	recs2.cfg.Dir = filepath.Join(recs2.cfg.Dir, "missing")
	if _, err := recs2.Start(ctx, StartRecordingParams{ServerCallID: call.ID}); problem.KindOf(err) != problem.KindUnavailable {
		t.Fatalf("unwritable directory: %v", err)
	}
	if _, err := recs2.Start(ctx, StartRecordingParams{ServerCallID: call.ID}); problem.KindOf(err) != problem.KindUnavailable {
		t.Fatalf("again (no recording left reserved): %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestRecordingRecover: recordings a node left active or paused (it was killed) are marked
// failed at its start; other nodes' are not touched, nor its live ones; a file kept by another
// node is not found here.
func TestRecordingRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memRecStore{m: map[string]Recording{
		"a": {ID: "a", DocumentID: "0-a", State: RecActive, Node: "n1", File: "0-a.wav"},
		"b": {ID: "b", DocumentID: "0-b", State: RecPaused, Node: "n1", File: "0-b.wav"},
		"c": {ID: "c", DocumentID: "0-c", State: RecActive, Node: "n2", File: "0-c.wav"},
		"d": {ID: "d", DocumentID: "0-d", State: RecStopped, Node: "n2", File: "0-d.wav"},
	}}
	a, _ := NewAutomation(AutomationConfig{})
	recs, err := NewRecordings(a, RecordingsConfig{Store: st, Dir: t.TempDir(), Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := recs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"a": RecFailed, "b": RecFailed, "c": RecActive, "d": RecStopped} {
		if got, _ := st.RecordingGet(ctx, id); got.State != want {
			t.Errorf("%s: %s, want %s", id, got.State, want)
		}
	}
	if _, _, err := recs.Document(ctx, "0-d"); problem.KindOf(err) != problem.KindNotFound || !strings.Contains(err.Error(), "n2") {
		t.Errorf("another node's file: %v", err)
	}
}

// fakeMP3 is an MP3Encoder: it waits for release (when set), then writes a small "MP3" or
// fails with err.
type fakeMP3 struct {
	release chan struct{}
	err     error
	calls   chan [2]string
}

func (f *fakeMP3) EncodeMP3(_ context.Context, wav, mp3 string) error {
	f.calls <- [2]string{wav, mp3}
	if f.release != nil {
		<-f.release
	}
	if f.err != nil {
		return f.err
	}
	return os.WriteFile(mp3, []byte("ID3-not-really-an-mp3"), 0o600)
}

func (f *fakeMP3) MP3Format() (int, int) { return 16000, 32000 }

// TestRecordingMP3: recordingFormatType mp3 is recorded as WAV and encoded when it stops:
// the state callback goes at once, the file event once encoded (the WAV then gone, the MP3
// served); mp3 needs a mixed recording and an encoder (400 naming recordingFormatType
// otherwise); a failed encoding fails the recording, keeps the WAV until the document is
// deleted.
func TestRecordingMP3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T, enc MP3Encoder) (*Recordings, *Call, *recTransport, recPublisher, *recCallbacks, string) {
		cbs := &recCallbacks{}
		a, _ := NewAutomation(AutomationConfig{Callbacks: cbs})
		call := NewCall(time.Now(), Leg{Kind: LegCarrier, Participant: Phone("+12125550199")})
		conn := &Connection{a: a, ID: "c3", call: call, callbackURI: "http://app.example/cb", state: StateConnected,
			hangup: make(chan struct{}), done: make(chan struct{})}
		a.conns[conn.ID] = conn
		ctl := &recTransport{specs: make(chan RecordingSpec, 4)}
		conn.Attach(ctl, Phone("+12125550199"))
		pub := make(recPublisher, 4)
		dir := t.TempDir()
		recs, err := NewRecordings(a, RecordingsConfig{Store: &memRecStore{m: map[string]Recording{}}, Dir: dir, Publisher: pub, MP3: enc})
		if err != nil {
			t.Fatal(err)
		}
		return recs, call, ctl, pub, cbs, dir
	}
	t.Run("NoEncoder", func(t *testing.T) {
		t.Parallel()
		recs, call, _, _, _, _ := setup(t, nil)
		_, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "MP3"})
		if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindInvalid || pe.Code != "NotSupported" || pe.Target != "recordingFormatType" {
			t.Fatalf("mp3 without lame: %v", err)
		}
	})
	t.Run("Unmixed", func(t *testing.T) {
		t.Parallel()
		recs, call, _, _, _, _ := setup(t, &fakeMP3{calls: make(chan [2]string, 1)})
		_, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "mp3", ChannelType: "unmixed"})
		if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindInvalid || pe.Target != "recordingFormatType" {
			t.Fatalf("unmixed mp3: %v", err)
		}
		_, err = recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "mp4"})
		if pe, ok := problem.As(err); !ok || pe.Code != "NotSupported" || pe.Target != "recordingFormatType" {
			t.Fatalf("mp4: %v", err)
		}
	})
	t.Run("Encoded", func(t *testing.T) {
		t.Parallel()
		enc := &fakeMP3{release: make(chan struct{}), calls: make(chan [2]string, 1)}
		recs, call, ctl, pub, cbs, dir := setup(t, enc)
		rec, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "mp3"})
		if err != nil {
			t.Fatal(err)
		}
		spec := <-ctl.specs
		if filepath.Ext(spec.Path) != ".wav" || rec.File != rec.DocumentID+".mp3" || rec.FormatType != "mp3" {
			t.Fatalf("spec %s, recording %+v", spec.Path, rec)
		}
		if err := recs.Stop(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		// Stopped, being encoded: the state callback went, the file event waits.
		if ev := cbs.last(); ev.typ != "RecordingStateChanged" || ev.data["state"] != "inactive" {
			t.Fatalf("state callback at stop: %+v", ev)
		}
		got := <-enc.calls
		if got[0] != spec.Path || got[1] != filepath.Join(dir, rec.File) {
			t.Fatalf("encoded %v", got)
		}
		if st, err := recs.State(ctx, rec.ID); err != nil || st.APIState() != "inactive" {
			t.Fatalf("state while encoding: %+v %v", st, err)
		}
		if _, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID}); err != nil {
			t.Fatalf("a new recording while the last one encodes: %v", err)
		}
		<-ctl.specs
		select {
		case f := <-pub:
			t.Fatalf("file event before the encoding ended: %+v", f.Recording)
		default:
		}
		close(enc.release)
		f := <-pub
		if f.Recording.State != RecStopped || f.Recording.Bytes != int64(len("ID3-not-really-an-mp3")) || f.Recording.File != rec.File {
			t.Fatalf("file event %+v", f.Recording)
		}
		for _, want := range []string{`"format":"mp3"`, `"sampleRate":16000`, `"bitRate":32000`, `"channels":1`} {
			if !contains(f.Recording.Metadata, want) {
				t.Errorf("metadata lacks %s: %s", want, f.Recording.Metadata)
			}
		}
		if _, err := os.Stat(spec.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("wav after encoding: %v", err)
		}
		if _, path, err := recs.Document(ctx, f.Recording.DocumentID); err != nil || filepath.Ext(path) != ".mp3" {
			t.Fatalf("document %s %v", path, err)
		}
		recs.Close()
		<-pub
	})
	t.Run("EncodingFails", func(t *testing.T) {
		t.Parallel()
		enc := &fakeMP3{err: errors.New("lame: exit status 1: Can't init infile"), calls: make(chan [2]string, 1)}
		recs, call, ctl, pub, _, dir := setup(t, enc)
		rec, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "mp3"})
		if err != nil {
			t.Fatal(err)
		}
		spec := <-ctl.specs
		if err := recs.Stop(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		<-enc.calls
		f := <-pub
		if f.Recording.State != RecFailed || f.Recording.EndReason != "ChunkUploadFailure" || f.Recording.SessionEndReason != "RecordingFailed" {
			t.Fatalf("file event %+v", f.Recording)
		}
		if _, err := os.Stat(spec.Path); err != nil {
			t.Fatalf("the wav is kept: %v", err)
		}
		if err := recs.DeleteDocument(ctx, f.Recording.DocumentID); err != nil {
			t.Fatal(err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("left after delete: %v", left)
		}
	})
}

// TestRecordingMP3Bounded: EncodeConcurrency encodings at a time; the others wait for a slot,
// and Close waits for them all.
func TestRecordingMP3Bounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := NewAutomation(AutomationConfig{Callbacks: &recCallbacks{}})
	enc := &fakeMP3{release: make(chan struct{}), calls: make(chan [2]string, 2)}
	pub := make(recPublisher, 4)
	recs, err := NewRecordings(a, RecordingsConfig{Store: &memRecStore{m: map[string]Recording{}}, Dir: t.TempDir(), Publisher: pub,
		MP3: enc, EncodeConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, num := range []string{"+12125550198", "+12125550199"} {
		call := NewCall(time.Now(), Leg{Kind: LegCarrier, Participant: Phone(num)})
		conn := &Connection{a: a, ID: "b" + strconv.Itoa(i), call: call, callbackURI: "http://app.example/cb", state: StateConnected,
			hangup: make(chan struct{}), done: make(chan struct{})}
		a.conns[conn.ID] = conn
		conn.Attach(&recTransport{specs: make(chan RecordingSpec, 1)}, Phone(num))
		rec, err := recs.Start(ctx, StartRecordingParams{ServerCallID: call.ID, FormatType: "mp3"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for _, id := range ids {
		if err := recs.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	<-enc.calls
	select {
	case c := <-enc.calls:
		t.Fatalf("a second encoding at once: %v", c)
	case <-time.After(100 * time.Millisecond):
	}
	closed := make(chan struct{})
	go func() { recs.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with encodings in progress")
	case <-time.After(50 * time.Millisecond):
	}
	close(enc.release)
	<-enc.calls
	<-closed
	for range ids {
		if f := <-pub; f.Recording.State != RecStopped {
			t.Errorf("file event %+v", f.Recording)
		}
	}
}
