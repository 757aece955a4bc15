-- +goose Up
-- SIP (internal/sip): the ACS SIP routing configuration, customers' endpoint credentials
-- (digest HA1s only) and call detail records.
CREATE TABLE sip_routing (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    updated_at BIGINT NOT NULL
);
CREATE TABLE sip_trunks (
    fqdn TEXT PRIMARY KEY,
    port INTEGER NOT NULL
);
CREATE TABLE sip_routes (
    position       INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    number_pattern TEXT NOT NULL,
    trunks         TEXT NOT NULL DEFAULT ''
);
CREATE TABLE sip_credentials (
    username   TEXT PRIMARY KEY,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    numbers    TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE TABLE sip_cdrs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL,
    direction   TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number   TEXT NOT NULL,
    trunk       TEXT NOT NULL DEFAULT '',
    start_at    BIGINT NOT NULL,
    ringing_at  BIGINT NOT NULL DEFAULT 0,
    answer_at   BIGINT NOT NULL DEFAULT 0,
    end_at      BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    disposition TEXT NOT NULL,
    sip_code    INTEGER NOT NULL,
    q850        INTEGER NOT NULL DEFAULT 0,
    ended_by    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sip_cdrs_start ON sip_cdrs (start_at);
CREATE INDEX sip_cdrs_from ON sip_cdrs (from_number, start_at);
CREATE INDEX sip_cdrs_to ON sip_cdrs (to_number, start_at);

-- +goose Down
DROP TABLE sip_cdrs;
DROP TABLE sip_credentials;
DROP TABLE sip_routes;
DROP TABLE sip_trunks;
DROP TABLE sip_routing;
