-- +goose Up
-- Issuing a voip token drops the identity's expired digest credentials: an index range scan
-- instead of reading every credential the identity ever had.
CREATE INDEX token_credentials_expiry ON token_credentials (identity_id, expires_at);

-- +goose Down
DROP INDEX token_credentials_expiry;
