-- +goose Up
-- Call recordings (Call Automation callRecording, internal/calls/recording.go): one row per
-- recording, its state while it runs and its file once finished. id (the recordingId) and
-- document_id (what the download and delete locations name) are independent random values,
-- so neither can be derived from the other or guessed. file is the WAV's name in the
-- recordings directory of the node that recorded it; metadata the JSON document ACS serves
-- at the metadata location.
CREATE TABLE recordings (
    id                 TEXT PRIMARY KEY,
    document_id        TEXT NOT NULL UNIQUE,
    server_call_id     TEXT NOT NULL,
    call_connection_id TEXT NOT NULL DEFAULT '',
    correlation_id     TEXT NOT NULL DEFAULT '',
    callback_uri       TEXT NOT NULL DEFAULT '',
    channel_type       TEXT NOT NULL,
    format_type        TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    state              TEXT NOT NULL,
    node               TEXT NOT NULL DEFAULT '',
    file               TEXT NOT NULL,
    started_at         BIGINT NOT NULL,
    ended_at           BIGINT NOT NULL DEFAULT 0,
    duration_ms        BIGINT NOT NULL DEFAULT 0,
    size_bytes         BIGINT NOT NULL DEFAULT 0,
    end_reason         TEXT NOT NULL DEFAULT '',
    session_end_reason TEXT NOT NULL DEFAULT '',
    metadata           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX recordings_server_call ON recordings (server_call_id);

-- +goose Down
DROP TABLE recordings;
