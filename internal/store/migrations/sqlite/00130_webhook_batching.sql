-- +goose Up
-- Event Grid's batching settings of a webhook subscription (issue 13): up to
-- max_events_per_batch events per POST (0 or 1: one event per POST, Event Grid's default),
-- a batch growing to about preferred_batch_kb (0: 64).
ALTER TABLE webhook_subscriptions ADD COLUMN max_events_per_batch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_subscriptions ADD COLUMN preferred_batch_kb INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_subscriptions DROP COLUMN preferred_batch_kb;
ALTER TABLE webhook_subscriptions DROP COLUMN max_events_per_batch;
