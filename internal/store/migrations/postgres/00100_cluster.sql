-- +goose Up
-- Several nodes on one database (internal/cluster). cluster_nodes: one row per running node,
-- renewed every heartbeat; a row past expires_at is a dead node. cluster_bindings: the shared
-- location service, each registered device contact of a user with the node whose connection
-- carries it (a binding counts only while its node is live). cluster_leases: named, counted
-- leases (e.g. SMPP binds per carrier for the whole cluster), one row per slot; a slot is free
-- when released or past expires_at. Times are unix milliseconds.
CREATE TABLE cluster_nodes (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    sip_addr      TEXT NOT NULL DEFAULT '',
    http_addr     TEXT NOT NULL DEFAULT '',
    version       TEXT NOT NULL DEFAULT '',
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    draining      BOOLEAN NOT NULL DEFAULT FALSE,
    calls         INTEGER NOT NULL DEFAULT 0,
    registrations INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE cluster_bindings (
    identity   TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    bkey       TEXT NOT NULL,
    contact    TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (identity, node_id, bkey)
);
CREATE INDEX cluster_bindings_node ON cluster_bindings (node_id);
CREATE TABLE cluster_leases (
    name       TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    node_id    TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (name, slot)
);
CREATE INDEX cluster_leases_node ON cluster_leases (node_id);

-- +goose Down
DROP TABLE cluster_leases;
DROP TABLE cluster_bindings;
DROP TABLE cluster_nodes;
