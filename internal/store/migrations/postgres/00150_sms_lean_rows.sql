-- +goose Up
-- Fewer index entries and WAL records per outbound message (issue: SMS throughput).
--
-- sms_parts.message_id loses its foreign key. Parts are written only by the statement that
-- marks their message sent (MessagesSent, PartsAdd), and messages are never deleted, so the
-- key guarded nothing, while each part's insert ran a trigger that looked its message up and
-- locked it FOR KEY SHARE (a WAL record of its own).
ALTER TABLE sms_parts DROP CONSTRAINT sms_parts_message_id_fkey;

-- Only repeatable requests' messages carry a repeatability id: the unique index now holds
-- those alone, instead of an entry for every message's NULL, written again by each update
-- that moves a message (queued -> sent is not a HOT update). ON CONFLICT names the predicate
-- (store.onRepeatPG).
ALTER TABLE sms_messages DROP CONSTRAINT sms_messages_repeatability_id_key;
CREATE UNIQUE INDEX sms_messages_repeatability ON sms_messages (repeatability_id) WHERE repeatability_id IS NOT NULL;

-- +goose Down
DROP INDEX sms_messages_repeatability;
ALTER TABLE sms_messages ADD CONSTRAINT sms_messages_repeatability_id_key UNIQUE (repeatability_id);
ALTER TABLE sms_parts ADD CONSTRAINT sms_parts_message_id_fkey FOREIGN KEY (message_id) REFERENCES sms_messages (id) ON DELETE CASCADE;
