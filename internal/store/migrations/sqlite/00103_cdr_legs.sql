-- +goose Up
-- A call's legs in its CDR (calls.CDR.Legs): the caller's and callee's, an app's leg (kind bot,
-- the callback URL's host), and legs a transfer replaced. A JSON array, written once with the
-- CDR and only read back whole.
ALTER TABLE sip_cdrs ADD COLUMN legs TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE sip_cdrs DROP COLUMN legs;
