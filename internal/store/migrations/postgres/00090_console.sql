-- +goose Up
-- Web console sign-in state (internal/console): server-side sessions and the single-use
-- sign-in links `telgw console link` prints. Only the SHA-256 of a token is stored, so a
-- copy of the database does not sign anyone in. key_fp names the access key a session was
-- opened with; a rotated key ends its sessions. Rows past expires_at are dead and swept.
CREATE TABLE console_tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    csrf       TEXT NOT NULL DEFAULT '',
    key_fp     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_tokens_expiry ON console_tokens (expires_at);

-- +goose Down
DROP TABLE console_tokens;
