package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
)

func TestRecordingFileEvent(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f := calls.RecordingFile{Recording: calls.Recording{ID: "r", DocumentID: "0-doc", ServerCallID: "call-1", ChannelType: "unmixed",
		FormatType: "wav", ContentType: "audio", StartedAt: t0, EndedAt: t0.Add(3 * time.Second), Duration: 2980 * time.Millisecond,
		EndReason: "SessionEnded", SessionEndReason: "CallEnded"},
		ContentLocation: "https://h/v1/objects/0-doc/content/audio", MetadataLocation: "https://h/v1/objects/0-doc/content/acsmetadata", DeleteLocation: "https://h/v1/objects/0-doc"}
	ev, err := RecordingFileEvent("id", "/telgw", f)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventType != TypeRecordingFileStatusUpdated || ev.Subject != "/recording/call/call-1/serverCallId/call-1" || !ev.EventTime.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("event %+v", ev)
	}
	want := `{"recordingStorageInfo":{"recordingChunks":[{"documentId":"0-doc","index":0,"endReason":"SessionEnded",` +
		`"metadataLocation":"https://h/v1/objects/0-doc/content/acsmetadata","contentLocation":"https://h/v1/objects/0-doc/content/audio",` +
		`"deleteLocation":"https://h/v1/objects/0-doc"}]},"recordingStartTime":"2026-12-03T12:00:00.000Z","recordingDurationMs":2980,` +
		`"recordingContentType":"Audio","recordingChannelType":"Unmixed","recordingFormatType":"Wav","sessionEndReason":"CallEnded"}`
	if string(ev.Data) != want {
		t.Fatalf("data\n%s\nwant\n%s", ev.Data, want)
	}
	var s Subscription
	s.EventTypes = []string{"microsoft.communication.recordingfilestatusupdated"}
	if !s.Matches(ev) {
		t.Fatal("a subscription to the type does not match")
	}
	_ = json.Valid(ev.Data)
}
