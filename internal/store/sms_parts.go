package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/gsm"
)

var _ sms.PartStore = (*DB)(nil)

// inboundKeyWhere selects one message's rows; inboundKeyArgs are its $1…$6.
const inboundKeyWhere = `carrier = $1 AND from_number = $2 AND to_number = $3 AND ref = $4 AND ref16 = $5 AND total = $6`

func inboundKeyArgs(k sms.InboundKey, more ...any) []any {
	return append([]any{k.Carrier, k.From, k.To, int64(k.Ref), k.Ref16, int64(k.Total)}, more...)
}

func validInboundPart(p sms.InboundPart) error {
	if p.Total < 2 || p.Total > 255 || p.Seq < 1 || p.Seq > p.Total {
		return fmt.Errorf("inbound part %d of %d: not a part of a concatenated message", p.Seq, p.Total)
	}
	return nil
}

// InboundPartAdd records a part and claims its message when the part completes it
// (sms.PartStore). Creating or touching the message row first takes that row's lock on
// PostgreSQL (SQLite serialises every writer at BEGIN), so receivers of parts of one message
// on any node run one after the other, each counting the parts the others committed: exactly
// one of them sees the message complete.
func (db *DB) InboundPartAdd(ctx context.Context, p sms.InboundPartAddParams) (sms.InboundClaim, bool, error) {
	if err := validInboundPart(p.Part); err != nil {
		return sms.InboundClaim{}, false, err
	}
	if p.Token == "" {
		return sms.InboundClaim{}, false, errors.New("inbound part: claim token required")
	}
	k := p.Part.InboundKey
	now := ms(p.Part.ReceivedAt)
	var c sms.InboundClaim
	claimed := false
	err := db.InTx(ctx, func(tx *Tx) error {
		var holder string
		var until int64
		err := tx.QueryRow(ctx, `INSERT INTO sms_inbound_messages (carrier, from_number, to_number, ref, ref16, total, first_received)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (carrier, from_number, to_number, ref, ref16, total) DO UPDATE SET first_received = sms_inbound_messages.first_received
			RETURNING claim, claimed_until`, inboundKeyArgs(k, now)...).Scan(&holder, &until)
		if err != nil {
			return fmt.Errorf("lock inbound message: %w", mapErr(err))
		}
		// A repeated part replaces the earlier copy but keeps its claim: it is the same part,
		// delivered with the claimed message.
		if _, err := tx.Exec(ctx, `INSERT INTO sms_inbound_parts (carrier, from_number, to_number, ref, ref16, total, seq, coding, data, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (carrier, from_number, to_number, ref, ref16, total, seq) DO UPDATE SET coding = excluded.coding,
				data = excluded.data, received_at = excluded.received_at`,
			inboundKeyArgs(k, int64(p.Part.Seq), int64(p.Part.Coding), orEmpty(p.Part.Data), now)...); err != nil {
			return fmt.Errorf("insert inbound part: %w", mapErr(err))
		}
		if holder != "" && until >= now {
			return nil // another receiver is delivering the message
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sms_inbound_parts WHERE `+inboundKeyWhere, inboundKeyArgs(k)...).Scan(&n); err != nil {
			return fmt.Errorf("count inbound parts: %w", err)
		}
		if n < k.Total {
			return nil
		}
		if c, err = claimInbound(ctx, tx, k, p.Token, ms(p.ClaimUntil)); err != nil {
			return err
		}
		claimed = true
		return nil
	})
	if err != nil || !claimed {
		return sms.InboundClaim{}, false, err
	}
	return c, true, nil
}

// orEmpty keeps an empty part's data a zero-length value rather than NULL.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// claimInbound marks message k and all its parts with token and reads the parts.
func claimInbound(ctx context.Context, tx *Tx, k sms.InboundKey, token string, until int64) (sms.InboundClaim, error) {
	if _, err := tx.Exec(ctx, `UPDATE sms_inbound_messages SET claim = $7, claimed_until = $8 WHERE `+inboundKeyWhere,
		inboundKeyArgs(k, token, until)...); err != nil {
		return sms.InboundClaim{}, fmt.Errorf("claim inbound message: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE sms_inbound_parts SET claim = $7 WHERE `+inboundKeyWhere, inboundKeyArgs(k, token)...); err != nil {
		return sms.InboundClaim{}, fmt.Errorf("claim inbound parts: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT seq, coding, data, received_at FROM sms_inbound_parts WHERE `+inboundKeyWhere+` ORDER BY seq`,
		inboundKeyArgs(k)...)
	parts, err := scanRows(rows, err, func(row Row) (sms.InboundPart, error) {
		p := sms.InboundPart{InboundKey: k}
		var coding, at int64
		if err := row.Scan(&p.Seq, &coding, &p.Data, &at); err != nil {
			return p, err
		}
		p.Coding, p.ReceivedAt = gsm.Coding(coding), fromMS(at)
		return p, nil
	})
	if err != nil {
		return sms.InboundClaim{}, fmt.Errorf("read inbound parts: %w", err)
	}
	return sms.InboundClaim{Key: k, Token: token, Parts: parts}, nil
}

// InboundPartsClaim claims messages due for delivery by a sweeper (sms.PartStore): those
// nobody holds that are complete or started before p.StartedBefore. On PostgreSQL the
// candidates are locked with SKIP LOCKED, so sweepers on several nodes claim disjoint sets
// and never wait on a receiver adding a part.
func (db *DB) InboundPartsClaim(ctx context.Context, p sms.InboundClaimParams) ([]sms.InboundClaim, error) {
	if p.Token == "" {
		return nil, errors.New("claim inbound messages: claim token required")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []sms.InboundClaim
	err := db.InTx(ctx, func(tx *Tx) error {
		out = nil
		q := `SELECT carrier, from_number, to_number, ref, ref16, total FROM sms_inbound_messages m
			WHERE carrier = $1 AND claimed_until < $2 AND (first_received < $3 OR (SELECT COUNT(*) FROM sms_inbound_parts p
				WHERE p.carrier = m.carrier AND p.from_number = m.from_number AND p.to_number = m.to_number AND p.ref = m.ref
				AND p.ref16 = m.ref16 AND p.total = m.total) >= m.total)
			ORDER BY first_received LIMIT ` + strconv.Itoa(limit)
		if tx.Dialect() == Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := tx.Query(ctx, q, p.Carrier, ms(p.Now), ms(p.StartedBefore))
		keys, err := scanRows(rows, err, func(row Row) (sms.InboundKey, error) {
			var k sms.InboundKey
			var ref, total int64
			err := row.Scan(&k.Carrier, &k.From, &k.To, &ref, &k.Ref16, &total)
			k.Ref, k.Total = uint16(ref), int(total)
			return k, err
		})
		if err != nil {
			return fmt.Errorf("find inbound messages due: %w", err)
		}
		for _, k := range keys {
			c, err := claimInbound(ctx, tx, k, p.Token, ms(p.ClaimUntil))
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InboundPartsDone deletes a delivered message's claimed parts (sms.PartStore). Parts that
// arrived after the claim stay, as a message of their own that starts at the oldest of them.
func (db *DB) InboundPartsDone(ctx context.Context, c sms.InboundClaim) error {
	return db.InTx(ctx, func(tx *Tx) error {
		q := `SELECT claimed_until FROM sms_inbound_messages WHERE ` + inboundKeyWhere + ` AND claim = $7`
		if tx.Dialect() == Postgres {
			q += ` FOR UPDATE`
		}
		var until int64
		err := tx.QueryRow(ctx, q, inboundKeyArgs(c.Key, c.Token)...).Scan(&until)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the claim lapsed and another receiver took the message over
		}
		if err != nil {
			return fmt.Errorf("lock inbound message: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sms_inbound_parts WHERE `+inboundKeyWhere+` AND claim = $7`, inboundKeyArgs(c.Key, c.Token)...); err != nil {
			return fmt.Errorf("delete inbound parts: %w", err)
		}
		var n int
		var first sql.NullInt64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), MIN(received_at) FROM sms_inbound_parts WHERE `+inboundKeyWhere,
			inboundKeyArgs(c.Key)...).Scan(&n, &first); err != nil {
			return fmt.Errorf("count inbound parts: %w", err)
		}
		if n == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM sms_inbound_messages WHERE `+inboundKeyWhere, inboundKeyArgs(c.Key)...)
		} else {
			_, err = tx.Exec(ctx, `UPDATE sms_inbound_messages SET claim = '', claimed_until = 0, first_received = $7 WHERE `+inboundKeyWhere,
				inboundKeyArgs(c.Key, first.Int64)...)
		}
		if err != nil {
			return fmt.Errorf("finish inbound message: %w", err)
		}
		return nil
	})
}

// InboundPartsRelease drops a claim whose delivery failed (sms.PartStore); a claim already
// taken over is left alone.
func (db *DB) InboundPartsRelease(ctx context.Context, c sms.InboundClaim) error {
	return db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE sms_inbound_messages SET claim = '', claimed_until = 0 WHERE `+inboundKeyWhere+` AND claim = $7`,
			inboundKeyArgs(c.Key, c.Token)...)
		if err != nil {
			return fmt.Errorf("release inbound message: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_inbound_parts SET claim = '' WHERE `+inboundKeyWhere+` AND claim = $7`,
			inboundKeyArgs(c.Key, c.Token)...); err != nil {
			return fmt.Errorf("release inbound parts: %w", err)
		}
		return nil
	})
}
