-- +goose Up
-- One row per outbound message and recipient: the message log (queued → sent → delivered/failed).
CREATE TABLE sms_messages (
    id                       TEXT PRIMARY KEY,
    from_number              TEXT NOT NULL,
    to_number                TEXT NOT NULL,
    body                     TEXT NOT NULL,
    tag                      TEXT NOT NULL DEFAULT '',
    delivery_report          BOOLEAN NOT NULL DEFAULT FALSE,
    validity_ms              BIGINT NOT NULL DEFAULT 0,
    carrier                  TEXT NOT NULL DEFAULT '',
    status                   TEXT NOT NULL,
    status_details           TEXT NOT NULL DEFAULT '',
    segments                 INTEGER NOT NULL DEFAULT 0,
    segments_succeeded       INTEGER NOT NULL DEFAULT 0,
    segments_failed          INTEGER NOT NULL DEFAULT 0,
    -- NULL when the request was not repeatable; unique so a retry finds the first send.
    repeatability_id         TEXT UNIQUE,
    repeatability_first_sent TEXT NOT NULL DEFAULT '',
    attempts                 INTEGER NOT NULL DEFAULT 0,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    sent_at                  BIGINT NOT NULL DEFAULT 0,
    done_at                  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sms_messages_created ON sms_messages (created_at);

-- Parts the carrier accepted, keyed by the carrier's (normalised) message id for receipts.
CREATE TABLE sms_parts (
    carrier     TEXT NOT NULL,
    carrier_key TEXT NOT NULL,
    message_id  TEXT NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (carrier, carrier_key)
);
CREATE INDEX sms_parts_message ON sms_parts (message_id);

-- Recipients (to_number) who opted out of messages from one of our numbers (from_number).
CREATE TABLE sms_optouts (
    from_number TEXT NOT NULL,
    to_number   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (from_number, to_number)
);

-- Webhook subscribers of internal/events; event_types and phone_numbers are JSON arrays.
CREATE TABLE webhook_subscriptions (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL DEFAULT '',
    event_types     TEXT NOT NULL DEFAULT '[]',
    phone_numbers   TEXT NOT NULL DEFAULT '[]',
    source          TEXT NOT NULL DEFAULT 'api',
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);

-- +goose Down
DROP TABLE webhook_subscriptions;
DROP TABLE sms_optouts;
DROP TABLE sms_parts;
DROP TABLE sms_messages;
