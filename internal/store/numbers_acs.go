package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// NumberPurchasedList pages through purchased numbers in E.164 order.
func (db *DB) NumberPurchasedList(ctx context.Context, skip, top int) ([]numbers.Number, error) {
	return scanNumbers(db.Query(ctx, `SELECT `+numberCols+` FROM numbers WHERE state = 'purchased' ORDER BY e164 LIMIT $1 OFFSET $2`,
		top, max(skip, 0)))
}

// NumberCapabilitiesUpdate sets a purchased number's capabilities and records op.
func (db *DB) NumberCapabilitiesUpdate(ctx context.Context, e numbers.E164, caps numbers.Capabilities, op numbers.Operation) (numbers.Number, error) {
	var out numbers.Number
	err := db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE numbers SET calling = $2, sms = $3 WHERE e164 = $1 AND state = 'purchased'`,
			string(e), string(caps.Calling), string(caps.SMS))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return problem.ErrNotFound
		}
		if out, err = scanNumber(tx.QueryRow(ctx, `SELECT `+numberCols+` FROM numbers WHERE e164 = $1`, string(e))); err != nil {
			return err
		}
		return operationInsert(ctx, tx, op)
	})
	return out, err
}

// NumberRelease quarantines a purchased number until `until` and records op.
func (db *DB) NumberRelease(ctx context.Context, e numbers.E164, until time.Time, op numbers.Operation) error {
	return db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE numbers SET state = 'quarantined', free_at = $2, hold_id = NULL, assignment_type = '',
			calling = '', sms = '', purchased_at = NULL, route = '' WHERE e164 = $1 AND state = 'purchased'`, string(e), ms(until))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return problem.ErrNotFound
		}
		return operationInsert(ctx, tx, op)
	})
}

type reservationRow struct {
	status                      string
	created, updated, expiresAt int64
}

func reservationLoad(ctx context.Context, tx *Tx, id string) (reservationRow, error) {
	var r reservationRow
	err := tx.QueryRow(ctx, `SELECT status, created_at, updated_at, expires_at FROM number_reservations WHERE id = $1`+
		forUpdate(tx.Dialect(), false), id).Scan(&r.status, &r.created, &r.updated, &r.expiresAt)
	return r, mapErr(err)
}

// NumberReservationUpsert creates or changes a reservation (see numbers.Store).
func (db *DB) NumberReservationUpsert(ctx context.Context, p numbers.ReservationChange) (numbers.Reservation, bool, map[numbers.E164]error, error) {
	failed := map[numbers.E164]error{}
	created := false
	now := ms(p.Now)
	err := db.InTx(ctx, func(tx *Tx) error {
		clear(failed)
		created = false
		r, err := reservationLoad(ctx, tx, p.ID)
		switch {
		case errIsNotFound(err):
			created = true
			r = reservationRow{status: numbers.ReservationActive, created: now}
			if _, err := tx.Exec(ctx, `INSERT INTO number_reservations (id, status, created_at, updated_at, expires_at)
				VALUES ($1, $2, $3, $3, $3)`, p.ID, r.status, now); err != nil {
				return mapErr(err)
			}
		case err != nil:
			return err
		case r.status != numbers.ReservationActive:
			return problem.ErrConflict
		case r.expiresAt <= now:
			return numbers.ErrReservationExpired
		}
		exp := min(now+p.TTL.Milliseconds(), r.created+p.MaxAge.Milliseconds())
		for _, e := range p.Remove {
			if _, err := tx.Exec(ctx, `UPDATE numbers SET state = 'available', free_at = 0, hold_id = NULL, assignment_type = '',
				calling = '', sms = '' WHERE e164 = $1 AND hold_id = $2 AND state = 'held'`, string(e), p.ID); err != nil {
				return err
			}
		}
		for _, e := range sortedKeys(p.Add) {
			w := p.Add[e]
			args := []any{string(e), now, exp, p.ID, string(w.Assignment), string(w.Caps.Calling), string(w.Caps.SMS), string(w.Type)}
			q := `UPDATE numbers SET state = 'held', free_at = $3, hold_id = $4, assignment_type = $5, calling = $6, sms = $7
				WHERE e164 = $1 AND number_type = $8 AND (free_at <= $2 OR (hold_id = $4 AND state = 'held'))
				AND ` + capsIn("offer_calling", w.Caps.Calling, &args) + ` AND ` + capsIn("offer_sms", w.Caps.SMS, &args)
			res, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				continue
			}
			failed[e] = reserveFailure(ctx, tx, e, w, p.Now)
		}
		if _, err := tx.Exec(ctx, `UPDATE numbers SET free_at = $2 WHERE hold_id = $1 AND state = 'held' AND free_at > $3`, p.ID, exp, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE number_reservations SET updated_at = $2, expires_at = $3 WHERE id = $1`, p.ID, now, exp)
		return err
	})
	if err != nil {
		return numbers.Reservation{}, false, nil, err
	}
	r, err := db.NumberReservationGet(ctx, p.ID, p.Now)
	return r, created, failed, err
}

// reserveFailure explains why e could not join a reservation.
func reserveFailure(ctx context.Context, tx *Tx, e numbers.E164, w numbers.ReservedWant, now time.Time) error {
	n, err := scanNumber(tx.QueryRow(ctx, `SELECT `+numberCols+` FROM numbers WHERE e164 = $1`, string(e)))
	switch {
	case errIsNotFound(err):
		return problem.NotFound("phoneNumber", "%s is not in the inventory", e).WithCode("PhoneNumberNotFound")
	case err != nil:
		return err
	case n.Type != w.Type:
		return problem.Invalid("phoneNumberType", "%s is a %s number", e, n.Type).WithCode("InvalidPhoneNumberType")
	case !n.Offered.Covers(w.Caps):
		return problem.Invalid("capabilities", "%s offers calling %s and sms %s only", e, n.Offered.Calling, n.Offered.SMS).WithCode("InvalidCapabilities")
	case n.Status == numbers.StatePurchased:
		return problem.Conflict("phoneNumber", "%s is already purchased", e).WithCode("FailedToReserveNumber")
	case n.Status == numbers.StateQuarantined && n.FreeAt != nil && n.FreeAt.After(now):
		return problem.Conflict("phoneNumber", "%s was released recently and is quarantined", e).WithCode("FailedToReserveNumber")
	}
	return problem.Conflict("phoneNumber", "%s is reserved by someone else", e).WithCode("FailedToReserveNumber")
}

func sortedKeys(m map[numbers.E164]numbers.ReservedWant) []numbers.E164 {
	out := make([]numbers.E164, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortE164(out)
	return out
}

func errIsNotFound(err error) bool { return err != nil && problem.KindOf(err) == problem.KindNotFound }

func reservationStatus(r reservationRow, now int64) string {
	if r.status == numbers.ReservationActive && r.expiresAt <= now {
		return numbers.ReservationExpired
	}
	return r.status
}

// NumberReservationGet reads a reservation with its numbers.
func (db *DB) NumberReservationGet(ctx context.Context, id string, now time.Time) (numbers.Reservation, error) {
	var r reservationRow
	err := db.QueryRow(ctx, `SELECT status, created_at, updated_at, expires_at FROM number_reservations WHERE id = $1`, id).
		Scan(&r.status, &r.created, &r.updated, &r.expiresAt)
	if err != nil {
		return numbers.Reservation{}, mapErr(err)
	}
	out := numbers.Reservation{ID: id, Status: reservationStatus(r, ms(now)), CreatedAt: fromMS(r.created),
		UpdatedAt: fromMS(r.updated), ExpiresAt: fromMS(r.expiresAt)}
	ns, err := heldBy(ctx, db, id)
	if err != nil {
		return numbers.Reservation{}, err
	}
	for _, n := range ns {
		st := "reserved"
		switch {
		case n.Status == numbers.StatePurchased:
			st = "purchased"
		case n.Status != numbers.StateHeld || n.FreeAt == nil || !n.FreeAt.After(now):
			st = "expired"
		}
		out.Numbers = append(out.Numbers, numbers.ReservedNumber{Number: n, Status: st})
	}
	return out, nil
}

// NumberReservationList pages through reservations, newest first, without numbers.
func (db *DB) NumberReservationList(ctx context.Context, skip, top int, now time.Time) ([]numbers.Reservation, error) {
	rows, err := db.Query(ctx, `SELECT id, status, created_at, updated_at, expires_at FROM number_reservations
		ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`, top, max(skip, 0))
	return scanRows(rows, err, func(row Row) (numbers.Reservation, error) {
		var id string
		var r reservationRow
		if err := row.Scan(&id, &r.status, &r.created, &r.updated, &r.expiresAt); err != nil {
			return numbers.Reservation{}, err
		}
		return numbers.Reservation{ID: id, Status: reservationStatus(r, ms(now)), CreatedAt: fromMS(r.created),
			UpdatedAt: fromMS(r.updated), ExpiresAt: fromMS(r.expiresAt)}, nil
	})
}

// NumberReservationDelete frees the reservation's held numbers and deletes it.
func (db *DB) NumberReservationDelete(ctx context.Context, id string) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if _, err := reservationLoad(ctx, tx, id); err != nil {
			return err
		}
		if err := freeHeld(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM number_reservations WHERE id = $1`, id)
		return err
	})
}

// NumberReservationPurchase buys every number the reservation holds: all or none.
func (db *DB) NumberReservationPurchase(ctx context.Context, id string, op numbers.Operation, now time.Time) ([]numbers.E164, error) {
	var out []numbers.E164
	err := db.InTx(ctx, func(tx *Tx) error {
		r, err := reservationLoad(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.status != numbers.ReservationActive {
			return problem.ErrConflict
		}
		if r.expiresAt <= ms(now) {
			return numbers.ErrReservationExpired
		}
		var total int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM numbers WHERE hold_id = $1 AND state = 'held'`, id).Scan(&total); err != nil {
			return err
		}
		if total == 0 {
			return problem.Conflict("reservationId", "reservation %s holds no numbers", id).WithCode("ReservationEmpty")
		}
		if out, err = purchaseHeld(ctx, tx, id, now); err != nil {
			return err
		}
		if len(out) != total {
			return numbers.ErrReservationExpired
		}
		if _, err := tx.Exec(ctx, `UPDATE number_reservations SET status = $2, updated_at = $3 WHERE id = $1`,
			id, numbers.ReservationCompleted, ms(now)); err != nil {
			return err
		}
		return operationInsert(ctx, tx, op)
	})
	return out, err
}

// NumberOperationCreate records an operation.
func (db *DB) NumberOperationCreate(ctx context.Context, op numbers.Operation) error {
	return db.InTx(ctx, func(tx *Tx) error { return operationInsert(ctx, tx, op) })
}

// NumberOperationGet reads an operation.
func (db *DB) NumberOperationGet(ctx context.Context, id string) (numbers.Operation, error) {
	var op numbers.Operation
	var typ string
	var created, updated int64
	err := db.QueryRow(ctx, `SELECT id, op_type, status, resource, error_code, error_message, created_at, updated_at
		FROM number_operations WHERE id = $1`, id).Scan(&op.ID, &typ, &op.Status, &op.Resource, &op.ErrCode, &op.ErrMsg, &created, &updated)
	if err != nil {
		return numbers.Operation{}, mapErr(err)
	}
	op.Type, op.CreatedAt, op.UpdatedAt = numbers.OperationType(typ), fromMS(created), fromMS(updated)
	return op, nil
}

// NumberOperationDelete forgets an operation.
func (db *DB) NumberOperationDelete(ctx context.Context, id string) error {
	res, err := db.Exec(ctx, `DELETE FROM number_operations WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// NumberAreaCodes lists area codes with available numbers.
func (db *DB) NumberAreaCodes(ctx context.Context, t numbers.Type, locality, state string, now time.Time) ([]string, error) {
	q := `SELECT DISTINCT npa FROM numbers WHERE number_type = $1 AND free_at <= $2`
	args := []any{string(t), ms(now)}
	if locality != "" {
		args = append(args, strings.ToLower(locality))
		q += ` AND LOWER(locality) = $` + strconv.Itoa(len(args))
	}
	if state != "" {
		args = append(args, state)
		q += ` AND admin_division = $` + strconv.Itoa(len(args))
	}
	rows, err := db.Query(ctx, q+` ORDER BY npa`, args...)
	return scanRows(rows, err, scanString)
}

// NumberLocalities lists towns with available numbers.
func (db *DB) NumberLocalities(ctx context.Context, t numbers.Type, state string, now time.Time) ([]numbers.Locality, error) {
	q := `SELECT DISTINCT locality, admin_division FROM numbers WHERE free_at <= $1 AND locality <> ''`
	args := []any{ms(now)}
	if t != "" {
		args = append(args, string(t))
		q += ` AND number_type = $` + strconv.Itoa(len(args))
	}
	if state != "" {
		args = append(args, state)
		q += ` AND admin_division = $` + strconv.Itoa(len(args))
	}
	rows, err := db.Query(ctx, q+` ORDER BY admin_division, locality`, args...)
	return scanRows(rows, err, func(row Row) (numbers.Locality, error) {
		var l numbers.Locality
		err := row.Scan(&l.Name, &l.State)
		return l, err
	})
}

// NumberOfferings lists number types in stock with their lowest price.
func (db *DB) NumberOfferings(ctx context.Context, now time.Time) ([]numbers.Offering, error) {
	rows, err := db.Query(ctx, `SELECT number_type, MIN(monthly_cost) FROM numbers WHERE free_at <= $1 GROUP BY number_type ORDER BY number_type`, ms(now))
	return scanRows(rows, err, func(row Row) (numbers.Offering, error) {
		var o numbers.Offering
		var t string
		err := row.Scan(&t, &o.MonthlyUSD)
		o.Type = numbers.Type(t)
		return o, err
	})
}

// NumberBrowse returns up to p.Limit available numbers, spread over the prefixes, each run
// starting at a random point of its prefix's range (wrapping around).
func (db *DB) NumberBrowse(ctx context.Context, p numbers.BrowseParams) ([]numbers.Number, error) {
	prefixes := p.Prefixes
	if len(prefixes) == 0 {
		prefixes = []string{"1"}
	}
	var out []numbers.Number
	for i, pre := range prefixes {
		want := p.Limit / len(prefixes)
		if i == len(prefixes)-1 {
			want = p.Limit - len(out)
		}
		lo, hi := "+"+pre, "+"+pre+":" // ':' sorts right after '9'
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		start := lo + fmt.Sprintf("%012d", binary.BigEndian.Uint64(rnd[:])%1_000_000_000_000)[:max(0, 11-len(pre))]
		for _, rg := range [][2]string{{start, hi}, {lo, start}} {
			if want <= 0 {
				break
			}
			args := []any{string(p.Type), ms(p.Now)}
			where := `number_type = $1 AND free_at <= $2 AND ` + capsIn("offer_calling", p.Caps.Calling, &args) +
				` AND ` + capsIn("offer_sms", p.Caps.SMS, &args)
			args = append(args, rg[0], rg[1], want)
			n := len(args)
			ns, err := scanNumbers(db.Query(ctx, `SELECT `+numberCols+` FROM numbers WHERE `+where+
				` AND e164 >= $`+strconv.Itoa(n-2)+` AND e164 < $`+strconv.Itoa(n-1)+` ORDER BY e164 LIMIT $`+strconv.Itoa(n), args...))
			if err != nil {
				return nil, err
			}
			out = append(out, ns...)
			want -= len(ns)
		}
	}
	return out, nil
}

// Retention of finished records.
const (
	operationRetention   = 24 * time.Hour
	searchRetention      = 24 * time.Hour
	reservationRetention = 30 * 24 * time.Hour
)

// NumberSweep tidies lifecycle labels and deletes old records.
func (db *DB) NumberSweep(ctx context.Context, now time.Time) (numbers.SweepResult, error) {
	var r numbers.SweepResult
	n := ms(now)
	count := func(q string, args ...any) (int, error) {
		res, err := db.Exec(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		c, _ := res.RowsAffected()
		return int(c), nil
	}
	var err error
	if r.Freed, err = count(`UPDATE numbers SET state = 'available', free_at = 0, assignment_type = '', calling = '', sms = ''
		WHERE state = 'held' AND free_at <= $1`, n); err != nil {
		return r, err
	}
	if r.Unquarantined, err = count(`UPDATE numbers SET state = 'available', free_at = 0 WHERE state = 'quarantined' AND free_at <= $1`, n); err != nil {
		return r, err
	}
	if r.ReservationsExpired, err = count(`UPDATE number_reservations SET status = 'expired' WHERE status = 'active' AND expires_at <= $1`, n); err != nil {
		return r, err
	}
	for _, q := range []struct {
		sql string
		arg int64
	}{
		{`DELETE FROM number_operations WHERE created_at < $1`, n - operationRetention.Milliseconds()},
		{`DELETE FROM number_searches WHERE expires_at < $1`, n - searchRetention.Milliseconds()},
		{`DELETE FROM number_reservations WHERE created_at < $1`, n - reservationRetention.Milliseconds()},
	} {
		c, err := count(q.sql, q.arg)
		if err != nil {
			return r, err
		}
		r.Deleted += c
	}
	return r, nil
}
