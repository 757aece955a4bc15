-- +goose Up
-- The senders (internal/sms) lease the queued messages they claim instead of holding them
-- locked in an open transaction: a claim is one short committed statement that sets
-- lease_owner (the process, "<node name>#<random>") and lease_until (unix ms). A queued
-- message leased until later is not due for other claims; the outcome is recorded only while
-- lease_owner is still the sender's. A lease of a node killed with -9 expires, or is ended when
-- the node starts again.
ALTER TABLE sms_messages ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_messages ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sms_messages DROP COLUMN lease_until;
ALTER TABLE sms_messages DROP COLUMN lease_owner;
