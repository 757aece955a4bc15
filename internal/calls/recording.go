package calls

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Call recording (Call Automation's callRecording: start, pause, resume, stop, getState, and
// the recorded file's download and delete). The engine keeps the recordings (their rows, the
// state callbacks, the file's metadata document and the RecordingFileStatusUpdated event);
// the transport (the SIP edge) taps each person's media and writes the WAV file through the
// RecordingControl its CallControl implements. A recording never holds the call up: the
// transport's writer drops frames rather than wait for the disk, and a write error fails the
// recording (RecordingStateChanged inactive with a failure result, the file's event with
// endReason) while the call goes on. An MP3 recording is recorded as WAV and encoded when it
// ends, off the media path (MP3Encoder), before its file is announced.

// RecordingControl is the transport's recorder of a connected call.
type RecordingControl interface {
	// Record starts writing the call's audio to spec.Path (created; it must not exist).
	Record(spec RecordingSpec) (RecordingHandle, error)
}

// MP3Encoder encodes a finished recording's WAV to MP3 (media/record.Lame: the lame program).
type MP3Encoder interface {
	// EncodeMP3 writes mp3Path (0600, complete or not at all) from the WAV at wavPath.
	EncodeMP3(ctx context.Context, wavPath, mp3Path string) error
	// MP3Format is the encoded audio's sample rate (Hz) and bit rate (bit/s), for the metadata.
	MP3Format() (sampleRate, bitRate int)
}

// RecordingSpec is what the transport records.
type RecordingSpec struct {
	// Path is the file to create (WAV, 16-bit 8 kHz; an MP3 recording's WAV is encoded once
	// finished).
	Path string
	// Unmixed: one channel per person (Channels of them), else one mixed channel.
	Unmixed  bool
	Channels int
	// Fixed assigns channels (channelAffinity, audioChannelParticipantOrdering); people not in
	// it take the free channels in the order they are first seen.
	Fixed map[Participant]int
	// Paused starts the recording paused (pauseOnStart).
	Paused bool
	// OnFail is called once, on the transport's writer, when the file cannot be written.
	OnFail func(error)
}

// RecordingHandle is one recording the transport is writing.
type RecordingHandle interface {
	Pause()
	Resume()
	// Stop finishes the file (idempotent) and says what it holds.
	Stop() RecordingResult
	// Ended is closed when the call's media ended (the call is over).
	Ended() <-chan struct{}
}

// RecordingResult is what a finished recording holds.
type RecordingResult struct {
	Duration time.Duration
	Bytes    int64
	Err      error
	// Channels are who is on each channel of an unmixed file (zero Participant: nobody).
	Channels []Participant
	// Participants are everyone recorded, in the order first seen.
	Participants []Participant
}

// Recording states as stored (the API shows active or inactive).
const (
	RecActive  = "active"
	RecPaused  = "paused"
	RecStopped = "stopped"
	RecFailed  = "failed"
)

// Recording is one call recording (a row of the recordings table).
type Recording struct {
	// ID is the recordingId (random, unguessable).
	ID string
	// DocumentID names the file in its locations (random, unguessable, not the ID).
	DocumentID       string
	ServerCallID     string
	CallConnectionID string
	CorrelationID    string
	// CallbackURI receives RecordingStateChanged.
	CallbackURI string
	// ChannelType is mixed or unmixed; FormatType wav or mp3; ContentType audio.
	ChannelType, FormatType, ContentType string
	State                                string
	// Node recorded it (its files are on that node's disk).
	Node string
	// File is the file's name in the recordings directory (documentId.wav or .mp3; an MP3
	// recording is written to documentId.wav first and encoded when it ends).
	File      string
	StartedAt time.Time
	EndedAt   time.Time
	Duration  time.Duration
	Bytes     int64
	// EndReason is the chunk's endReason; SessionEndReason why the recording ended.
	EndReason, SessionEndReason string
	// Metadata is the metadata document (JSON), once finished.
	Metadata string
}

// Finished reports whether the recording ended (its files are final).
func (r Recording) Finished() bool { return r.State == RecStopped || r.State == RecFailed }

// APIState is recordingState: active while recording, else inactive.
func (r Recording) APIState() string {
	if r.State == RecActive {
		return "active"
	}
	return "inactive"
}

// RecordingStore keeps recordings.
type RecordingStore interface {
	// RecordingPut inserts or replaces a recording (by ID).
	RecordingPut(ctx context.Context, r Recording) error
	// RecordingGet reads one by recordingId; problem.ErrNotFound when there is none.
	RecordingGet(ctx context.Context, id string) (Recording, error)
	// RecordingByDocument reads one by its documentId.
	RecordingByDocument(ctx context.Context, documentID string) (Recording, error)
	// RecordingDelete removes one.
	RecordingDelete(ctx context.Context, id string) error
	// RecordingsUnfinished lists node's recordings still active or paused.
	RecordingsUnfinished(ctx context.Context, node string) ([]Recording, error)
}

// RecordingFile is a finished recording's file, for RecordingFileStatusUpdated.
type RecordingFile struct {
	Recording                                         Recording
	ContentLocation, MetadataLocation, DeleteLocation string
}

// RecordingPublisher publishes Microsoft.Communication.RecordingFileStatusUpdated to the
// Event Grid webhooks subscribed to it.
type RecordingPublisher interface {
	PublishRecordingFile(ctx context.Context, f RecordingFile) error
}

// RecordingsConfig configures call recording.
type RecordingsConfig struct {
	// Store keeps the recordings (required).
	Store RecordingStore
	// Dir holds the files (required; created 0700).
	Dir string
	// Locations is the base URL of the content, metadata and delete locations, with a
	// trailing slash (telgw's own endpoint, or recording.locationURL).
	Locations func() string
	// Publisher sends RecordingFileStatusUpdated; nil: not sent.
	Publisher RecordingPublisher
	// Node names this node in the rows. Default "local".
	Node string
	// ResourceID is the metadata's resourceId.
	ResourceID func() string
	// MP3 encodes recordings asked for as recordingFormatType mp3; nil: mp3 answers 400
	// NotSupported.
	MP3 MP3Encoder
	// EncodeConcurrency bounds the MP3 encodings running at once. Default GOMAXPROCS.
	EncodeConcurrency int
	Logger            *slog.Logger
}

// Recordings is the call recording engine. Safe for concurrent use.
type Recordings struct {
	a   *Automation
	cfg RecordingsConfig
	log *slog.Logger

	mu   sync.Mutex
	live map[string]*liveRecording // by recordingId
	// encoding are the stopped MP3 recordings being encoded (by recordingId): their rows are
	// stored and their files announced when the encoding ends.
	encoding map[string]Recording
	// encodeSlots bounds the encodings running at once.
	encodeSlots chan struct{}
	// running counts the recordings started and not yet finished (their events queued).
	running sync.WaitGroup
}

type liveRecording struct {
	mu      sync.Mutex
	rec     Recording
	conn    *Connection
	h       RecordingHandle
	pauses  []pauseInterval
	stopped chan struct{}
	ready   chan struct{} // closed once h is set
	once    sync.Once
}

type pauseInterval struct {
	start time.Time
	end   time.Time
}

// NewRecordings builds the engine over a's call connections.
func NewRecordings(a *Automation, cfg RecordingsConfig) (*Recordings, error) {
	if cfg.Store == nil || cfg.Dir == "" {
		return nil, errors.New("calls: recordings need a store and a directory")
	}
	// Call audio is private: the directory is closed up at every start, as the data dir is.
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("calls: recordings directory: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("calls: recordings directory: %w", err)
	}
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	if cfg.Locations == nil {
		cfg.Locations = func() string { return "/" }
	}
	if cfg.ResourceID == nil {
		cfg.ResourceID = func() string { return "" }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EncodeConcurrency < 1 {
		cfg.EncodeConcurrency = runtime.GOMAXPROCS(0)
	}
	return &Recordings{a: a, cfg: cfg, log: cfg.Logger, live: map[string]*liveRecording{},
		encoding: map[string]Recording{}, encodeSlots: make(chan struct{}, cfg.EncodeConcurrency)}, nil
}

// StartRecordingParams is startRecording's request.
type StartRecordingParams struct {
	ServerCallID string
	// GroupCallID and RoomID are the other call locators (not served).
	GroupCallID, RoomID string
	CallbackURI         string
	// ContentType, ChannelType, FormatType: empty means audio, mixed, wav.
	ContentType, ChannelType, FormatType string
	PauseOnStart                         bool
	// Ordering is audioChannelParticipantOrdering; Affinity channelAffinity.
	Ordering []Participant
	Affinity []ChannelAffinity
	// ExternalStorage is set when the request asked for storage of its own (not served).
	ExternalStorage bool
}

// ChannelAffinity puts a participant on a channel of an unmixed recording.
type ChannelAffinity struct {
	Participant Participant
	Channel     int
}

// MaxRecordingChannels is the channels of an unmixed recording at most (ACS: channel 0–4).
const MaxRecordingChannels = 5

var errNoRecording = problem.NotFound("recordingId", "no recording with this id").WithCode("NotFound")

func notSupported(field, what string) error {
	return problem.Invalid(field, "%s is not supported", what).WithCode("NotSupported")
}

// Start starts recording a connected call.
func (r *Recordings) Start(ctx context.Context, p StartRecordingParams) (Recording, error) {
	switch {
	case p.GroupCallID != "":
		return Recording{}, notSupported("callLocator.groupCallId", "Recording a group call locator")
	case p.RoomID != "":
		return Recording{}, notSupported("callLocator.roomId", "Recording a room")
	case p.ServerCallID == "":
		return Recording{}, problem.Invalid("callLocator.serverCallId", "callLocator.serverCallId is required").WithCode("BadRequest")
	case p.ExternalStorage:
		return Recording{}, notSupported("externalStorage", "External recording storage (files are kept by telgw)")
	}
	switch p.ContentType = strings.ToLower(p.ContentType); p.ContentType {
	case "":
		p.ContentType = "audio"
	case "audio":
	case "audiovideo":
		return Recording{}, notSupported("recordingContentType", "recordingContentType audioVideo (telgw records audio)")
	default:
		return Recording{}, problem.Invalid("recordingContentType", "recordingContentType must be audio or audioVideo").WithCode("BadRequest")
	}
	switch p.ChannelType = strings.ToLower(p.ChannelType); p.ChannelType {
	case "":
		p.ChannelType = "mixed"
	case "mixed", "unmixed":
	default:
		return Recording{}, problem.Invalid("recordingChannelType", "recordingChannelType must be mixed or unmixed").WithCode("BadRequest")
	}
	switch p.FormatType = strings.ToLower(p.FormatType); p.FormatType {
	case "":
		p.FormatType = "wav"
	case "wav":
	case "mp3":
		// ACS records mp3 mixed only (unmixed audio is wav, one channel per person).
		if p.ChannelType == "unmixed" {
			return Recording{}, problem.Invalid("recordingFormatType", "recordingFormatType mp3 needs recordingChannelType mixed (unmixed recordings are wav)").WithCode("BadRequest")
		}
		if r.cfg.MP3 == nil {
			return Recording{}, notSupported("recordingFormatType", "recordingFormatType mp3 on this server (its MP3 encoder, lame, is not installed)")
		}
	case "mp4":
		return Recording{}, notSupported("recordingFormatType", "recordingFormatType mp4 (telgw records audio: wav or mp3)")
	default:
		return Recording{}, problem.Invalid("recordingFormatType", "recordingFormatType must be wav, mp3 or mp4").WithCode("BadRequest")
	}
	spec := RecordingSpec{Unmixed: p.ChannelType == "unmixed", Channels: 1, Paused: p.PauseOnStart}
	if spec.Unmixed {
		var err error
		if spec.Fixed, spec.Channels, err = channelMap(p.Ordering, p.Affinity); err != nil {
			return Recording{}, err
		}
	} else if len(p.Ordering) > 0 || len(p.Affinity) > 0 {
		return Recording{}, problem.Invalid("recordingChannelType", "audioChannelParticipantOrdering and channelAffinity need an unmixed recording").WithCode("BadRequest")
	}
	c := r.a.byServerCall(p.ServerCallID)
	if c == nil {
		return Recording{}, problem.NotFound("callLocator.serverCallId", "no call in progress with this serverCallId").WithCode("NotFound")
	}
	c.parts.mu.Lock()
	ctl := c.parts.ctl
	c.parts.mu.Unlock()
	if ctl == nil {
		return Recording{}, problem.Conflict("callLocator.serverCallId", "the call is not connected yet").WithCode("Conflict")
	}
	rc, ok := ctl.(RecordingControl)
	if !ok {
		return Recording{}, notSupported("callLocator.serverCallId", "Recording this call")
	}
	r.mu.Lock()
	for _, l := range r.live {
		if l.rec.ServerCallID == p.ServerCallID {
			r.mu.Unlock()
			return Recording{}, problem.Conflict("callLocator.serverCallId", "the call is already being recorded").WithCode("Conflict")
		}
	}
	rec := Recording{ID: randomID(32), DocumentID: "0-" + randomHex(20), ServerCallID: p.ServerCallID,
		CallConnectionID: c.ID, CorrelationID: c.call.CorrelationID, CallbackURI: p.CallbackURI,
		ChannelType: p.ChannelType, FormatType: p.FormatType, ContentType: p.ContentType, State: RecActive,
		Node: r.cfg.Node, StartedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if rec.CallbackURI == "" {
		rec.CallbackURI = c.callbackURI
	}
	rec.File = rec.DocumentID + "." + rec.FormatType
	if p.PauseOnStart {
		rec.State = RecPaused
	}
	l := &liveRecording{rec: rec, conn: c, stopped: make(chan struct{}), ready: make(chan struct{})}
	if p.PauseOnStart {
		l.pauses = append(l.pauses, pauseInterval{start: rec.StartedAt})
	}
	r.live[rec.ID] = l // reserved: a second start for the call is a conflict
	r.mu.Unlock()
	if err := r.cfg.Store.RecordingPut(ctx, rec); err != nil {
		r.forget(rec.ID)
		return Recording{}, err
	}
	spec.Path = r.wavPath(rec)
	spec.OnFail = func(err error) {
		go func() {
			<-l.ready
			r.fail(l, err)
		}()
	}
	r.running.Add(1) // before h is set: from then on finish may run (and calls Done)
	h, err := rc.Record(spec)
	if err != nil {
		r.running.Done()
		r.forget(rec.ID)
		_ = r.cfg.Store.RecordingDelete(context.WithoutCancel(ctx), rec.ID)
		if _, ok := problem.As(err); !ok {
			// The file could not be made (directory missing, read-only, disk full): the
			// operator's to mend; the app learns only that recording is unavailable.
			r.log.Error("recording not started", "call_id", p.ServerCallID, "err", err)
			err = &problem.Error{Kind: problem.KindUnavailable, Code: "ServiceUnavailable",
				Message: "the recording could not be started: telgw cannot write recordings now", Err: err}
		}
		return Recording{}, err
	}
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
	close(l.ready)
	r.stateChanged(l, rec, ResultInformation{Code: 200, Message: "Recording started."})
	go r.watch(l)
	return rec, nil
}

// channelMap reads channelAffinity and audioChannelParticipantOrdering into fixed channels
// and the file's channel count.
func channelMap(order []Participant, aff []ChannelAffinity) (map[Participant]int, int, error) {
	fixed := map[Participant]int{}
	used := map[int]bool{}
	for _, a := range aff {
		if err := checkTarget("channelAffinity.participant", a.Participant); err != nil {
			return nil, 0, err
		}
		if a.Channel < 0 || a.Channel >= MaxRecordingChannels {
			return nil, 0, problem.Invalid("channelAffinity.channel", "channel must be 0–%d", MaxRecordingChannels-1).WithCode("BadRequest")
		}
		if _, dup := fixed[a.Participant]; dup || used[a.Channel] {
			return nil, 0, problem.Invalid("channelAffinity", "each participant and channel may appear once").WithCode("BadRequest")
		}
		fixed[a.Participant], used[a.Channel] = a.Channel, true
	}
	next := 0
	for _, p := range order {
		if err := checkTarget("audioChannelParticipantOrdering", p); err != nil {
			return nil, 0, err
		}
		if _, dup := fixed[p]; dup {
			continue
		}
		for used[next] {
			next++
		}
		if next >= MaxRecordingChannels {
			return nil, 0, problem.Invalid("audioChannelParticipantOrdering", "at most %d channels", MaxRecordingChannels).WithCode("BadRequest")
		}
		fixed[p], used[next] = next, true
	}
	n := 2 // an unmixed file has at least two channels (ACS: one per person, up to MaxRecordingChannels)
	for _, ch := range fixed {
		n = max(n, ch+1)
	}
	return fixed, n, nil
}

func (r *Recordings) forget(id string) {
	r.mu.Lock()
	delete(r.live, id)
	r.mu.Unlock()
}

func (r *Recordings) get(id string) (*liveRecording, error) {
	r.mu.Lock()
	l := r.live[id]
	r.mu.Unlock()
	if l == nil {
		return nil, errNoRecording
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil || l.rec.Finished() {
		return nil, errNoRecording
	}
	return l, nil
}

// State returns a recording (in progress or finished).
func (r *Recordings) State(ctx context.Context, id string) (Recording, error) {
	r.mu.Lock()
	l := r.live[id]
	enc, encoding := r.encoding[id]
	r.mu.Unlock()
	if l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.rec, nil
	}
	if encoding {
		return enc, nil
	}
	rec, err := r.cfg.Store.RecordingGet(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return rec, errNoRecording
	}
	return rec, err
}

// Pause pauses a recording in progress (RecordingStateChanged inactive); pausing a paused
// one does nothing.
func (r *Recordings) Pause(ctx context.Context, id string) error {
	return r.setPaused(ctx, id, true)
}

// Resume resumes a paused recording (RecordingStateChanged active).
func (r *Recordings) Resume(ctx context.Context, id string) error {
	return r.setPaused(ctx, id, false)
}

func (r *Recordings) setPaused(ctx context.Context, id string, pause bool) error {
	l, err := r.get(id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	want := RecActive
	if pause {
		want = RecPaused
	}
	if l.rec.State == want || l.rec.Finished() {
		l.mu.Unlock()
		return nil
	}
	now := time.Now().UTC()
	if pause {
		l.h.Pause()
		l.pauses = append(l.pauses, pauseInterval{start: now})
	} else {
		l.h.Resume()
		if n := len(l.pauses); n > 0 && l.pauses[n-1].end.IsZero() {
			l.pauses[n-1].end = now
		}
	}
	l.rec.State = want
	rec := l.rec
	l.mu.Unlock()
	if err := r.cfg.Store.RecordingPut(ctx, rec); err != nil {
		r.log.Warn("recording state not stored", "recording_id", id, "err", err)
	}
	msg := "Recording resumed."
	if pause {
		msg = "Recording paused."
	}
	r.stateChanged(l, rec, ResultInformation{Code: 200, Message: msg})
	return nil
}

// Stop stops a recording (stopRecording); its file is finished and announced.
func (r *Recordings) Stop(ctx context.Context, id string) error {
	l, err := r.get(id)
	if err != nil {
		return err
	}
	r.finish(l, "RecordingStopped", nil)
	return nil
}

// watch finishes a recording when its call ends.
func (r *Recordings) watch(l *liveRecording) {
	select {
	case <-l.stopped:
	case <-l.conn.done:
		r.finish(l, "CallEnded", nil)
	case <-l.h.Ended():
		r.finish(l, "CallEnded", nil)
	}
}

func (r *Recordings) fail(l *liveRecording, err error) {
	l.mu.Lock()
	id, call := l.rec.ID, l.rec.ServerCallID
	l.mu.Unlock()
	r.log.Warn("recording failed: the call goes on unrecorded", "recording_id", id, "call_id", call, "err", err)
	r.finish(l, "RecordingFailed", err)
}

// finish ends a recording once: the file is closed, the row updated, RecordingStateChanged
// (inactive) sent, and the file announced (RecordingFileStatusUpdated). An MP3 recording's
// state callback goes now; its row and file event once encoded (encode).
func (r *Recordings) finish(l *liveRecording, why string, failure error) {
	l.once.Do(func() {
		close(l.stopped)
		res := l.h.Stop()
		if failure == nil {
			failure = res.Err
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		l.mu.Lock()
		if n := len(l.pauses); n > 0 && l.pauses[n-1].end.IsZero() {
			l.pauses[n-1].end = now
		}
		rec := l.rec
		rec.EndedAt, rec.Duration, rec.Bytes = now, res.Duration, res.Bytes
		rec.State, rec.EndReason, rec.SessionEndReason = RecStopped, "SessionEnded", why
		ri := ResultInformation{Code: 200, Message: "Recording stopped."}
		if failure != nil {
			rec.State, rec.EndReason, rec.SessionEndReason = RecFailed, "ChunkUploadFailure", "RecordingFailed"
			ri = ResultInformation{Code: 500, Message: "Recording failed: the file could not be written."}
		}
		pauses := l.pauses
		rec.Metadata = r.metadata(rec, res, pauses)
		l.rec = rec
		l.mu.Unlock()
		if rec.FormatType == "mp3" {
			// The state callback now (the recording did stop); the row keeps its last state
			// until the file is encoded, so a node killed meanwhile marks it failed at start.
			r.mu.Lock()
			delete(r.live, rec.ID)
			r.encoding[rec.ID] = rec
			r.mu.Unlock()
			r.stateChanged(l, rec, ri)
			go func() {
				defer r.running.Done()
				r.encode(rec, res, pauses)
			}()
			return
		}
		defer r.running.Done()
		r.stored(rec, func() { r.stateChanged(l, rec, ri) })
	})
}

// stored stores a finished recording's row, forgets it, runs then (the state callback, if
// still to send) and announces its file.
func (r *Recordings) stored(rec Recording, then func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.cfg.Store.RecordingPut(ctx, rec); err != nil {
		r.log.Error("finished recording not stored", "recording_id", rec.ID, "err", err)
	}
	r.mu.Lock()
	delete(r.live, rec.ID)
	delete(r.encoding, rec.ID)
	r.mu.Unlock()
	if then != nil {
		then()
	}
	if r.cfg.Publisher != nil {
		f := r.File(rec)
		if err := r.cfg.Publisher.PublishRecordingFile(ctx, f); err != nil {
			r.log.Warn("RecordingFileStatusUpdated not queued", "recording_id", rec.ID, "err", err)
		}
	}
}

// encode encodes a finished MP3 recording's WAV (one of EncodeConcurrency at a time), removes
// the WAV, then stores the row and announces the file. A failed encoding fails the recording
// as a write error does (the row and the file event say RecordingFailed; the state callback
// already went): no MP3 is served, and the WAV is kept for the operator until the document
// is deleted.
func (r *Recordings) encode(rec Recording, res RecordingResult, pauses []pauseInterval) {
	r.encodeSlots <- struct{}{}
	defer func() { <-r.encodeSlots }()
	wav, mp3 := r.wavPath(rec), filepath.Join(r.cfg.Dir, rec.File)
	start := time.Now()
	err := r.cfg.MP3.EncodeMP3(context.Background(), wav, mp3)
	var st os.FileInfo
	if err == nil {
		st, err = os.Stat(mp3)
	}
	if err != nil {
		r.log.Error("recording not encoded to mp3: it failed", "recording_id", rec.ID, "call_id", rec.ServerCallID, "wav", filepath.Base(wav), "err", err)
		rec.State, rec.EndReason, rec.SessionEndReason = RecFailed, "ChunkUploadFailure", "RecordingFailed"
		rec.Metadata = r.metadata(rec, res, pauses)
		r.stored(rec, nil)
		return
	}
	rec.Bytes = st.Size()
	if err := os.Remove(wav); err != nil {
		r.log.Warn("recording's wav not removed after encoding", "recording_id", rec.ID, "err", err)
	}
	r.log.Debug("recording encoded to mp3", "recording_id", rec.ID, "duration", rec.Duration, "bytes", rec.Bytes, "took", time.Since(start))
	r.stored(rec, nil)
}

// wavPath is the WAV a recording is written to: its file, or beside its MP3.
func (r *Recordings) wavPath(rec Recording) string {
	base := filepath.Base(rec.File)
	return filepath.Join(r.cfg.Dir, strings.TrimSuffix(base, filepath.Ext(base))+".wav")
}

// File is a finished recording's locations.
func (r *Recordings) File(rec Recording) RecordingFile {
	base := r.cfg.Locations() + "v1/objects/" + rec.DocumentID
	return RecordingFile{Recording: rec, ContentLocation: base + "/content/audio",
		MetadataLocation: base + "/content/acsmetadata", DeleteLocation: base}
}

// recordingStateData is RecordingStateChanged.
type recordingStateData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	RecordingID       string            `json:"recordingId"`
	State             string            `json:"state"`
	StartDateTime     time.Time         `json:"startDateTime"`
	RecordingKind     string            `json:"recordingKind"`
	ResultInformation ResultInformation `json:"resultInformation"`
}

func (r *Recordings) stateChanged(l *liveRecording, rec Recording, ri ResultInformation) {
	l.conn.sendData(rec.CallbackURI, "Microsoft.Communication.RecordingStateChanged", recordingStateData{
		CallConnectionID: rec.CallConnectionID, ServerCallID: rec.ServerCallID, CorrelationID: rec.CorrelationID,
		RecordingID: rec.ID, State: rec.APIState(), StartDateTime: rec.StartedAt, RecordingKind: "azureCommunicationServices",
		ResultInformation: ri})
}

// The metadata document of a recording chunk, as ACS documents it ("Call Recording
// structure"): the chunk, its pauses, the recording's format and who is on it.
type recordingMetadata struct {
	ResourceID           string                `json:"resourceId"`
	CallID               string                `json:"callId"`
	ChunkDocumentID      string                `json:"chunkDocumentId"`
	ChunkIndex           int                   `json:"chunkIndex"`
	ChunkStartTime       time.Time             `json:"chunkStartTime"`
	ChunkDuration        float64               `json:"chunkDuration"`
	PauseResumeIntervals []pauseJSON           `json:"pauseResumeIntervals"`
	RecordingInfo        recordingInfoJSON     `json:"recordingInfo"`
	Participants         []metadataParticipant `json:"participants"`
	SessionEndReason     string                `json:"sessionEndReason,omitempty"`
}

type pauseJSON struct {
	StartTime time.Time `json:"startTime"`
	Duration  float64   `json:"duration"`
}

type recordingInfoJSON struct {
	ContentType        string `json:"contentType"`
	ChannelType        string `json:"channelType"`
	Format             string `json:"format"`
	AudioConfiguration struct {
		SampleRate int `json:"sampleRate"`
		BitRate    int `json:"bitRate"`
		Channels   int `json:"channels"`
	} `json:"audioConfiguration"`
}

type metadataParticipant struct {
	ParticipantID string `json:"participantId"`
	Channel       *int   `json:"channel,omitempty"`
}

func (r *Recordings) metadata(rec Recording, res RecordingResult, pauses []pauseInterval) string {
	m := recordingMetadata{ResourceID: r.cfg.ResourceID(), CallID: rec.ServerCallID, ChunkDocumentID: rec.DocumentID,
		ChunkStartTime: rec.StartedAt, ChunkDuration: float64(res.Duration.Milliseconds()),
		PauseResumeIntervals: []pauseJSON{}, Participants: []metadataParticipant{}, SessionEndReason: rec.SessionEndReason}
	m.RecordingInfo.ContentType, m.RecordingInfo.ChannelType, m.RecordingInfo.Format = rec.ContentType, rec.ChannelType, rec.FormatType
	channels := max(1, len(res.Channels))
	if rec.ChannelType == "mixed" {
		channels = 1
	}
	m.RecordingInfo.AudioConfiguration.SampleRate = 8000
	m.RecordingInfo.AudioConfiguration.BitRate = 8000 * 16 * channels
	m.RecordingInfo.AudioConfiguration.Channels = channels
	if rec.FormatType == "mp3" && r.cfg.MP3 != nil {
		rate, bits := r.cfg.MP3.MP3Format()
		m.RecordingInfo.AudioConfiguration.SampleRate, m.RecordingInfo.AudioConfiguration.BitRate = rate, bits
	}
	for _, p := range pauses {
		m.PauseResumeIntervals = append(m.PauseResumeIntervals, pauseJSON{StartTime: p.start, Duration: float64(p.end.Sub(p.start).Milliseconds())})
	}
	for _, p := range res.Participants {
		mp := metadataParticipant{ParticipantID: p.RawID()}
		for ch, q := range res.Channels {
			if q == p && rec.ChannelType == "unmixed" {
				mp.Channel = &ch
			}
		}
		m.Participants = append(m.Participants, mp)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// Recover marks the recordings this node left unfinished (it stopped without finishing them:
// a crash, a kill) as failed; their files are left as they are. Run it at start-up.
func (r *Recordings) Recover(ctx context.Context) error {
	recs, err := r.cfg.Store.RecordingsUnfinished(ctx, r.cfg.Node)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		r.mu.Lock()
		_, live := r.live[rec.ID]
		r.mu.Unlock()
		if live {
			continue
		}
		rec.State, rec.EndReason, rec.SessionEndReason = RecFailed, "ChunkUploadFailure", "RecordingFailed"
		rec.EndedAt = time.Now().UTC().Truncate(time.Millisecond)
		r.log.Warn("a recording left unfinished when telgw stopped is marked failed", "recording_id", rec.ID, "call_id", rec.ServerCallID, "file", rec.File)
		if err := r.cfg.Store.RecordingPut(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// Document is a finished recording's file by documentId, for download.
func (r *Recordings) Document(ctx context.Context, documentID string) (Recording, string, error) {
	rec, err := r.cfg.Store.RecordingByDocument(ctx, documentID)
	if errors.Is(err, problem.ErrNotFound) || err == nil && !rec.Finished() {
		return Recording{}, "", problem.NotFound("documentId", "no recording file with this id").WithCode("NotFound")
	}
	if err != nil {
		return Recording{}, "", err
	}
	if rec.Node != r.cfg.Node {
		return Recording{}, "", problem.NotFound("documentId", "this recording's file is kept by node %s", rec.Node).WithCode("NotFound")
	}
	return rec, filepath.Join(r.cfg.Dir, filepath.Base(rec.File)), nil
}

// DeleteDocument deletes a finished recording's file and metadata.
func (r *Recordings) DeleteDocument(ctx context.Context, documentID string) error {
	rec, path, err := r.Document(ctx, documentID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if wav := r.wavPath(rec); wav != path { // an MP3 recording's WAV, kept when it was not encoded
		if err := os.Remove(wav); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return r.cfg.Store.RecordingDelete(ctx, rec.ID)
}

// Close finishes every recording in progress (the node is stopping) and returns once their
// events are queued.
func (r *Recordings) Close() {
	r.mu.Lock()
	var ls []*liveRecording
	for _, l := range r.live {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		started := l.h != nil
		l.mu.Unlock()
		if started {
			r.finish(l, "CallEnded", nil)
		}
	}
	r.running.Wait() // those the call's end is finishing meanwhile
}

// byServerCall is the call connection of a call, by serverCallId.
func (a *Automation) byServerCall(id string) *Connection {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		if c.call.ID == id {
			return c
		}
	}
	return nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomID is n random bytes, base64url (unguessable ids).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
