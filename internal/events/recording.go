package events

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/calls"
)

// TypeRecordingFileStatusUpdated is the event of a finished call recording's file.
const TypeRecordingFileStatusUpdated = "Microsoft.Communication.RecordingFileStatusUpdated"

// RecordingChunk is AcsRecordingChunkInfoProperties.
type RecordingChunk struct {
	DocumentID       string `json:"documentId"`
	Index            int64  `json:"index"`
	EndReason        string `json:"endReason"`
	MetadataLocation string `json:"metadataLocation"`
	ContentLocation  string `json:"contentLocation"`
	DeleteLocation   string `json:"deleteLocation"`
}

// RecordingFileStatusUpdatedData is AcsRecordingFileStatusUpdatedEventData.
type RecordingFileStatusUpdatedData struct {
	RecordingStorageInfo struct {
		RecordingChunks []RecordingChunk `json:"recordingChunks"`
	} `json:"recordingStorageInfo"`
	RecordingStartTime   string `json:"recordingStartTime"`
	RecordingDurationMs  int64  `json:"recordingDurationMs"`
	RecordingContentType string `json:"recordingContentType"`
	RecordingChannelType string `json:"recordingChannelType"`
	RecordingFormatType  string `json:"recordingFormatType"`
	SessionEndReason     string `json:"sessionEndReason"`
}

// title is the event's spelling of a recording's type (Audio, Mixed, Wav).
func title(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// RecordingFileEvent builds Microsoft.Communication.RecordingFileStatusUpdated for a finished
// recording: one chunk (telgw does not split files), subject
// "/recording/call/{serverCallId}/serverCallId/{serverCallId}" as ACS sets it.
func RecordingFileEvent(id, topic string, f calls.RecordingFile) (Event, error) {
	r := f.Recording
	var d RecordingFileStatusUpdatedData
	d.RecordingStorageInfo.RecordingChunks = []RecordingChunk{{DocumentID: r.DocumentID, EndReason: r.EndReason,
		MetadataLocation: f.MetadataLocation, ContentLocation: f.ContentLocation, DeleteLocation: f.DeleteLocation}}
	d.RecordingStartTime = r.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	d.RecordingDurationMs = r.Duration.Milliseconds()
	d.RecordingContentType, d.RecordingChannelType, d.RecordingFormatType = title(r.ContentType), title(r.ChannelType), title(r.FormatType)
	d.SessionEndReason = r.SessionEndReason
	return New(id, topic, "/recording/call/"+r.ServerCallID+"/serverCallId/"+r.ServerCallID, TypeRecordingFileStatusUpdated, r.EndedAt, d)
}

// Recordings publishes RecordingFileStatusUpdated to the webhooks subscribed to it, through
// the durable queue (retried like the SMS events). It implements calls.RecordingPublisher.
type Recordings struct {
	Dispatcher *Dispatcher
	Jobs       JobInserter
	// Topic is the events' topic. Default "/telgw".
	Topic string
}

var _ calls.RecordingPublisher = (*Recordings)(nil)

// PublishRecordingFile queues the event for every matching subscription.
func (p *Recordings) PublishRecordingFile(ctx context.Context, f calls.RecordingFile) error {
	topic := p.Topic
	if topic == "" {
		topic = "/telgw"
	}
	ev, err := RecordingFileEvent(uuid.NewString(), topic, f)
	if err != nil {
		return fmt.Errorf("recording event: %w", err)
	}
	return p.Dispatcher.PublishTx(ctx, p.Jobs, ev)
}
