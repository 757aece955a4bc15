package store

import "database/sql"

// scanRows reads every row of a query with scan, closes rows and reports rows.Err(). It takes
// the query's error as well, so a call reads scanRows(db.Query(ctx, q, args...)) with the scan
// function after it. Rows are closed before it returns, so a transaction on SQLite's single
// connection may run its next statement straight after.
func scanRows[T any](rows *sql.Rows, err error, scan func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString reads a one-column text row.
func scanString(row Row) (string, error) {
	var s string
	err := row.Scan(&s)
	return s, err
}
