package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// complianceSchema is this file's migration (migrations.go): policies
// uploaded through the API, each endpoint's latest facts, the current
// result of every check on every endpoint, the history of result changes,
// a daily score per endpoint (trend) and exceptions.
const complianceSchema = `
CREATE TABLE compliance_policies (
	id         TEXT    PRIMARY KEY,
	yaml       TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE compliance_facts (
	endpoint_id  TEXT    PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
	collected_at INTEGER NOT NULL,
	received_at  INTEGER NOT NULL,
	facts        TEXT    NOT NULL
);
CREATE TABLE compliance_state (
	endpoint_id  TEXT    NOT NULL,
	check_id     TEXT    NOT NULL,
	policy_id    TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	evidence     TEXT    NOT NULL,
	exception_id INTEGER,
	since        INTEGER NOT NULL,
	collected_at INTEGER NOT NULL,
	evaluated_at INTEGER NOT NULL,
	PRIMARY KEY (endpoint_id, check_id)
) WITHOUT ROWID;
CREATE TABLE compliance_history (
	id           INTEGER PRIMARY KEY,
	endpoint_id  TEXT    NOT NULL,
	check_id     TEXT    NOT NULL,
	policy_id    TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	evidence     TEXT    NOT NULL,
	exception_id INTEGER,
	collected_at INTEGER NOT NULL,
	at           INTEGER NOT NULL
);
CREATE INDEX compliance_history_at ON compliance_history (at);
CREATE INDEX compliance_history_ep ON compliance_history (endpoint_id, check_id, at);
CREATE TABLE compliance_trend (
	day         TEXT    NOT NULL,
	endpoint_id TEXT    NOT NULL,
	pass        INTEGER NOT NULL,
	fail        INTEGER NOT NULL,
	error       INTEGER NOT NULL,
	excepted    INTEGER NOT NULL,
	PRIMARY KEY (day, endpoint_id)
) WITHOUT ROWID;
CREATE TABLE compliance_exceptions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	endpoint_id TEXT    NOT NULL,
	check_id    TEXT    NOT NULL,
	owner       TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	expires_at  INTEGER NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER,
	revoked_by  TEXT    NOT NULL DEFAULT ''
);`

// CompliancePolicy is a policy uploaded through the API.
type CompliancePolicy struct {
	ID        string    `json:"id"`
	YAML      string    `json:"yaml"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ComplianceResult is one check's result on one endpoint. Evidence is
// the JSON the compliance package produced.
type ComplianceResult struct {
	Endpoint    string          `json:"endpoint"`
	Check       string          `json:"check"`
	Policy      string          `json:"policy"`
	Status      string          `json:"status"`
	Evidence    json.RawMessage `json:"evidence"`
	ExceptionID int64           `json:"exception_id,omitempty"`
	// Since is when the current status began (state) or the change time
	// (history).
	Since       time.Time `json:"since"`
	CollectedAt time.Time `json:"collected_at"`
	EvaluatedAt time.Time `json:"evaluated_at"`
}

// ComplianceException accepts the risk of a failing check.
type ComplianceException struct {
	ID        int64      `json:"id"`
	Endpoint  string     `json:"endpoint"`
	Check     string     `json:"check"`
	Owner     string     `json:"owner"`
	Reason    string     `json:"reason"`
	ExpiresAt time.Time  `json:"expires_at"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// ComplianceTrendPoint is one endpoint's score counts on one day.
type ComplianceTrendPoint struct {
	Day      string `json:"day"`
	Endpoint string `json:"endpoint"`
	Pass     int    `json:"pass"`
	Fail     int    `json:"fail"`
	Error    int    `json:"error"`
	Excepted int    `json:"excepted"`
}

func compliancePolicyTarget(id string) string { return "compliance_policy:" + id }

// ExceptionTarget is the audit target of an exception.
func ExceptionTarget(id int64) string { return fmt.Sprintf("compliance_exception:%d", id) }

// CompliancePolicies lists uploaded policies.
func (s *Store) CompliancePolicies(ctx context.Context) ([]CompliancePolicy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, yaml, created_by, updated_at FROM compliance_policies ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("compliance policies: %w", err)
	}
	defer rows.Close()
	var out []CompliancePolicy
	for rows.Next() {
		var p CompliancePolicy
		var at int64
		if err := rows.Scan(&p.ID, &p.YAML, &p.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("compliance policies: %w", err)
		}
		p.UpdatedAt = fromMS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutCompliancePolicy creates or replaces an uploaded policy, audited.
func (s *Store) PutCompliancePolicy(ctx context.Context, actor Actor, p CompliancePolicy) (created bool, err error) {
	if p.ID == "" || p.YAML == "" {
		return false, invalid("policy", "id and yaml are required")
	}
	err = s.write(ctx, "compliance_policy.put", func(tx *sql.Tx) error {
		var before sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT yaml FROM compliance_policies WHERE id = ?`, p.ID).Scan(&before)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		created = errors.Is(err, sql.ErrNoRows)
		if _, err := tx.ExecContext(ctx, `INSERT INTO compliance_policies (id, yaml, created_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET yaml = excluded.yaml, created_by = excluded.created_by, updated_at = excluded.updated_at`,
			p.ID, p.YAML, actor.Name, ms(s.now())); err != nil {
			return err
		}
		action := "compliance.policy.update"
		var b any
		if created {
			action = "compliance.policy.create"
		} else {
			b = map[string]string{"yaml": before.String}
		}
		return s.audit(ctx, tx, actor, action, compliancePolicyTarget(p.ID), b, map[string]string{"yaml": p.YAML})
	})
	if err != nil {
		return false, fmt.Errorf("put compliance policy: %w", err)
	}
	return created, nil
}

// DeleteCompliancePolicy removes an uploaded policy, audited.
func (s *Store) DeleteCompliancePolicy(ctx context.Context, actor Actor, id string) error {
	err := s.write(ctx, "compliance_policy.delete", func(tx *sql.Tx) error {
		var before string
		err := tx.QueryRowContext(ctx, `SELECT yaml FROM compliance_policies WHERE id = ?`, id).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("compliance policy %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM compliance_policies WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "compliance.policy.delete", compliancePolicyTarget(id), map[string]string{"yaml": before}, nil)
	})
	if err != nil {
		return fmt.Errorf("delete compliance policy: %w", err)
	}
	return nil
}

// PutComplianceFacts stores an endpoint's latest facts (JSON).
func (s *Store) PutComplianceFacts(ctx context.Context, endpoint string, collectedAt time.Time, facts []byte) error {
	return s.write(ctx, "compliance_facts.put", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO compliance_facts (endpoint_id, collected_at, received_at, facts) VALUES (?, ?, ?, ?)
			ON CONFLICT (endpoint_id) DO UPDATE SET collected_at = excluded.collected_at, received_at = excluded.received_at, facts = excluded.facts`,
			endpoint, ms(collectedAt), ms(s.now()), string(facts))
		if err != nil {
			return fmt.Errorf("put compliance facts: %w", err)
		}
		return nil
	})
}

// ComplianceFacts returns an endpoint's latest facts JSON, nil when none.
func (s *Store) ComplianceFacts(ctx context.Context, endpoint string) ([]byte, error) {
	var f string
	err := s.r.QueryRowContext(ctx, `SELECT facts FROM compliance_facts WHERE endpoint_id = ?`, endpoint).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compliance facts: %w", err)
	}
	return []byte(f), nil
}

// ComplianceChange is what RecordComplianceResults reports per result
// whose status changed: Previous is "" for a first result.
type ComplianceChange struct {
	Result   ComplianceResult
	Previous string
}

// RecordComplianceResults replaces an endpoint's current results with rs
// in one transaction: a status or evidence change appends a history row,
// results of checks no longer evaluated are dropped from the current
// state, and the day's trend point is updated. It returns the status
// changes.
func (s *Store) RecordComplianceResults(ctx context.Context, endpoint string, rs []ComplianceResult, at time.Time) ([]ComplianceChange, error) {
	var changes []ComplianceChange
	err := s.write(ctx, "compliance_results.record", func(tx *sql.Tx) error {
		prev := map[string]ComplianceResult{}
		rows, err := tx.QueryContext(ctx, `SELECT check_id, status, evidence, exception_id, since FROM compliance_state WHERE endpoint_id = ?`, endpoint)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r ComplianceResult
			var ev string
			var exc sql.NullInt64
			var since int64
			if err := rows.Scan(&r.Check, &r.Status, &ev, &exc, &since); err != nil {
				rows.Close()
				return err
			}
			r.Evidence, r.ExceptionID, r.Since = json.RawMessage(ev), exc.Int64, fromMS(since)
			prev[r.Check] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM compliance_state WHERE endpoint_id = ?`, endpoint); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO compliance_state (endpoint_id, check_id, policy_id, status, evidence, exception_id, since, collected_at, evaluated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		hist, err := tx.PrepareContext(ctx, `INSERT INTO compliance_history (endpoint_id, check_id, policy_id, status, evidence, exception_id, collected_at, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer hist.Close()
		var pass, fail, errs, exc int
		for _, r := range rs {
			switch r.Status {
			case "pass":
				pass++
			case "fail":
				fail++
			case "excepted":
				exc++
			default:
				errs++
			}
			since := at
			p, had := prev[r.Check]
			changed := !had || p.Status != r.Status || p.ExceptionID != r.ExceptionID
			if had && !changed {
				since = p.Since
			}
			if changed || string(p.Evidence) != string(r.Evidence) {
				if _, err := hist.ExecContext(ctx, endpoint, r.Check, r.Policy, r.Status, string(r.Evidence), nullID(r.ExceptionID), ms(r.CollectedAt), ms(at)); err != nil {
					return err
				}
			}
			if changed {
				r.Endpoint, r.Since, r.EvaluatedAt = endpoint, at, at
				changes = append(changes, ComplianceChange{Result: r, Previous: p.Status})
			}
			if _, err := ins.ExecContext(ctx, endpoint, r.Check, r.Policy, r.Status, string(r.Evidence), nullID(r.ExceptionID), ms(since), ms(r.CollectedAt), ms(at)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO compliance_trend (day, endpoint_id, pass, fail, error, excepted) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (day, endpoint_id) DO UPDATE SET pass = excluded.pass, fail = excluded.fail, error = excluded.error, excepted = excluded.excepted`,
			at.UTC().Format(time.DateOnly), endpoint, pass, fail, errs, exc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record compliance results: %w", err)
	}
	return changes, nil
}

// ComplianceFilter selects results. Empty fields match everything.
type ComplianceFilter struct {
	Endpoint string
	Checks   []string
}

// ComplianceState returns current results, ordered by endpoint and check.
func (s *Store) ComplianceState(ctx context.Context, f ComplianceFilter) ([]ComplianceResult, error) {
	q := `SELECT endpoint_id, check_id, policy_id, status, evidence, exception_id, since, collected_at, evaluated_at FROM compliance_state`
	where, args := complianceWhere(f)
	rows, err := s.r.QueryContext(ctx, q+where+` ORDER BY endpoint_id, check_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("compliance state: %w", err)
	}
	defer rows.Close()
	var out []ComplianceResult
	for rows.Next() {
		var r ComplianceResult
		var ev string
		var exc sql.NullInt64
		var since, col, eval int64
		if err := rows.Scan(&r.Endpoint, &r.Check, &r.Policy, &r.Status, &ev, &exc, &since, &col, &eval); err != nil {
			return nil, fmt.Errorf("compliance state: %w", err)
		}
		r.Evidence, r.ExceptionID = json.RawMessage(ev), exc.Int64
		r.Since, r.CollectedAt, r.EvaluatedAt = fromMS(since), fromMS(col), fromMS(eval)
		out = append(out, r)
	}
	return out, rows.Err()
}

func complianceWhere(f ComplianceFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Endpoint != "" {
		conds = append(conds, "endpoint_id = ?")
		args = append(args, f.Endpoint)
	}
	if len(f.Checks) > 0 {
		conds = append(conds, "check_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Checks)), ",")+")")
		for _, c := range f.Checks {
			args = append(args, c)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ComplianceAsOf returns, per endpoint and check, the last recorded
// result at or before t (the state a report for a period ending at t
// shows). Since is when that result was recorded.
func (s *Store) ComplianceAsOf(ctx context.Context, f ComplianceFilter, t time.Time) ([]ComplianceResult, error) {
	where, args := complianceWhere(f)
	cond := " WHERE at <= ?"
	if where != "" {
		cond = where + " AND at <= ?"
	}
	args = append(args, ms(t))
	q := `SELECT endpoint_id, check_id, policy_id, status, evidence, exception_id, collected_at, at FROM (
		SELECT *, ROW_NUMBER() OVER (PARTITION BY endpoint_id, check_id ORDER BY at DESC, id DESC) AS rn
		FROM compliance_history` + cond + `) WHERE rn = 1 ORDER BY endpoint_id, check_id`
	rows, err := s.r.QueryContext(ctx, q, args...)
	return historyRows(rows, err, "compliance as of")
}

// ComplianceHistory returns result changes of one endpoint (or all) in
// [from, to), oldest first, at most limit rows.
func (s *Store) ComplianceHistory(ctx context.Context, f ComplianceFilter, from, to time.Time, lim int) ([]ComplianceResult, error) {
	where, args := complianceWhere(f)
	cond := " WHERE at >= ? AND at < ?"
	if where != "" {
		cond = where + " AND at >= ? AND at < ?"
	}
	args = append(args, ms(from), ms(to), limit(lim))
	rows, err := s.r.QueryContext(ctx, `SELECT endpoint_id, check_id, policy_id, status, evidence, exception_id, collected_at, at
		FROM compliance_history`+cond+` ORDER BY at, id LIMIT ?`, args...)
	return historyRows(rows, err, "compliance history")
}

// historyRows reads compliance_history rows selected as endpoint_id,
// check_id, policy_id, status, evidence, exception_id, collected_at, at.
func historyRows(rows *sql.Rows, err error, what string) ([]ComplianceResult, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []ComplianceResult
	for rows.Next() {
		var r ComplianceResult
		var ev string
		var exc sql.NullInt64
		var col, at int64
		if err := rows.Scan(&r.Endpoint, &r.Check, &r.Policy, &r.Status, &ev, &exc, &col, &at); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		r.Evidence, r.ExceptionID = json.RawMessage(ev), exc.Int64
		r.Since, r.CollectedAt, r.EvaluatedAt = fromMS(at), fromMS(col), fromMS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ComplianceTrend returns daily score points of one endpoint (or all)
// for days in [from, to].
func (s *Store) ComplianceTrend(ctx context.Context, endpoint string, from, to time.Time) ([]ComplianceTrendPoint, error) {
	q := `SELECT day, endpoint_id, pass, fail, error, excepted FROM compliance_trend WHERE day >= ? AND day <= ?`
	args := []any{from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)}
	if endpoint != "" {
		q += ` AND endpoint_id = ?`
		args = append(args, endpoint)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY day, endpoint_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("compliance trend: %w", err)
	}
	defer rows.Close()
	var out []ComplianceTrendPoint
	for rows.Next() {
		var p ComplianceTrendPoint
		if err := rows.Scan(&p.Day, &p.Endpoint, &p.Pass, &p.Fail, &p.Error, &p.Excepted); err != nil {
			return nil, fmt.Errorf("compliance trend: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CreateComplianceException stores an exception, audited.
func (s *Store) CreateComplianceException(ctx context.Context, actor Actor, e ComplianceException) (ComplianceException, error) {
	e.CreatedBy, e.CreatedAt = actor.Name, fromMS(ms(s.now()))
	e.ExpiresAt = fromMS(ms(e.ExpiresAt))
	e.RevokedAt, e.RevokedBy = nil, ""
	err := s.write(ctx, "compliance_exception.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO compliance_exceptions (endpoint_id, check_id, owner, reason, expires_at, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.Endpoint, e.Check, e.Owner, e.Reason, ms(e.ExpiresAt), e.CreatedBy, ms(e.CreatedAt)).Scan(&e.ID)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "compliance.exception.create", ExceptionTarget(e.ID), nil, e)
	})
	if err != nil {
		return ComplianceException{}, fmt.Errorf("create compliance exception: %w", err)
	}
	return e, nil
}

// UpdateComplianceException changes an active exception's owner, reason
// and expiry, audited.
func (s *Store) UpdateComplianceException(ctx context.Context, actor Actor, e ComplianceException) (ComplianceException, error) {
	var out ComplianceException
	err := s.write(ctx, "compliance_exception.update", func(tx *sql.Tx) error {
		before, err := complianceException(ctx, tx, e.ID)
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			return fmt.Errorf("compliance exception %d is revoked: %w", e.ID, ErrConflict)
		}
		out = before
		out.Owner, out.Reason, out.ExpiresAt = e.Owner, e.Reason, fromMS(ms(e.ExpiresAt))
		if _, err := tx.ExecContext(ctx, `UPDATE compliance_exceptions SET owner = ?, reason = ?, expires_at = ? WHERE id = ?`,
			out.Owner, out.Reason, ms(out.ExpiresAt), e.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "compliance.exception.update", ExceptionTarget(e.ID), before, out)
	})
	if err != nil {
		return ComplianceException{}, fmt.Errorf("update compliance exception: %w", err)
	}
	return out, nil
}

// RevokeComplianceException ends an exception now, audited; the row stays
// for reports.
func (s *Store) RevokeComplianceException(ctx context.Context, actor Actor, id int64) (ComplianceException, error) {
	var out ComplianceException
	err := s.write(ctx, "compliance_exception.revoke", func(tx *sql.Tx) error {
		before, err := complianceException(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			return fmt.Errorf("compliance exception %d is already revoked: %w", id, ErrConflict)
		}
		now := fromMS(ms(s.now()))
		out = before
		out.RevokedAt, out.RevokedBy = &now, actor.Name
		if _, err := tx.ExecContext(ctx, `UPDATE compliance_exceptions SET revoked_at = ?, revoked_by = ? WHERE id = ?`, ms(now), actor.Name, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "compliance.exception.revoke", ExceptionTarget(id), before, out)
	})
	if err != nil {
		return ComplianceException{}, fmt.Errorf("revoke compliance exception: %w", err)
	}
	return out, nil
}

// ComplianceException returns one exception.
func (s *Store) ComplianceException(ctx context.Context, id int64) (ComplianceException, error) {
	return complianceException(ctx, s.r, id)
}

func complianceException(ctx context.Context, q queryer, id int64) (ComplianceException, error) {
	es, err := scanExceptions(q.QueryContext(ctx, exceptionCols+` WHERE id = ?`, id))
	if err != nil {
		return ComplianceException{}, err
	}
	if len(es) == 0 {
		return ComplianceException{}, fmt.Errorf("compliance exception %d: %w", id, ErrNotFound)
	}
	return es[0], nil
}

const exceptionCols = `SELECT id, endpoint_id, check_id, owner, reason, expires_at, created_by, created_at, revoked_at, revoked_by FROM compliance_exceptions`

// ComplianceExceptions lists exceptions, newest first; all includes
// revoked ones.
func (s *Store) ComplianceExceptions(ctx context.Context, all bool) ([]ComplianceException, error) {
	q := exceptionCols
	if !all {
		q += ` WHERE revoked_at IS NULL`
	}
	return scanExceptions(s.r.QueryContext(ctx, q+` ORDER BY id DESC`))
}

func scanExceptions(rows *sql.Rows, err error) ([]ComplianceException, error) {
	if err != nil {
		return nil, fmt.Errorf("compliance exceptions: %w", err)
	}
	defer rows.Close()
	var out []ComplianceException
	for rows.Next() {
		var e ComplianceException
		var exp, cr int64
		var rev sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Endpoint, &e.Check, &e.Owner, &e.Reason, &exp, &e.CreatedBy, &cr, &rev, &e.RevokedBy); err != nil {
			return nil, fmt.Errorf("compliance exceptions: %w", err)
		}
		e.ExpiresAt, e.CreatedAt, e.RevokedAt = fromMS(exp), fromMS(cr), fromMSPtr(rev)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CompliancePruneResult is what PruneComplianceHistory deleted.
type CompliancePruneResult struct {
	// HistoryRows are superseded result changes older than the cutoff.
	HistoryRows int64
	// TrendRows are daily score points of days before the cutoff's day.
	TrendRows int64
}

// PruneComplianceHistory bounds the compliance history to what answers
// questions about times at or after cutoff. Of an endpoint's result
// changes for a check, it deletes those older than cutoff that a later
// change at or before cutoff superseded, so the newest change at or
// before cutoff (the result in force at cutoff) and every later one stay:
// ComplianceAsOf, ComplianceHistory and ComplianceTrend answer exactly as
// before for any time at or after cutoff, and the latest result of every
// endpoint and check is never deleted. Daily trend points of days before
// cutoff's (UTC) day are deleted. It works one endpoint per transaction,
// so agents' results are not held up behind one long delete.
func (s *Store) PruneComplianceHistory(ctx context.Context, cutoff time.Time) (CompliancePruneResult, error) {
	var res CompliancePruneResult
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT endpoint_id FROM compliance_history WHERE at < ?`, ms(cutoff))
	if err != nil {
		return res, fmt.Errorf("prune compliance history: %w", err)
	}
	var eps []string
	for rows.Next() {
		var ep string
		if err := rows.Scan(&ep); err != nil {
			rows.Close()
			return res, fmt.Errorf("prune compliance history: %w", err)
		}
		eps = append(eps, ep)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("prune compliance history: %w", err)
	}
	for _, ep := range eps {
		err := s.write(ctx, "compliance_history.prune", func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, `DELETE FROM compliance_history AS h
				WHERE h.endpoint_id = ? AND h.at < ? AND EXISTS (
					SELECT 1 FROM compliance_history AS n
					WHERE n.endpoint_id = h.endpoint_id AND n.check_id = h.check_id AND n.at <= ?
					  AND (n.at > h.at OR (n.at = h.at AND n.id > h.id)))`, ep, ms(cutoff), ms(cutoff))
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			res.HistoryRows += n
			return err
		})
		if err != nil {
			return res, fmt.Errorf("prune compliance history of endpoint %s: %w", ep, err)
		}
	}
	err = s.write(ctx, "compliance_trend.prune", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM compliance_trend WHERE day < ?`, cutoff.UTC().Format(time.DateOnly))
		if err != nil {
			return err
		}
		res.TrendRows, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return res, fmt.Errorf("prune compliance trend: %w", err)
	}
	return res, nil
}

// ComplianceHistoryRows counts the stored result changes (tests,
// diagnostics).
func (s *Store) ComplianceHistoryRows(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM compliance_history`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count compliance history: %w", err)
	}
	return n, nil
}
