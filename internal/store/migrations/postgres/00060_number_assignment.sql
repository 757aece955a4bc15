-- +goose Up
-- Number assignment (internal/numbers): a purchased number routed to a communication user
-- ("user:8:acs:…") is that user's caller ID, and the SIP stack looks it up by route on every
-- call the user places. The partial index answers "the lowest purchased number with this
-- route" from one index entry.
CREATE INDEX numbers_route ON numbers (route, e164) WHERE state = 'purchased';

-- +goose Down
DROP INDEX numbers_route;
