-- +goose Up
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE identities (
    id               TEXT PRIMARY KEY,
    created_at       BIGINT NOT NULL,
    -- token_generation is bumped by revokeAccessTokens; tokens carry the generation they were
    -- issued under and stop verifying once it moves on.
    token_generation BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE identities;
DROP TABLE settings;
