-- +goose Up
-- Digest credentials derived from user access tokens (RFC 8760 HA1 values, never the tokens), so
-- SIP clients without Bearer support may use the token as their digest password.
CREATE TABLE token_credentials (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_id    TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    ha1_md5     TEXT NOT NULL,
    ha1_sha256  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (identity_id, token_id)
);

-- +goose Down
DROP TABLE token_credentials;
