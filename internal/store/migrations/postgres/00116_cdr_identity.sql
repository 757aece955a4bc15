-- +goose Up
-- STIR/SHAKEN on the call record (issue 16): the verification status of an inbound call's
-- Identity header (ATIS-1000074 verstat) and the attestation telgw signed an outbound call with.
ALTER TABLE sip_cdrs ADD COLUMN verstat TEXT NOT NULL DEFAULT '';
ALTER TABLE sip_cdrs ADD COLUMN attest TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sip_cdrs DROP COLUMN attest;
ALTER TABLE sip_cdrs DROP COLUMN verstat;
