-- +goose Up
-- Concatenated inbound messages being reassembled (internal/sms PartStore). A part is
-- acknowledged to the SMSC only once it is stored here, so a node killed between parts loses
-- nothing, and parts of one message that arrive on binds of different nodes meet here. The
-- message row serialises receivers of one message (its row lock on PostgreSQL) and holds the
-- claim of the one receiver that delivers it: the receiver of the last part, or the sweeper
-- once the reassembly timeout passed or a claimer died (claimed_until lapsed).
CREATE TABLE sms_inbound_messages (
    carrier        TEXT NOT NULL,
    from_number    TEXT NOT NULL,
    to_number      TEXT NOT NULL,
    ref            INTEGER NOT NULL,
    ref16          BOOLEAN NOT NULL,
    total          INTEGER NOT NULL,
    first_received BIGINT NOT NULL,
    claim          TEXT NOT NULL DEFAULT '',
    claimed_until  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (carrier, from_number, to_number, ref, ref16, total)
);
CREATE INDEX sms_inbound_messages_sweep ON sms_inbound_messages (carrier, first_received);

-- One row per received part; claim is the token of the claim that covers it ('' for a part
-- that arrived after its message was claimed).
CREATE TABLE sms_inbound_parts (
    carrier     TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number   TEXT NOT NULL,
    ref         INTEGER NOT NULL,
    ref16       BOOLEAN NOT NULL,
    total       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    coding      INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    claim       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (carrier, from_number, to_number, ref, ref16, total, seq)
);

-- +goose Down
DROP TABLE sms_inbound_parts;
DROP TABLE sms_inbound_messages;
