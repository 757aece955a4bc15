-- +goose Up
CREATE TABLE push_devices (
    platform    TEXT NOT NULL,
    token       TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (platform, token)
);
CREATE INDEX push_devices_identity ON push_devices (identity_id);

-- +goose Down
DROP TABLE push_devices;
