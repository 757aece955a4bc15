-- +goose Up
-- The number inventory (internal/numbers). A number may be held exactly when
-- free_at <= now: available numbers have free_at 0, held ones the hold's expiry, quarantined
-- ones the end of quarantine, purchased ones NULL. So holds and quarantines run out without
-- any writer, and one index range answers "which numbers of this area code are free".
CREATE TABLE numbers (
    e164            TEXT PRIMARY KEY,
    npa             TEXT NOT NULL,
    number_type     TEXT NOT NULL,
    offer_calling   TEXT NOT NULL,
    offer_sms       TEXT NOT NULL,
    locality        TEXT NOT NULL DEFAULT '',
    admin_division  TEXT NOT NULL DEFAULT '',
    carrier         TEXT NOT NULL DEFAULT '',
    monthly_cost    DOUBLE PRECISION NOT NULL,
    state           TEXT NOT NULL DEFAULT 'available',
    free_at         BIGINT,
    hold_id         TEXT,
    assignment_type TEXT NOT NULL DEFAULT '',
    calling         TEXT NOT NULL DEFAULT '',
    sms             TEXT NOT NULL DEFAULT '',
    purchased_at    BIGINT,
    route           TEXT NOT NULL DEFAULT '',
    imported_at     BIGINT NOT NULL
);
CREATE INDEX numbers_free ON numbers (number_type, npa, free_at);
CREATE INDEX numbers_hold ON numbers (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX numbers_purchased ON numbers (e164) WHERE state = 'purchased';
-- The sweeper's scans: holds and quarantines that ran out.
CREATE INDEX numbers_held ON numbers (free_at) WHERE state = 'held';
CREATE INDEX numbers_quarantined ON numbers (free_at) WHERE state = 'quarantined';

-- Searches (ACS :search results); their numbers are those with hold_id = id.
CREATE TABLE number_searches (
    id              TEXT PRIMARY KEY,
    number_type     TEXT NOT NULL,
    assignment_type TEXT NOT NULL,
    calling         TEXT NOT NULL,
    sms             TEXT NOT NULL,
    area_code       TEXT NOT NULL DEFAULT '',
    quantity        INTEGER NOT NULL,
    monthly_cost    DOUBLE PRECISION NOT NULL,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX number_searches_expires ON number_searches (expires_at);

-- Reservations; their numbers are those with hold_id = id.
CREATE TABLE number_reservations (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX number_reservations_created ON number_reservations (created_at);

-- Long-running operations of the phone numbers API.
CREATE TABLE number_operations (
    id            TEXT PRIMARY KEY,
    op_type       TEXT NOT NULL,
    status        TEXT NOT NULL,
    resource      TEXT NOT NULL DEFAULT '',
    error_code    TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX number_operations_created ON number_operations (created_at);

-- +goose Down
DROP TABLE number_operations;
DROP TABLE number_reservations;
DROP TABLE number_searches;
DROP TABLE numbers;
