package sip_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/calls/callstest"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/record"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// recFiles collects RecordingFileStatusUpdated.
type recFiles struct{ ch chan calls.RecordingFile }

func (f *recFiles) PublishRecordingFile(_ context.Context, rf calls.RecordingFile) error {
	f.ch <- rf
	return nil
}

func (f *recFiles) next() (calls.RecordingFile, error) {
	select {
	case rf := <-f.ch:
		return rf, nil
	case <-time.After(15 * time.Second):
		return calls.RecordingFile{}, errors.New("no RecordingFileStatusUpdated")
	}
}

// recStates returns the RecordingStateChanged callbacks of recording id so far.
func recStates(cbs *fakeCallbacks, id string) []map[string]any {
	cbs.mu.Lock()
	defer cbs.mu.Unlock()
	var out []map[string]any
	for _, e := range cbs.evs {
		if e.Type != "Microsoft.Communication.RecordingStateChanged" {
			continue
		}
		b, _ := json.Marshal(e.Data)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["recordingId"] == id {
			out = append(out, m)
		}
	}
	return out
}

// waitStates waits for recording id's n-th RecordingStateChanged and returns them all.
func waitStates(cbs *fakeCallbacks, id string, n int) ([]map[string]any, error) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s := recStates(cbs, id); len(s) >= n {
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("fewer than %d RecordingStateChanged for %s: %v", n, id, recStates(cbs, id))
}

// toneULaw is raw μ-law of a 440 Hz tone (about -12 dBm0) lasting d.
func toneULaw(d time.Duration) []byte {
	pcm := make([]int16, int(d.Seconds()*8000))
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	return audio.PCMU.Encode(nil, pcm)
}

// wavInfo reads a recording: its channels, duration and each channel's RMS level.
func wavInfo(path string) (channels int, d time.Duration, rms []float64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil, err
	}
	w, err := audio.ParseWAV(b)
	if err != nil {
		return 0, 0, nil, err
	}
	if w.Rate != 8000 || w.Bits != 16 {
		return 0, 0, nil, fmt.Errorf("WAV %d Hz %d bits", w.Rate, w.Bits)
	}
	s := w.Samples()
	n := len(s) / w.Channels
	rms = make([]float64, w.Channels)
	for i, v := range s {
		rms[i%w.Channels] += float64(v) * float64(v)
	}
	for c := range rms {
		rms[c] = math.Sqrt(rms[c] / float64(max(n, 1)))
	}
	return w.Channels, time.Duration(n) * time.Second / 8000, rms, nil
}

func near(got, want, tol time.Duration) bool { return got > want-tol && got < want+tol }

// failingFile is a recording's file on a full disk: every write fails with ENOSPC.
type failingFile struct{ *os.File }

func (failingFile) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestBotRecording: the app records a SIPp caller streaming a tone (G.711 from a file):
// mixed with a pause (the file's length is the active time, the paused second left out, the
// tone's energy in it), RecordingStateChanged active/inactive/active/inactive and
// RecordingFileStatusUpdated with its locations and metadata; a second recording of the call
// at once is 409; unmixed with the caller on channel 0 (channel 1 silent); a full disk fails
// the recording (RecordingStateChanged inactive 500, endReason ChunkUploadFailure) while the
// call goes on; a recording left running is finished when the caller hangs up.
func TestBotRecording(t *testing.T) {
	e, auto, pub, cbs := botEnv(t, envOpts{}, true)
	if err := os.WriteFile(filepath.Join(e.dir, "tone.ul"), toneULaw(12*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	st := callstest.NewRecordings()
	files := &recFiles{ch: make(chan calls.RecordingFile, 8)}
	dir := t.TempDir()
	recs, err := calls.NewRecordings(auto, calls.RecordingsConfig{Store: st, Dir: dir, Publisher: files,
		Locations: func() string { return "https://telgw.example/" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	caller := calls.Phone(otherNumber)
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(ctx, calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		if _, err := recs.Start(ctx, calls.StartRecordingParams{ServerCallID: "no-such-call"}); problem.KindOf(err) != problem.KindNotFound {
			return fmt.Errorf("recording an unknown call: %v", err)
		}
		if _, err := recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, FormatType: "mp3"}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("mp3: %v", err)
		}
		var rec calls.Recording
		if err := untilConnected(func() (err error) {
			rec, err = recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID})
			return err
		}); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID}); problem.KindOf(err) != problem.KindConflict {
			return fmt.Errorf("a second recording: %v", err)
		}
		time.Sleep(time.Second) // the caller talks
		if err := recs.Pause(ctx, rec.ID); err != nil {
			return err
		}
		active := time.Since(t0)
		time.Sleep(time.Second)
		if s, _ := recs.State(ctx, rec.ID); s.APIState() != "inactive" {
			return fmt.Errorf("paused recording state %s", s.APIState())
		}
		if err := recs.Resume(ctx, rec.ID); err != nil {
			return err
		}
		t1 := time.Now()
		time.Sleep(time.Second)
		if err := recs.Stop(ctx, rec.ID); err != nil {
			return err
		}
		active += time.Since(t1)
		f, err := files.next()
		if err != nil {
			return err
		}
		states, err := waitStates(cbs, rec.ID, 4)
		if err != nil {
			return err
		}
		var seq []string
		for _, s := range states {
			seq = append(seq, s["state"].(string))
		}
		if fmt.Sprint(seq) != "[active inactive active inactive]" || states[0]["startDateTime"] == nil {
			return fmt.Errorf("RecordingStateChanged %v (%v)", seq, states[0])
		}
		r := f.Recording
		if r.ID != rec.ID || r.EndReason != "SessionEnded" || r.SessionEndReason != "RecordingStopped" ||
			f.ContentLocation != "https://telgw.example/v1/objects/"+r.DocumentID+"/content/audio" ||
			f.DeleteLocation != "https://telgw.example/v1/objects/"+r.DocumentID {
			return fmt.Errorf("file %+v", f)
		}
		ch, d, rms, err := wavInfo(filepath.Join(dir, r.File))
		if err != nil {
			return err
		}
		t.Logf("mixed: %v recorded, %v active; RMS %.0f", d, active, rms[0])
		if ch != 1 || !near(d, active, 300*time.Millisecond) || !near(r.Duration, d, time.Millisecond) || rms[0] < 2000 {
			return fmt.Errorf("mixed file: %d channels, %v (active %v), RMS %.0f", ch, d, active, rms[0])
		}
		var md struct {
			ChunkDocumentID      string `json:"chunkDocumentId"`
			PauseResumeIntervals []struct {
				Duration float64 `json:"duration"`
			} `json:"pauseResumeIntervals"`
			RecordingInfo struct {
				ChannelType string `json:"channelType"`
			} `json:"recordingInfo"`
			Participants []struct {
				ParticipantID string `json:"participantId"`
				Channel       *int   `json:"channel"`
			} `json:"participants"`
		}
		if err := json.Unmarshal([]byte(r.Metadata), &md); err != nil {
			return err
		}
		if md.ChunkDocumentID != r.DocumentID || len(md.PauseResumeIntervals) != 1 || md.PauseResumeIntervals[0].Duration < 900 ||
			md.RecordingInfo.ChannelType != "mixed" || len(md.Participants) != 1 || md.Participants[0].ParticipantID != "4:"+otherNumber {
			return fmt.Errorf("metadata %s", r.Metadata)
		}
		if err := recs.Pause(ctx, rec.ID); problem.KindOf(err) != problem.KindNotFound {
			return fmt.Errorf("pausing a stopped recording: %v", err)
		}

		// Unmixed: the caller on channel 0 of two.
		rec, err = recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, ChannelType: "unmixed", Ordering: []calls.Participant{caller}})
		if err != nil {
			return err
		}
		time.Sleep(time.Second)
		if err := recs.Stop(ctx, rec.ID); err != nil {
			return err
		}
		if f, err = files.next(); err != nil {
			return err
		}
		ch, d, rms, err = wavInfo(filepath.Join(dir, f.Recording.File))
		if err != nil {
			return err
		}
		t.Logf("unmixed: %v, RMS %.0f", d, rms)
		if ch != 2 || !near(d, time.Second, 300*time.Millisecond) || rms[0] < 2000 || rms[1] != 0 {
			return fmt.Errorf("unmixed file: %d channels, %v, RMS %v", ch, d, rms)
		}
		if err := json.Unmarshal([]byte(f.Recording.Metadata), &md); err != nil {
			return err
		}
		if len(md.Participants) != 1 || md.Participants[0].Channel == nil || *md.Participants[0].Channel != 0 {
			return fmt.Errorf("unmixed metadata %s", f.Recording.Metadata)
		}

		// A full disk: the recording fails, the call goes on.
		restore := sip.SetCreateRecorder(func(path string, cfg record.Config) (*record.Recorder, error) {
			f, err := os.Create(path)
			if err != nil {
				return nil, err
			}
			return record.New(failingFile{f}, cfg)
		})
		rec, err = recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, ChannelType: "unmixed",
			Affinity: []calls.ChannelAffinity{{Participant: caller, Channel: 4}}}) // 5 channels: the 64 KiB buffer fills in 0.8 s
		restore()
		if err != nil {
			return err
		}
		if f, err = files.next(); err != nil {
			return err
		}
		if f.Recording.State != calls.RecFailed || f.Recording.EndReason != "ChunkUploadFailure" {
			return fmt.Errorf("failed recording %+v", f.Recording)
		}
		states, err = waitStates(cbs, rec.ID, 2)
		if err != nil {
			return err
		}
		if states[1]["state"] != "inactive" || resultCode(states[1]) != "500/0" {
			return fmt.Errorf("RecordingStateChanged of a failed recording %v", states[1])
		}
		if p, err := auto.Connection(ctx, conn.CallConnectionID); err != nil || p.State != calls.StateConnected {
			return fmt.Errorf("the call after the recording failed: %+v %v", p, err)
		}

		// Left running: finished when the caller hangs up.
		if rec, err = recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, PauseOnStart: true}); err != nil {
			return err
		}
		if rec.APIState() != "inactive" {
			return fmt.Errorf("pauseOnStart: %s", rec.APIState())
		}
		if err := recs.Resume(ctx, rec.ID); err != nil {
			return err
		}
		if f, err = files.next(); err != nil {
			return err
		}
		if f.Recording.SessionEndReason != "CallEnded" || f.Recording.Duration < 500*time.Millisecond {
			return fmt.Errorf("recording of an ended call %+v", f.Recording)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "tone.ul", "HOLD_MS", "9000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotRecordingMP3: recordingFormatType mp3 with Debian's lame: a SIPp caller streaming a
// tone is recorded for 2 s; once stopped, the file announced is an MP3 (16 kHz mono) that
// go-mp3 decodes to the recording's duration (plus lame's encoder delay and padding, < 0.11 s)
// with the tone in it, and the WAV it was encoded from is gone.
func TestBotRecordingMP3(t *testing.T) {
	lame, err := record.NewLame(record.DefaultLameConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := lame.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("lame (Debian package lame) is missing: %v", err)
		}
		t.Skipf("lame not installed: %v", err)
	}
	e, auto, pub, _ := botEnv(t, envOpts{}, true)
	if err := os.WriteFile(filepath.Join(e.dir, "tone.ul"), toneULaw(12*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	files := &recFiles{ch: make(chan calls.RecordingFile, 4)}
	dir := t.TempDir()
	recs, err := calls.NewRecordings(auto, calls.RecordingsConfig{Store: callstest.NewRecordings(), Dir: dir,
		Publisher: files, MP3: lame})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		if _, err := auto.Answer(ctx, calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL}); err != nil {
			return err
		}
		if _, err := recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, FormatType: "mp3", ChannelType: "unmixed"}); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("unmixed mp3: %v", err)
		}
		var rec calls.Recording
		if err := untilConnected(func() (err error) {
			rec, err = recs.Start(ctx, calls.StartRecordingParams{ServerCallID: ic.ServerCallID, FormatType: "mp3"})
			return err
		}); err != nil {
			return err
		}
		t0 := time.Now()
		time.Sleep(2 * time.Second) // the caller talks
		if err := recs.Stop(ctx, rec.ID); err != nil {
			return err
		}
		active := time.Since(t0)
		f, err := files.next()
		if err != nil {
			return err
		}
		r := f.Recording
		if r.ID != rec.ID || r.State != calls.RecStopped || filepath.Ext(r.File) != ".mp3" || r.FormatType != "mp3" {
			return fmt.Errorf("file %+v", r)
		}
		b, err := os.ReadFile(filepath.Join(dir, r.File))
		if err != nil {
			return err
		}
		if st, _ := os.Stat(filepath.Join(dir, r.File)); st.Mode().Perm() != 0o600 || st.Size() != r.Bytes {
			return fmt.Errorf("mp3 file mode %v, %d bytes (row says %d)", st.Mode().Perm(), st.Size(), r.Bytes)
		}
		if b[0] != 0xff || b[1]&0xf8 != 0xf0 { // frame sync, MPEG-2 (ISO/IEC 13818-3)
			return fmt.Errorf("not an MPEG-2 audio frame: % x", b[:4])
		}
		pcm, err := audio.LoadPrompt(b) // go-mp3, resampled to 8 kHz
		if err != nil {
			return err
		}
		d := time.Duration(len(pcm)) * time.Second / audio.Rate
		var sum float64
		for _, v := range pcm {
			sum += float64(v) * float64(v)
		}
		rms := math.Sqrt(sum / float64(max(len(pcm), 1)))
		t.Logf("mp3: %d bytes, decodes to %v; recorded %v, active %v; RMS %.0f", len(b), d, r.Duration, active, rms)
		if !near(r.Duration, active, 300*time.Millisecond) || d < r.Duration || d > r.Duration+110*time.Millisecond || rms < 2000 {
			return fmt.Errorf("mp3 of %v decodes to %v (active %v), RMS %.0f", r.Duration, d, active, rms)
		}
		if !strings.Contains(r.Metadata, `"format":"mp3"`) || !strings.Contains(r.Metadata, `"sampleRate":16000`) {
			return fmt.Errorf("metadata %s", r.Metadata)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "*.wav")); len(left) != 0 {
			return fmt.Errorf("wav left after encoding: %v", left)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_inband.xml", "AUDIO_FILE", "tone.ul", "HOLD_MS", "4000"), "4155550100", otherNumber)
	wait()
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// TestBotRecordingTwoPeople: a caller streaming a tone and an added participant echoing what
// it hears (SIPp -rtp_echo), recorded unmixed: the caller on channel 0, the participant on 1,
// both loud; the participant removed, the recording goes on with the caller alone.
func TestBotRecordingTwoPeople(t *testing.T) {
	e, auto, pub, cbs, c2Port := partsEnv(t)
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(e.dir, "tone.ul"), toneULaw(12*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := &recFiles{ch: make(chan calls.RecordingFile, 4)}
	recs, err := calls.NewRecordings(auto, calls.RecordingsConfig{Store: callstest.NewRecordings(), Dir: dir, Publisher: files})
	if err != nil {
		t.Fatal(err)
	}
	far := e.start("participant", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	connc := answerNext(t, auto, pub)
	caller := e.start("caller", carrierIP, freePort(t, carrierIP), e.scenario("uac_inband.xml", "AUDIO_FILE", "tone.ul", "HOLD_MS", "7000"),
		e.addr, "-s", "14155550100", "-key", "caller", otherNumber, "-m", "1", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	conn, ok := <-connc
	if !ok {
		t.Fatal("no call answered")
	}
	cbs.waitEvent(t, "CallConnected", 0)
	if _, err := auto.AddParticipant(ctx, conn.CallConnectionID, calls.AddParticipantParams{Target: calls.Phone(farNumber)}); err != nil {
		t.Fatal(err)
	}
	cbs.waitEvent(t, "AddParticipantSucceeded", 0)
	rec, err := recs.Start(ctx, calls.StartRecordingParams{ServerCallID: conn.ServerCallID, ChannelType: "unmixed"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // they talk
	if err := auto.RemoveParticipant(ctx, conn.CallConnectionID, calls.Phone(farNumber), calls.OperationParams{}); err != nil {
		t.Fatal(err)
	}
	far.wait(t, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := recs.Stop(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	f, err := files.next()
	if err != nil {
		t.Fatal(err)
	}
	ch, d, rms, err := wavInfo(filepath.Join(dir, f.Recording.File))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("two people unmixed: %v, RMS %.0f", d, rms)
	if ch != 2 || d < 1800*time.Millisecond || rms[0] < 2000 || rms[1] < 1000 {
		t.Fatalf("file: %d channels, %v, RMS %v", ch, d, rms)
	}
	var md struct {
		Participants []struct {
			ParticipantID string `json:"participantId"`
			Channel       int    `json:"channel"`
		} `json:"participants"`
	}
	if err := json.Unmarshal([]byte(f.Recording.Metadata), &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Participants) != 2 || md.Participants[0].ParticipantID != "4:"+otherNumber || md.Participants[0].Channel != 0 ||
		md.Participants[1].ParticipantID != "4:"+farNumber || md.Participants[1].Channel != 1 {
		t.Fatalf("metadata %s", f.Recording.Metadata)
	}
	caller.wait(t, 30*time.Second)
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}
