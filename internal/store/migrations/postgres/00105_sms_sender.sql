-- +goose Up
-- The per-carrier sender (internal/sms) claims queued messages in batches instead of one River
-- job per request: seq orders them (per destination too), next_attempt_at holds a message
-- back after a transient failure, keyword_reply marks STOP/START/HELP answers, which are sent
-- whatever the recipient's opt-out. The partial indexes cover only the queue, not the log.
ALTER TABLE sms_messages ADD COLUMN seq BIGSERIAL;
ALTER TABLE sms_messages ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sms_messages ADD COLUMN keyword_reply BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX sms_messages_queue ON sms_messages (carrier, seq) WHERE status = 'queued';
CREATE INDEX sms_messages_queue_to ON sms_messages (to_number, seq) WHERE status = 'queued';

-- +goose Down
DROP INDEX sms_messages_queue_to;
DROP INDEX sms_messages_queue;
ALTER TABLE sms_messages DROP COLUMN keyword_reply;
ALTER TABLE sms_messages DROP COLUMN next_attempt_at;
ALTER TABLE sms_messages DROP COLUMN seq;
