package store

import (
	"context"
	"time"

	"github.com/telgw/telgw/internal/calls"
)

var _ calls.RecordingStore = (*DB)(nil)

const recordingCols = `id, document_id, server_call_id, call_connection_id, correlation_id, callback_uri,
	channel_type, format_type, content_type, state, node, file, started_at, ended_at, duration_ms, size_bytes,
	end_reason, session_end_reason, metadata`

// RecordingPut inserts a recording or replaces its row.
func (db *DB) RecordingPut(ctx context.Context, r calls.Recording) error {
	_, err := db.Exec(ctx, `INSERT INTO recordings (`+recordingCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, ended_at = excluded.ended_at,
			duration_ms = excluded.duration_ms, size_bytes = excluded.size_bytes, end_reason = excluded.end_reason,
			session_end_reason = excluded.session_end_reason, metadata = excluded.metadata`,
		r.ID, r.DocumentID, r.ServerCallID, r.CallConnectionID, r.CorrelationID, r.CallbackURI,
		r.ChannelType, r.FormatType, r.ContentType, r.State, r.Node, r.File, msOrZero(r.StartedAt), msOrZero(r.EndedAt),
		r.Duration.Milliseconds(), r.Bytes, r.EndReason, r.SessionEndReason, r.Metadata)
	return mapErr(err)
}

// RecordingGet reads a recording by recordingId.
func (db *DB) RecordingGet(ctx context.Context, id string) (calls.Recording, error) {
	return scanRecording(db.QueryRow(ctx, `SELECT `+recordingCols+` FROM recordings WHERE id = $1`, id))
}

// RecordingByDocument reads a recording by its documentId.
func (db *DB) RecordingByDocument(ctx context.Context, documentID string) (calls.Recording, error) {
	return scanRecording(db.QueryRow(ctx, `SELECT `+recordingCols+` FROM recordings WHERE document_id = $1`, documentID))
}

// RecordingDelete removes a recording's row.
func (db *DB) RecordingDelete(ctx context.Context, id string) error {
	_, err := db.Exec(ctx, `DELETE FROM recordings WHERE id = $1`, id)
	return err
}

// RecordingsUnfinished lists node's recordings still active or paused.
func (db *DB) RecordingsUnfinished(ctx context.Context, node string) ([]calls.Recording, error) {
	rows, err := db.Query(ctx, `SELECT `+recordingCols+` FROM recordings WHERE node = $1 AND state IN ('active', 'paused') ORDER BY started_at`, node)
	return scanRows(rows, err, scanRecording)
}

func scanRecording(row Row) (calls.Recording, error) {
	var r calls.Recording
	var started, ended, dur int64
	if err := row.Scan(&r.ID, &r.DocumentID, &r.ServerCallID, &r.CallConnectionID, &r.CorrelationID, &r.CallbackURI,
		&r.ChannelType, &r.FormatType, &r.ContentType, &r.State, &r.Node, &r.File, &started, &ended, &dur, &r.Bytes,
		&r.EndReason, &r.SessionEndReason, &r.Metadata); err != nil {
		return calls.Recording{}, mapErr(err)
	}
	r.StartedAt, r.EndedAt, r.Duration = msOrZeroTime(started), msOrZeroTime(ended), time.Duration(dur)*time.Millisecond
	return r, nil
}
