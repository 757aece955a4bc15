package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

var _ numbers.Store = (*DB)(nil)

// numberInsertCols are the columns an import writes, in CopyFrom / VALUES order.
var numberInsertCols = []string{"e164", "npa", "number_type", "offer_calling", "offer_sms", "locality",
	"admin_division", "carrier", "monthly_cost", "state", "free_at", "imported_at"}

const numberCols = `e164, number_type, offer_calling, offer_sms, locality, admin_division, carrier, monthly_cost,
	state, free_at, COALESCE(hold_id, ''), assignment_type, calling, sms, purchased_at, route, imported_at`

func scanNumber(row Row) (numbers.Number, error) {
	var n numbers.Number
	var e164, typ, oc, os, state, assign, calling, sms, route string
	var free, purchased sql.NullInt64
	var imported int64
	if err := row.Scan(&e164, &typ, &oc, &os, &n.Locality, &n.State, &n.Carrier, &n.MonthlyUSD, &state, &free,
		&n.HoldID, &assign, &calling, &sms, &purchased, &route, &imported); err != nil {
		return numbers.Number{}, mapErr(err)
	}
	n.E164, n.Type, n.Status = numbers.E164(e164), numbers.Type(typ), numbers.State(state)
	n.Offered = numbers.Capabilities{Calling: numbers.Capability(oc), SMS: numbers.Capability(os)}
	n.Assignment = numbers.Assignment(assign)
	n.Caps = numbers.Capabilities{Calling: numbers.Capability(calling), SMS: numbers.Capability(sms)}
	if free.Valid {
		t := fromMS(free.Int64)
		n.FreeAt = &t
	}
	if purchased.Valid {
		t := fromMS(purchased.Int64)
		n.Purchased = &t
	}
	n.ImportedAt = fromMS(imported)
	if r, err := numbers.ParseRoute(route); err == nil {
		n.Route = r
	}
	return n, nil
}

func scanNumbers(rows *sql.Rows, err error) ([]numbers.Number, error) {
	return scanRows(rows, err, scanNumber)
}

func numberImportRow(n numbers.Number) []any {
	free := int64(0)
	if n.FreeAt != nil {
		free = ms(*n.FreeAt)
	}
	st := n.Status
	if st == "" {
		st = numbers.StateAvailable
	}
	return []any{string(n.E164), n.E164.NPA(), string(n.Type), string(n.Offered.Calling), string(n.Offered.SMS),
		n.Locality, n.State, n.Carrier, n.MonthlyUSD, string(st), free, ms(n.ImportedAt)}
}

// NumberImport inserts the numbers not in the inventory yet. On PostgreSQL it COPYs the batch
// into a temporary table and inserts from there (ON CONFLICT DO NOTHING); on SQLite it runs
// multi-row INSERTs in one transaction.
func (db *DB) NumberImport(ctx context.Context, ns []numbers.Number) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	if db.pool != nil {
		return db.numberImportCopy(ctx, ns)
	}
	var inserted int64
	err := db.InTx(ctx, func(tx *Tx) error {
		const per = 200
		ncol := len(numberInsertCols)
		head := `INSERT INTO numbers (` + strings.Join(numberInsertCols, ", ") + `) VALUES `
		for start := 0; start < len(ns); start += per {
			chunk := ns[start:min(start+per, len(ns))]
			var b strings.Builder
			b.WriteString(head)
			args := make([]any, 0, len(chunk)*ncol)
			for i, n := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(" + numberPlaceholders(len(args)+1, ncol) + ")")
				args = append(args, numberImportRow(n)...)
			}
			b.WriteString(" ON CONFLICT (e164) DO NOTHING")
			res, err := tx.Exec(ctx, b.String(), args...)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			inserted += n
		}
		return nil
	})
	return int(inserted), err
}

func (db *DB) numberImportCopy(ctx context.Context, ns []numbers.Number) (int, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE numbers_import (LIKE numbers INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return 0, err
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(ns) {
			return nil, nil
		}
		i++
		return numberImportRow(ns[i-1]), nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"numbers_import"}, numberInsertCols, src); err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	cols := strings.Join(numberInsertCols, ", ")
	tag, err := tx.Exec(ctx, `INSERT INTO numbers (`+cols+`) SELECT `+cols+` FROM numbers_import ON CONFLICT (e164) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// numberPlaceholders returns "$from, …, $from+n-1".
func numberPlaceholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// NumberGet reads one number.
func (db *DB) NumberGet(ctx context.Context, e numbers.E164) (numbers.Number, error) {
	return scanNumber(db.QueryRow(ctx, `SELECT `+numberCols+` FROM numbers WHERE e164 = $1`, string(e)))
}

// NumberList pages through the inventory in E.164 order, filtered by effective state.
func (db *DB) NumberList(ctx context.Context, p numbers.ListParams) ([]numbers.Number, error) {
	now := ms(p.Now)
	q := `SELECT ` + numberCols + ` FROM numbers WHERE e164 > $1`
	args := []any{string(p.After)}
	if p.AreaCode != "" {
		args = append(args, p.AreaCode)
		q += ` AND npa = $` + strconv.Itoa(len(args))
	}
	nowArg := func() string { args = append(args, now); return `$` + strconv.Itoa(len(args)) }
	switch p.State {
	case numbers.StateAvailable:
		q += ` AND free_at <= ` + nowArg()
	case numbers.StateHeld:
		q += ` AND state = 'held' AND free_at > ` + nowArg()
	case numbers.StateQuarantined:
		q += ` AND state = 'quarantined' AND free_at > ` + nowArg()
	case numbers.StatePurchased:
		q += ` AND state = 'purchased'`
	}
	top := p.Top
	if top <= 0 {
		top = 100
	}
	args = append(args, top, max(p.Skip, 0))
	q += fmt.Sprintf(` ORDER BY e164 LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	return scanNumbers(db.Query(ctx, q, args...))
}

// NumberWithdraw deletes an unsold number that no live hold has.
func (db *DB) NumberWithdraw(ctx context.Context, e numbers.E164, now time.Time) error {
	res, err := db.Exec(ctx, `DELETE FROM numbers WHERE e164 = $1 AND free_at <= $2`, string(e), ms(now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := db.NumberGet(ctx, e); err != nil {
		return err
	}
	return problem.ErrConflict
}

// NumberSetRoute sets a purchased number's route. A user route also makes the number's
// assignmentType "person" (ACS: a number assigned to a person rather than an application);
// other routes, and clearing the route, leave the assignmentType as purchased.
func (db *DB) NumberSetRoute(ctx context.Context, e numbers.E164, r numbers.Route) error {
	q := `UPDATE numbers SET route = $2 WHERE e164 = $1 AND state = 'purchased'`
	if r.Kind() == numbers.RouteUser {
		q = `UPDATE numbers SET route = $2, assignment_type = '` + string(numbers.AssignPerson) + `' WHERE e164 = $1 AND state = 'purchased'`
	}
	res, err := db.Exec(ctx, q, string(e), r.String())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := db.NumberGet(ctx, e); err != nil {
		return err
	}
	return problem.ErrConflict
}

// NumberRouting reads a purchased number's carrier, capabilities and route.
func (db *DB) NumberRouting(ctx context.Context, e numbers.E164) (numbers.Routing, error) {
	var carrier, calling, sms, route string
	err := db.QueryRow(ctx, `SELECT carrier, calling, sms, route FROM numbers WHERE e164 = $1 AND state = 'purchased'`, string(e)).
		Scan(&carrier, &calling, &sms, &route)
	if err != nil {
		return numbers.Routing{}, mapErr(err)
	}
	r, _ := numbers.ParseRoute(route)
	return numbers.Routing{E164: e, Carrier: carrier, Caps: numbers.Capabilities{Calling: numbers.Capability(calling), SMS: numbers.Capability(sms)}, Route: r}, nil
}

// NumberForUser returns the purchased number routed to the communication user id (the lowest
// E.164 when several are): the user's caller ID. problem.ErrNotFound when none is; the
// numbers_route index answers it from one entry.
func (db *DB) NumberForUser(ctx context.Context, user string) (numbers.E164, error) {
	r, err := numbers.UserRoute(user)
	if err != nil {
		return "", err
	}
	var e string
	err = db.QueryRow(ctx, `SELECT e164 FROM numbers WHERE state = 'purchased' AND route = $1 ORDER BY e164 LIMIT 1`, r.String()).Scan(&e)
	if err != nil {
		return "", mapErr(err)
	}
	return numbers.E164(e), nil
}

// forUpdate is the row-lock suffix: PostgreSQL locks, SQLite's writer transaction already
// serialises.
func forUpdate(d Dialect, skipLocked bool) string {
	if d != Postgres {
		return ""
	}
	if skipLocked {
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// capsIn returns "col IN ($i, …)" for the offered values covering want, appending the args.
func capsIn(col string, want numbers.Capability, args *[]any) string {
	cov := numbers.Covering(want)
	ph := make([]string, len(cov))
	for i, c := range cov {
		*args = append(*args, string(c))
		ph[i] = "$" + strconv.Itoa(len(*args))
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
}

// NumberSearchCreate holds the search's numbers and records it and op, atomically.
func (db *DB) NumberSearchCreate(ctx context.Context, s numbers.Search, op numbers.Operation, now time.Time) (numbers.Search, error) {
	if db.pool != nil {
		return db.numberSearchCreatePG(ctx, s, op, now)
	}
	err := db.InTx(ctx, func(tx *Tx) error {
		args := []any{string(s.Type), ms(now)}
		where := `number_type = $1 AND free_at <= $2`
		if s.AreaCode != "" {
			args = append(args, s.AreaCode)
			where += ` AND npa = $3`
		}
		where += ` AND ` + capsIn("offer_calling", s.Caps.Calling, &args) + ` AND ` + capsIn("offer_sms", s.Caps.SMS, &args)
		args = append(args, s.Quantity)
		sub := `SELECT e164 FROM numbers WHERE ` + where + ` LIMIT $` + strconv.Itoa(len(args)) + forUpdate(tx.Dialect(), true)
		args = append(args, ms(s.ExpiresAt), s.ID, string(s.Assignment), string(s.Caps.Calling), string(s.Caps.SMS))
		n := len(args)
		q := fmt.Sprintf(`UPDATE numbers SET state = 'held', free_at = $%d, hold_id = $%d, assignment_type = $%d, calling = $%d, sms = $%d
			WHERE e164 IN (%s) RETURNING e164, monthly_cost`, n-4, n-3, n-2, n-1, n, sub)
		rows, err := tx.Query(ctx, q, args...)
		s.MonthlyUSD = 0
		s.Numbers, err = scanRows(rows, err, func(row Row) (numbers.E164, error) {
			var e string
			var cost float64
			if err := row.Scan(&e, &cost); err != nil {
				return "", err
			}
			s.MonthlyUSD = max(s.MonthlyUSD, cost)
			return numbers.E164(e), nil
		})
		if err != nil {
			return err
		}
		if len(s.Numbers) < s.Quantity {
			return numbers.ErrOutOfStock
		}
		if _, err := tx.Exec(ctx, `INSERT INTO number_searches (id, number_type, assignment_type, calling, sms, area_code, quantity,
			monthly_cost, status, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			s.ID, string(s.Type), string(s.Assignment), string(s.Caps.Calling), string(s.Caps.SMS), s.AreaCode, len(s.Numbers),
			s.MonthlyUSD, s.Status, ms(s.CreatedAt), ms(s.ExpiresAt)); err != nil {
			return mapErr(err)
		}
		return operationInsert(ctx, tx, op)
	})
	if err != nil {
		return numbers.Search{}, err
	}
	sortE164(s.Numbers)
	return s, nil
}

// numberSearchCreatePG holds, records the search and records op in one statement (one round
// trip, atomic without an explicit transaction). Rows are claimed with FOR UPDATE SKIP LOCKED,
// so concurrent searches never wait on each other's numbers. When fewer than s.Quantity rows
// could be claimed, the final SELECT divides by zero, aborting the whole statement: nothing is
// held; when none could be, it returns no rows and changed nothing.
func (db *DB) numberSearchCreatePG(ctx context.Context, s numbers.Search, op numbers.Operation, now time.Time) (numbers.Search, error) {
	args := []any{string(s.Type), ms(now), s.Quantity, ms(s.ExpiresAt), s.ID, string(s.Assignment), string(s.Caps.Calling),
		string(s.Caps.SMS), s.AreaCode, s.Status, ms(s.CreatedAt), op.ID, string(op.Type), op.Status, op.Resource, ms(op.CreatedAt)}
	where := `number_type = $1 AND free_at <= $2`
	if s.AreaCode != "" {
		where += ` AND npa = $9`
	}
	where += ` AND ` + capsIn("offer_calling", s.Caps.Calling, &args) + ` AND ` + capsIn("offer_sms", s.Caps.SMS, &args)
	q := `WITH picked AS (
		SELECT e164 FROM numbers WHERE ` + where + ` LIMIT $3 FOR UPDATE SKIP LOCKED
	), held AS (
		UPDATE numbers n SET state = 'held', free_at = $4, hold_id = $5, assignment_type = $6, calling = $7, sms = $8
		FROM picked WHERE n.e164 = picked.e164 RETURNING n.e164, n.monthly_cost
	), agg AS (
		SELECT COUNT(*) AS n, COALESCE(MAX(monthly_cost), 0) AS cost FROM held
	), srch AS (
		INSERT INTO number_searches (id, number_type, assignment_type, calling, sms, area_code, quantity, monthly_cost, status, created_at, expires_at)
		SELECT $5, $1, $6, $7, $8, $9, agg.n, agg.cost, $10, $11, $4 FROM agg WHERE agg.n = $3
	), opi AS (
		INSERT INTO number_operations (id, op_type, status, resource, error_code, error_message, created_at, updated_at)
		SELECT $12, $13, $14, $15, '', '', $16, $16 FROM agg WHERE agg.n = $3
	)
	SELECT held.e164, held.monthly_cost, 1 / (SELECT CASE WHEN agg.n = $3 THEN 1 ELSE 0 END FROM agg) FROM held`
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return numbers.Search{}, err
	}
	// pgx's own collector closes rows and reports rows.Err(), as scanRows does for database/sql.
	s.MonthlyUSD = 0
	s.Numbers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (numbers.E164, error) {
		var e string
		var cost float64
		var one int
		if err := row.Scan(&e, &cost, &one); err != nil {
			return "", err
		}
		s.MonthlyUSD = max(s.MonthlyUSD, cost)
		return numbers.E164(e), nil
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "22012" { // division_by_zero: fewer than asked
			return numbers.Search{}, numbers.ErrOutOfStock
		}
		return numbers.Search{}, err
	}
	if len(s.Numbers) < s.Quantity {
		return numbers.Search{}, numbers.ErrOutOfStock
	}
	sortE164(s.Numbers)
	return s, nil
}

func sortE164(es []numbers.E164) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j] < es[j-1]; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func operationInsert(ctx context.Context, tx *Tx, op numbers.Operation) error {
	_, err := tx.Exec(ctx, `INSERT INTO number_operations (id, op_type, status, resource, error_code, error_message, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, op.ID, string(op.Type), op.Status, op.Resource, op.ErrCode, op.ErrMsg,
		ms(op.CreatedAt), ms(op.UpdatedAt))
	return mapErr(err)
}

// heldBy lists the numbers whose hold_id is id, in order.
func heldBy(ctx context.Context, q interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, id string) ([]numbers.Number, error) {
	return scanNumbers(q.Query(ctx, `SELECT `+numberCols+` FROM numbers WHERE hold_id = $1 ORDER BY e164`, id))
}

// NumberSearchGet reads a search and the numbers it holds or bought.
func (db *DB) NumberSearchGet(ctx context.Context, id string) (numbers.Search, error) {
	var s numbers.Search
	var typ, assign, calling, sms string
	var created, expires int64
	err := db.QueryRow(ctx, `SELECT id, number_type, assignment_type, calling, sms, area_code, quantity, monthly_cost, status,
		created_at, expires_at FROM number_searches WHERE id = $1`, id).
		Scan(&s.ID, &typ, &assign, &calling, &sms, &s.AreaCode, &s.Quantity, &s.MonthlyUSD, &s.Status, &created, &expires)
	if err != nil {
		return numbers.Search{}, mapErr(err)
	}
	s.Type, s.Assignment = numbers.Type(typ), numbers.Assignment(assign)
	s.Caps = numbers.Capabilities{Calling: numbers.Capability(calling), SMS: numbers.Capability(sms)}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	if s.Status == numbers.SearchCancelled {
		return s, nil
	}
	ns, err := heldBy(ctx, db, id)
	if err != nil {
		return numbers.Search{}, err
	}
	for _, n := range ns {
		s.Numbers = append(s.Numbers, n.E164)
	}
	return s, nil
}

// NumberSearchPurchase buys the search's held numbers: all or none.
func (db *DB) NumberSearchPurchase(ctx context.Context, id string, op numbers.Operation, now time.Time) ([]numbers.E164, error) {
	var out []numbers.E164
	err := db.InTx(ctx, func(tx *Tx) error {
		var status string
		var qty int
		var expires int64
		err := tx.QueryRow(ctx, `SELECT status, quantity, expires_at FROM number_searches WHERE id = $1`+forUpdate(tx.Dialect(), false), id).
			Scan(&status, &qty, &expires)
		if err != nil {
			return mapErr(err)
		}
		if status != numbers.SearchActive {
			return problem.ErrConflict
		}
		if expires <= ms(now) {
			return numbers.ErrSearchExpired
		}
		if out, err = purchaseHeld(ctx, tx, id, now); err != nil {
			return err
		}
		if len(out) != qty {
			return numbers.ErrSearchExpired
		}
		if _, err := tx.Exec(ctx, `UPDATE number_searches SET status = $2 WHERE id = $1`, id, numbers.SearchPurchased); err != nil {
			return err
		}
		return operationInsert(ctx, tx, op)
	})
	return out, err
}

// purchaseHeld turns the live holds of holdID into purchases.
func purchaseHeld(ctx context.Context, tx *Tx, holdID string, now time.Time) ([]numbers.E164, error) {
	rows, err := tx.Query(ctx, `UPDATE numbers SET state = 'purchased', free_at = NULL, purchased_at = $2, route = ''
		WHERE hold_id = $1 AND state = 'held' AND free_at > $2 RETURNING e164`, holdID, ms(now))
	out, err := scanRows(rows, err, func(row Row) (numbers.E164, error) {
		e, err := scanString(row)
		return numbers.E164(e), err
	})
	sortE164(out)
	return out, err
}

// NumberSearchCancel frees an active search's numbers.
func (db *DB) NumberSearchCancel(ctx context.Context, id string, _ time.Time) error {
	return db.InTx(ctx, func(tx *Tx) error {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM number_searches WHERE id = $1`+forUpdate(tx.Dialect(), false), id).Scan(&status); err != nil {
			return mapErr(err)
		}
		if status != numbers.SearchActive {
			return problem.ErrConflict
		}
		if err := freeHeld(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE number_searches SET status = $2 WHERE id = $1`, id, numbers.SearchCancelled)
		return err
	})
}

// freeHeld makes the live holds of holdID available again.
func freeHeld(ctx context.Context, tx *Tx, holdID string) error {
	_, err := tx.Exec(ctx, `UPDATE numbers SET state = 'available', free_at = 0, hold_id = NULL, assignment_type = '', calling = '', sms = ''
		WHERE hold_id = $1 AND state = 'held'`, holdID)
	return err
}
