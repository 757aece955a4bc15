package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

var _ calls.Store = (*DB)(nil)

func msOrZeroTime(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// CDRInsert records one call.
func (db *DB) CDRInsert(ctx context.Context, c calls.CDR) error {
	legs, err := encodeLegs(c.Legs)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO sip_cdrs (call_id, direction, from_number, to_number, trunk, start_at, ringing_at,
		answer_at, end_at, duration_ms, disposition, sip_code, q850, ended_by, legs, verstat, attest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		c.CallID, string(c.Direction), c.From, c.To, c.Trunk, ms(c.Start), msOrZero(c.Ringing), msOrZero(c.Answer), ms(c.End),
		c.Duration().Milliseconds(), c.Disposition, c.SIPCode, c.Q850, c.EndedBy, legs, c.Verstat, c.Attest)
	return mapErr(err)
}

// cdrLeg is a leg as sip_cdrs.legs keeps it (JSON).
type cdrLeg struct {
	ID              string `json:"id"`
	Kind            string `json:"kind"`
	ParticipantKind string `json:"participantKind"`
	Participant     string `json:"participant"`
	Trunk           string `json:"trunk,omitempty"`
	Transferred     bool   `json:"transferred,omitempty"`
	Left            int64  `json:"leftAt,omitempty"` // unix ms
}

func encodeLegs(legs []calls.Leg) (string, error) {
	out := make([]cdrLeg, len(legs))
	for i, l := range legs {
		out[i] = cdrLeg{ID: l.ID, Kind: string(l.Kind), ParticipantKind: string(l.Participant.Kind), Participant: l.Participant.ID,
			Trunk: l.Trunk, Transferred: l.Transferred, Left: msOrZero(l.Left)}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeLegs(s string) ([]calls.Leg, error) {
	var in []cdrLeg
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("cdr legs: %w", err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]calls.Leg, len(in))
	for i, l := range in {
		out[i] = calls.Leg{ID: l.ID, Kind: calls.LegKind(l.Kind), Participant: calls.Participant{Kind: calls.IdentifierKind(l.ParticipantKind), ID: l.Participant},
			Trunk: l.Trunk, Transferred: l.Transferred, Left: msOrZeroTime(l.Left), State: calls.Ended}
	}
	return out, nil
}

// CDRList lists CDRs newest first.
func (db *DB) CDRList(ctx context.Context, p calls.CDRListParams) ([]calls.CDR, error) {
	q := `SELECT call_id, direction, from_number, to_number, trunk, start_at, ringing_at, answer_at, end_at, disposition,
		sip_code, q850, ended_by, legs, verstat, attest FROM sip_cdrs WHERE start_at >= $1`
	args := []any{msOrZero(p.Since)}
	if p.Number != "" {
		q += ` AND (from_number = $2 OR to_number = $2)`
		args = append(args, p.Number)
	}
	if p.Top <= 0 {
		p.Top = 100
	}
	q += ` ORDER BY start_at DESC, id DESC LIMIT ` + strconv.Itoa(p.Top) + ` OFFSET ` + strconv.Itoa(max(p.Skip, 0))
	rows, err := db.Query(ctx, q, args...)
	return scanRows(rows, err, func(row Row) (calls.CDR, error) {
		var c calls.CDR
		var dir string
		var start, ringing, answer, end int64
		var legs string
		if err := row.Scan(&c.CallID, &dir, &c.From, &c.To, &c.Trunk, &start, &ringing, &answer, &end, &c.Disposition,
			&c.SIPCode, &c.Q850, &c.EndedBy, &legs, &c.Verstat, &c.Attest); err != nil {
			return c, err
		}
		var err error
		if c.Legs, err = decodeLegs(legs); err != nil {
			return c, err
		}
		c.Direction = calls.Direction(dir)
		c.Start, c.Ringing, c.Answer, c.End = fromMS(start), msOrZeroTime(ringing), msOrZeroTime(answer), fromMS(end)
		return c, nil
	})
}

// SIPRoutingGet reads the ACS SIP routing configuration.
func (db *DB) SIPRoutingGet(ctx context.Context) (calls.Routing, bool, error) {
	var updated int64
	if err := db.QueryRow(ctx, `SELECT updated_at FROM sip_routing WHERE id = 1`).Scan(&updated); err != nil {
		if err = mapErr(err); problem.KindOf(err) == problem.KindNotFound {
			return calls.Routing{}, false, nil
		}
		return calls.Routing{}, false, err
	}
	var r calls.Routing
	rows, err := db.Query(ctx, `SELECT fqdn, port FROM sip_trunks ORDER BY fqdn`)
	r.Trunks, err = scanRows(rows, err, func(row Row) (calls.ACSTrunk, error) {
		var t calls.ACSTrunk
		err := row.Scan(&t.FQDN, &t.Port)
		return t, err
	})
	if err != nil {
		return r, false, err
	}
	rows, err = db.Query(ctx, `SELECT name, description, number_pattern, trunks FROM sip_routes ORDER BY position`)
	r.Routes, err = scanRows(rows, err, func(row Row) (calls.OutboundRoute, error) {
		var rt calls.OutboundRoute
		var trunks string
		if err := row.Scan(&rt.Name, &rt.Description, &rt.NumberPattern, &trunks); err != nil {
			return rt, err
		}
		if trunks != "" {
			rt.Trunks = strings.Split(trunks, ",")
		}
		return rt, nil
	})
	return r, err == nil, err
}

// SIPRoutingPut replaces the ACS SIP routing configuration in one transaction.
func (db *DB) SIPRoutingPut(ctx context.Context, r calls.Routing) error {
	return db.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{`DELETE FROM sip_routes`, `DELETE FROM sip_trunks`} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		for _, t := range r.Trunks {
			if _, err := tx.Exec(ctx, `INSERT INTO sip_trunks (fqdn, port) VALUES ($1, $2)`, t.FQDN, t.Port); err != nil {
				return mapErr(err)
			}
		}
		for i, rt := range r.Routes {
			if _, err := tx.Exec(ctx, `INSERT INTO sip_routes (position, name, description, number_pattern, trunks) VALUES ($1, $2, $3, $4, $5)`,
				i, rt.Name, rt.Description, rt.NumberPattern, strings.Join(rt.Trunks, ",")); err != nil {
				return mapErr(err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO sip_routing (id, updated_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at`,
			ms(time.Now()))
		return err
	})
}

// SIPCredential reads one endpoint credential (calls.ErrUnknownCredential when absent).
func (db *DB) SIPCredential(ctx context.Context, username string) (calls.Credential, error) {
	var c calls.Credential
	var nums string
	var created int64
	err := db.QueryRow(ctx, `SELECT username, ha1_md5, ha1_sha256, numbers, created_at FROM sip_credentials WHERE username = $1`, username).
		Scan(&c.Username, &c.HA1MD5, &c.HA1SHA256, &nums, &created)
	if err != nil {
		if err = mapErr(err); problem.KindOf(err) == problem.KindNotFound {
			return c, calls.ErrUnknownCredential
		}
		return c, err
	}
	if nums != "" {
		c.Numbers = strings.Split(nums, ",")
	}
	c.CreatedAt = fromMS(created)
	return c, nil
}

// SIPCredentialPut creates or replaces an endpoint credential.
func (db *DB) SIPCredentialPut(ctx context.Context, c calls.Credential) error {
	_, err := db.Exec(ctx, `INSERT INTO sip_credentials (username, ha1_md5, ha1_sha256, numbers, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (username) DO UPDATE SET ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, numbers = excluded.numbers`,
		c.Username, c.HA1MD5, c.HA1SHA256, strings.Join(c.Numbers, ","), ms(c.CreatedAt))
	return mapErr(err)
}

// SIPCredentialDelete removes an endpoint credential.
func (db *DB) SIPCredentialDelete(ctx context.Context, username string) error {
	res, err := db.Exec(ctx, `DELETE FROM sip_credentials WHERE username = $1`, username)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// SIPCredentialList lists endpoint credentials by username.
func (db *DB) SIPCredentialList(ctx context.Context) ([]calls.Credential, error) {
	rows, err := db.Query(ctx, `SELECT username, ha1_md5, ha1_sha256, numbers, created_at FROM sip_credentials ORDER BY username`)
	return scanRows(rows, err, func(row Row) (calls.Credential, error) {
		var c calls.Credential
		var nums string
		var created int64
		if err := row.Scan(&c.Username, &c.HA1MD5, &c.HA1SHA256, &nums, &created); err != nil {
			return c, err
		}
		if nums != "" {
			c.Numbers = strings.Split(nums, ",")
		}
		c.CreatedAt = fromMS(created)
		return c, nil
	})
}
