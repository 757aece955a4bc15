package store

import (
	"context"
	"encoding/json"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
)

var _ events.Store = (*DB)(nil)

const webhookCols = `id, url, secret, event_types, phone_numbers, source, disabled, disabled_reason, created_at, max_events_per_batch, preferred_batch_kb`

func scanWebhook(row Row) (events.Subscription, error) {
	var s events.Subscription
	var types, numbers string
	var created int64
	if err := row.Scan(&s.ID, &s.URL, &s.Secret, &types, &numbers, &s.Source, &s.Disabled, &s.DisabledReason, &created,
		&s.MaxEventsPerBatch, &s.PreferredBatchSizeInKilobytes); err != nil {
		return events.Subscription{}, mapErr(err)
	}
	_ = json.Unmarshal([]byte(types), &s.EventTypes)
	_ = json.Unmarshal([]byte(numbers), &s.PhoneNumbers)
	s.CreatedAt = fromMS(created)
	return s, nil
}

// SubscriptionList returns every webhook subscription.
func (db *DB) SubscriptionList(ctx context.Context) ([]events.Subscription, error) {
	rows, err := db.Query(ctx, `SELECT `+webhookCols+` FROM webhook_subscriptions ORDER BY created_at, id`)
	return scanRows(rows, err, scanWebhook)
}

// SubscriptionGet reads one webhook subscription.
func (db *DB) SubscriptionGet(ctx context.Context, id string) (events.Subscription, error) {
	return scanWebhook(db.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhook_subscriptions WHERE id = $1`, id))
}

// SubscriptionPut inserts or replaces a subscription, keeping a stored disabled state.
func (db *DB) SubscriptionPut(ctx context.Context, s events.Subscription) error {
	types, _ := json.Marshal(nonNil(s.EventTypes))
	numbers, _ := json.Marshal(nonNil(s.PhoneNumbers))
	_, err := db.Exec(ctx, `INSERT INTO webhook_subscriptions (`+webhookCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, secret = excluded.secret, event_types = excluded.event_types,
		phone_numbers = excluded.phone_numbers, source = excluded.source,
		max_events_per_batch = excluded.max_events_per_batch, preferred_batch_kb = excluded.preferred_batch_kb,
		disabled = CASE WHEN excluded.disabled THEN excluded.disabled ELSE webhook_subscriptions.disabled END,
		disabled_reason = CASE WHEN excluded.disabled THEN excluded.disabled_reason ELSE webhook_subscriptions.disabled_reason END`,
		s.ID, s.URL, s.Secret, string(types), string(numbers), s.Source, s.Disabled, s.DisabledReason, ms(s.CreatedAt),
		s.MaxEventsPerBatch, s.PreferredBatchSizeInKilobytes)
	return mapErr(err)
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// SubscriptionDelete removes a subscription.
func (db *DB) SubscriptionDelete(ctx context.Context, id string) error {
	res, err := db.Exec(ctx, `DELETE FROM webhook_subscriptions WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// SubscriptionSetDisabled disables or re-enables a subscription.
func (db *DB) SubscriptionSetDisabled(ctx context.Context, id string, disabled bool, reason string) error {
	res, err := db.Exec(ctx, `UPDATE webhook_subscriptions SET disabled = $2, disabled_reason = $3 WHERE id = $1`, id, disabled, reason)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}
