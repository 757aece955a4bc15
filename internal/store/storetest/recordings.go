package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// Recordings runs the call recording cases: a recording's row through its life (started,
// paused, finished with its metadata), found by recordingId and by documentId, deleted.
func Recordings(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Life", func(t *testing.T) { t.Parallel(); recordingLife(t, open(t)) })
	t.Run("Unfinished", func(t *testing.T) { t.Parallel(); recordingsUnfinished(t, open(t)) })
}

func recordingsUnfinished(t *testing.T, db *store.DB) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_800_000_000_000).UTC()
	for i, c := range []struct{ node, state string }{
		{"n1", calls.RecActive}, {"n1", calls.RecPaused}, {"n1", calls.RecStopped}, {"n1", calls.RecFailed}, {"n2", calls.RecActive},
	} {
		id := string(rune('a' + i))
		if err := db.RecordingPut(ctx, calls.Recording{ID: id, DocumentID: "0-" + id, ServerCallID: "call", ChannelType: "mixed",
			FormatType: "wav", ContentType: "audio", State: c.state, Node: c.node, File: id + ".wav", StartedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.RecordingsUnfinished(ctx, "n1")
	if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("unfinished on n1 = %+v, %v; want a, b", got, err)
	}
	if got, err := db.RecordingsUnfinished(ctx, "n3"); err != nil || len(got) != 0 {
		t.Fatalf("unfinished on n3 = %+v, %v", got, err)
	}
}

func recordingLife(t *testing.T, db *store.DB) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_800_000_000_000).UTC()
	r := calls.Recording{ID: "rec-1", DocumentID: "0-doc1", ServerCallID: "call-1", CallConnectionID: "conn-1",
		CorrelationID: "corr-1", CallbackURI: "https://app.example/cb", ChannelType: "unmixed", FormatType: "wav",
		ContentType: "audio", State: calls.RecActive, Node: "n1", File: "0-doc1.wav", StartedAt: t0}
	if err := db.RecordingPut(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := db.RecordingGet(ctx, "rec-1"); err != nil || got != r {
		t.Fatalf("get = %+v, %v; want %+v", got, err, r)
	}
	other := r
	other.ID = "rec-2"
	if err := db.RecordingPut(ctx, other); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("a second recording with the same documentId: %v, want ErrConflict", err)
	}
	r.State = calls.RecPaused
	if err := db.RecordingPut(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.State, r.EndedAt, r.Duration, r.Bytes = calls.RecStopped, t0.Add(12*time.Second), 11980*time.Millisecond, 191724
	r.EndReason, r.SessionEndReason, r.Metadata = "SessionEnded", "CallEnded", `{"chunkDocumentId":"0-doc1"}`
	if err := db.RecordingPut(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := db.RecordingByDocument(ctx, "0-doc1")
	if err != nil || got != r {
		t.Fatalf("by document = %+v, %v; want %+v", got, err, r)
	}
	if !got.Finished() || got.APIState() != "inactive" {
		t.Fatalf("finished %v, state %s", got.Finished(), got.APIState())
	}
	if _, err := db.RecordingByDocument(ctx, "rec-1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("a recordingId is not a documentId: %v", err)
	}
	if err := db.RecordingDelete(ctx, "rec-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordingGet(ctx, "rec-1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
	if err := db.RecordingDelete(ctx, "rec-1"); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
}
