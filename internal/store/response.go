package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Active response (internal/autoresponse): response actions asked for by
// people or detection rules, their approval, the agent jobs that carry
// them out, and which decisions have been pushed to (and withdrawn from)
// agent firewalls. Every change is audited; actions linked to an incident
// also go on its timeline, in the same transaction.

// responseSchema is this file's migration (migrations.go).
const responseSchema = `CREATE TABLE response_actions (
	id             INTEGER PRIMARY KEY,
	kind           TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	params         TEXT    NOT NULL DEFAULT '{}',
	endpoints      TEXT,
	reason         TEXT    NOT NULL DEFAULT '',
	origin         TEXT    NOT NULL,
	origin_ref     TEXT    NOT NULL DEFAULT '',
	incident_id    INTEGER REFERENCES incidents (id),
	requested_by   TEXT    NOT NULL,
	requested_at   INTEGER NOT NULL,
	needs_approval INTEGER NOT NULL DEFAULT 0,
	decided_by     TEXT    NOT NULL DEFAULT '',
	decided_at     INTEGER,
	decision_note  TEXT    NOT NULL DEFAULT '',
	decision_id    INTEGER,
	result         TEXT    NOT NULL DEFAULT '',
	updated_at     INTEGER NOT NULL
);
CREATE INDEX response_actions_status ON response_actions (status, id);
CREATE TABLE response_jobs (
	job_id      TEXT    PRIMARY KEY,
	action_id   INTEGER REFERENCES response_actions (id),
	decision_id INTEGER,
	endpoint_id TEXT    NOT NULL,
	job_action  TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	error       TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	finished_at INTEGER
);
CREATE INDEX response_jobs_action ON response_jobs (action_id);
CREATE INDEX response_jobs_decision ON response_jobs (decision_id);
CREATE TABLE decision_enforcement (
	decision_id INTEGER PRIMARY KEY,
	endpoints   TEXT    NOT NULL,
	blocked_at  INTEGER NOT NULL,
	released_at INTEGER
);`

// ResponseAction is one requested response: what (Kind, Params), where
// (Endpoints; nil means the whole fleet), why and on whose authority, and
// where it stands (Status).
type ResponseAction struct {
	ID        int64             `json:"id"`
	Kind      string            `json:"kind"`
	Status    string            `json:"status"`
	Params    map[string]string `json:"params"`
	Endpoints []string          `json:"endpoints"`
	// Labels, when set, select the endpoints by label instead (resolved
	// when the action runs; for a block, whenever the decision is
	// enforced).
	Labels map[string]string `json:"labels,omitempty"`
	Reason string            `json:"reason"`
	// AlertFingerprint is the alert an automatic response answered; it
	// links the action to the alert's incident.
	AlertFingerprint string `json:"alert_fingerprint,omitempty"`
	// Origin is "person", "rule" or "incident"; OriginRef names which.
	Origin        string     `json:"origin"`
	OriginRef     string     `json:"origin_ref,omitempty"`
	IncidentID    int64      `json:"incident_id,omitempty"`
	RequestedBy   string     `json:"requested_by"`
	RequestedAt   time.Time  `json:"requested_at"`
	NeedsApproval bool       `json:"needs_approval"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	DecisionNote  string     `json:"decision_note,omitempty"`
	// DecisionID is the decision a block created.
	DecisionID int64     `json:"decision_id,omitempty"`
	Result     string    `json:"result,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ResponseJob is one agent job sent for a response action or a decision.
type ResponseJob struct {
	JobID      string     `json:"job_id"`
	ActionID   int64      `json:"action_id,omitempty"`
	DecisionID int64      `json:"decision_id,omitempty"`
	EndpointID string     `json:"endpoint_id"`
	JobAction  string     `json:"job_action"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func responseTarget(id int64) string { return "response:" + strconv.FormatInt(id, 10) }

const responseCols = `id, kind, status, params, endpoints, reason, origin, origin_ref, COALESCE(incident_id, 0),
	requested_by, requested_at, needs_approval, decided_by, decided_at, decision_note, COALESCE(decision_id, 0), result, updated_at,
	labels, alert_fingerprint`

func scanResponse(row rowScanner) (ResponseAction, error) {
	var a ResponseAction
	var params string
	var eps, labels sql.NullString
	var req, upd int64
	var dec sql.NullInt64
	if err := row.Scan(&a.ID, &a.Kind, &a.Status, &params, &eps, &a.Reason, &a.Origin, &a.OriginRef, &a.IncidentID,
		&a.RequestedBy, &req, &a.NeedsApproval, &a.DecidedBy, &dec, &a.DecisionNote, &a.DecisionID, &a.Result, &upd,
		&labels, &a.AlertFingerprint); err != nil {
		return ResponseAction{}, err
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
			return ResponseAction{}, fmt.Errorf("response %d: labels: %w", a.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(params), &a.Params); err != nil {
		return ResponseAction{}, fmt.Errorf("response %d: params: %w", a.ID, err)
	}
	if eps.Valid {
		if err := json.Unmarshal([]byte(eps.String), &a.Endpoints); err != nil {
			return ResponseAction{}, fmt.Errorf("response %d: endpoints: %w", a.ID, err)
		}
	}
	a.RequestedAt, a.UpdatedAt, a.DecidedAt = fromMS(req), fromMS(upd), fromMSPtr(dec)
	return a, nil
}

func getResponse(ctx context.Context, q queryer, id int64) (ResponseAction, error) {
	a, err := scanResponse(q.QueryRowContext(ctx, `SELECT `+responseCols+` FROM response_actions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ResponseAction{}, fmt.Errorf("response %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ResponseAction{}, fmt.Errorf("response %d: %w", id, err)
	}
	return a, nil
}

// responseTimeline notes a change of a on its incident's timeline, if it
// has one, inside tx.
func (s *Store) responseTimeline(ctx context.Context, tx *sql.Tx, actor Actor, a ResponseAction, kind, msg string) error {
	if a.IncidentID == 0 {
		return nil
	}
	fields := map[string]any{"response_id": a.ID, "kind": a.Kind, "status": a.Status, "params": a.Params, "origin": a.Origin}
	if a.DecisionID != 0 {
		fields["decision_id"] = a.DecisionID
	}
	if a.Result != "" {
		fields["result"] = a.Result
	}
	data, err := jsonText(fields)
	if err != nil {
		return err
	}
	var id int64
	err = tx.QueryRowContext(ctx, qAppendTimeline, a.IncidentID, ms(s.now()), actor.Name, kind, msg, data).Scan(&id)
	if err != nil {
		return fmt.Errorf("response %d: timeline of incident %d: %w", a.ID, a.IncidentID, err)
	}
	return nil
}

// CreateResponseAction stores a validated request (Status set by the
// caller: "pending" or "approved"), audited as response.request and noted
// on the incident's timeline. ErrInvalid when the incident or a listed
// endpoint does not exist.
func (s *Store) CreateResponseAction(ctx context.Context, actor Actor, a ResponseAction, msg string) (ResponseAction, error) {
	if a.Kind == "" || a.Status == "" || a.Origin == "" {
		return ResponseAction{}, fmt.Errorf("create response: %w", invalid("kind", "kind, status and origin are required"))
	}
	if a.RequestedBy == "" {
		a.RequestedBy = actor.Name
	}
	if a.RequestedAt.IsZero() {
		a.RequestedAt = s.now()
	}
	a.RequestedAt = fromMS(ms(a.RequestedAt))
	a.UpdatedAt = a.RequestedAt
	if a.Params == nil {
		a.Params = map[string]string{}
	}
	params, err := jsonText(a.Params)
	if err != nil {
		return ResponseAction{}, fmt.Errorf("create response: %w", err)
	}
	eps, err := jsonText(a.Endpoints)
	if err != nil {
		return ResponseAction{}, fmt.Errorf("create response: %w", err)
	}
	var inc sql.NullInt64
	if a.IncidentID > 0 {
		inc = sql.NullInt64{Int64: a.IncidentID, Valid: true}
	}
	if a.Labels != nil && a.Endpoints != nil {
		return ResponseAction{}, fmt.Errorf("create response: %w", invalid("labels", "give either endpoints or labels, not both"))
	}
	var labels sql.NullString
	if a.Labels != nil {
		labels = sql.NullString{String: labelsText(a.Labels), Valid: true}
	}
	err = s.write(ctx, "response.create", func(tx *sql.Tx) error {
		for i, e := range a.Endpoints {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM endpoints WHERE id = ? AND revoked_at IS NULL`, e).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("create response: %w", invalid(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("no enrolled endpoint %q", e)))
			}
			if err != nil {
				return fmt.Errorf("create response: endpoint %q: %w", e, err)
			}
		}
		if a.IncidentID > 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM incidents WHERE id = ?`, a.IncidentID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("create response: %w", invalid("incident_id", fmt.Sprintf("no incident %d", a.IncidentID)))
			}
			if err != nil {
				return fmt.Errorf("create response: incident: %w", err)
			}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO response_actions (kind, status, params, endpoints, labels, reason, origin, origin_ref,
			incident_id, requested_by, requested_at, needs_approval, updated_at, alert_fingerprint)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.Kind, a.Status, params.String, eps, labels, a.Reason, a.Origin, a.OriginRef, inc, a.RequestedBy, ms(a.RequestedAt),
			a.NeedsApproval, ms(a.UpdatedAt), a.AlertFingerprint).Scan(&a.ID)
		if err != nil {
			return fmt.Errorf("create response: %w", err)
		}
		if err := s.audit(ctx, tx, actor, "response.request", responseTarget(a.ID), nil, a); err != nil {
			return err
		}
		return s.responseTimeline(ctx, tx, actor, a, "response.request", msg)
	})
	if err != nil {
		return ResponseAction{}, err
	}
	return a, nil
}

// GetResponseAction returns one response action.
func (s *Store) GetResponseAction(ctx context.Context, id int64) (ResponseAction, error) {
	return getResponse(ctx, s.r, id)
}

// ResponseFilter selects response actions: Status "" matches all;
// BeforeID pages backwards. Limit defaults to 100, at most 1000.
type ResponseFilter struct {
	Status     string
	IncidentID int64
	BeforeID   int64
	Limit      int
}

// ListResponseActions returns matching actions, newest first.
func (s *Store) ListResponseActions(ctx context.Context, f ResponseFilter) ([]ResponseAction, error) {
	q := `SELECT ` + responseCols + ` FROM response_actions WHERE (?1 = '' OR status = ?1) AND (?2 = 0 OR incident_id = ?2)
		AND (?3 = 0 OR id < ?3) ORDER BY id DESC LIMIT ?4`
	rows, err := s.r.QueryContext(ctx, q, f.Status, f.IncidentID, f.BeforeID, limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list responses: %w", err)
	}
	defer rows.Close()
	out := []ResponseAction{}
	for rows.Next() {
		a, err := scanResponse(rows)
		if err != nil {
			return nil, fmt.Errorf("list responses: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list responses: %w", err)
	}
	return out, nil
}

// DecideResponseAction approves or denies a pending action. ErrNotFound
// when it does not exist; ErrConflict when it is no longer pending (a
// second approver racing the first loses here).
func (s *Store) DecideResponseAction(ctx context.Context, actor Actor, id int64, approve bool, note string, now time.Time) (ResponseAction, error) {
	now = fromMS(ms(now))
	var after ResponseAction
	err := s.write(ctx, "response.decide", func(tx *sql.Tx) error {
		before, err := getResponse(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.Status != "pending" {
			return fmt.Errorf("response %d is %s, not pending: %w", id, before.Status, ErrConflict)
		}
		after = before
		after.Status, after.DecidedBy, after.DecidedAt, after.DecisionNote, after.UpdatedAt = "denied", actor.Name, &now, note, now
		action, verb := "response.deny", "denied"
		if approve {
			after.Status, action, verb = "approved", "response.approve", "approved"
		}
		if _, err := tx.ExecContext(ctx, `UPDATE response_actions SET status = ?, decided_by = ?, decided_at = ?, decision_note = ?, updated_at = ?
			WHERE id = ?`, after.Status, actor.Name, ms(now), note, ms(now), id); err != nil {
			return fmt.Errorf("decide response %d: %w", id, err)
		}
		if err := s.audit(ctx, tx, actor, action, responseTarget(id), before, after); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s %s response #%d (%s)", actor.Name, verb, id, before.Kind)
		if note != "" {
			msg += ": " + note
		}
		return s.responseTimeline(ctx, tx, actor, after, action, msg)
	})
	if err != nil {
		return ResponseAction{}, err
	}
	return after, nil
}

// UpdateResponseAction moves an action to status with a result text (and
// the decision a block created), audited as auditAction and noted on the
// incident's timeline with msg.
func (s *Store) UpdateResponseAction(ctx context.Context, actor Actor, id int64, status, result string, decisionID int64, auditAction, msg string) (ResponseAction, error) {
	now := fromMS(ms(s.now()))
	var after ResponseAction
	err := s.write(ctx, "response.update", func(tx *sql.Tx) error {
		before, err := getResponse(ctx, tx, id)
		if err != nil {
			return err
		}
		after = before
		after.Status, after.Result, after.UpdatedAt = status, result, now
		if decisionID != 0 {
			after.DecisionID = decisionID
		}
		var dec sql.NullInt64
		if after.DecisionID != 0 {
			dec = sql.NullInt64{Int64: after.DecisionID, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE response_actions SET status = ?, result = ?, decision_id = ?, updated_at = ? WHERE id = ?`,
			status, result, dec, ms(now), id); err != nil {
			return fmt.Errorf("update response %d: %w", id, err)
		}
		if err := s.audit(ctx, tx, actor, auditAction, responseTarget(id), before, after); err != nil {
			return err
		}
		return s.responseTimeline(ctx, tx, actor, after, auditAction, msg)
	})
	if err != nil {
		return ResponseAction{}, err
	}
	return after, nil
}

// RecordResponseJobs remembers the agent jobs sent for an action or a
// decision, so their results can be matched back.
func (s *Store) RecordResponseJobs(ctx context.Context, jobs []ResponseJob) error {
	if len(jobs) == 0 {
		return nil
	}
	return s.write(ctx, "response.jobs", func(tx *sql.Tx) error {
		for _, j := range jobs {
			var act, dec sql.NullInt64
			if j.ActionID != 0 {
				act = sql.NullInt64{Int64: j.ActionID, Valid: true}
			}
			if j.DecisionID != 0 {
				dec = sql.NullInt64{Int64: j.DecisionID, Valid: true}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO response_jobs (job_id, action_id, decision_id, endpoint_id, job_action, status, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, j.JobID, act, dec, j.EndpointID, j.JobAction, j.Status, ms(j.CreatedAt)); err != nil {
				return fmt.Errorf("record response job %s: %w", j.JobID, err)
			}
		}
		return nil
	})
}

const responseJobCols = `job_id, COALESCE(action_id, 0), COALESCE(decision_id, 0), endpoint_id, job_action, status, error, created_at, finished_at`

func scanResponseJob(row rowScanner) (ResponseJob, error) {
	var j ResponseJob
	var created int64
	var fin sql.NullInt64
	if err := row.Scan(&j.JobID, &j.ActionID, &j.DecisionID, &j.EndpointID, &j.JobAction, &j.Status, &j.Error, &created, &fin); err != nil {
		return ResponseJob{}, err
	}
	j.CreatedAt, j.FinishedAt = fromMS(created), fromMSPtr(fin)
	return j, nil
}

// FinishResponseJob records a job's final status. ErrNotFound when the job
// was not sent by the response service (someone else's job).
func (s *Store) FinishResponseJob(ctx context.Context, jobID, status, errText string, at time.Time) (ResponseJob, error) {
	var j ResponseJob
	err := s.write(ctx, "response.job_result", func(tx *sql.Tx) error {
		var err error
		j, err = scanResponseJob(tx.QueryRowContext(ctx, `SELECT `+responseJobCols+` FROM response_jobs WHERE job_id = ?`, jobID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("response job %s: %w", jobID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("response job %s: %w", jobID, err)
		}
		t := fromMS(ms(at))
		j.Status, j.Error, j.FinishedAt = status, errText, &t
		_, err = tx.ExecContext(ctx, `UPDATE response_jobs SET status = ?, error = ?, finished_at = ? WHERE job_id = ?`, status, errText, ms(t), jobID)
		return err
	})
	return j, err
}

// ResponseJobs lists the jobs of an action (actionID > 0) or of a
// decision (decisionID > 0), oldest first.
func (s *Store) ResponseJobs(ctx context.Context, actionID, decisionID int64) ([]ResponseJob, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+responseJobCols+` FROM response_jobs
		WHERE (?1 > 0 AND action_id = ?1) OR (?2 > 0 AND decision_id = ?2) ORDER BY created_at, job_id`, actionID, decisionID)
	if err != nil {
		return nil, fmt.Errorf("response jobs: %w", err)
	}
	defer rows.Close()
	out := []ResponseJob{}
	for rows.Next() {
		j, err := scanResponseJob(rows)
		if err != nil {
			return nil, fmt.Errorf("response jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Enforcement says where a decision's block was sent.
type Enforcement struct {
	DecisionID int64
	Endpoints  []string
	BlockedAt  time.Time
}

// DecisionsToEnforce returns decisions active at now that have not been
// sent to agents yet, oldest first.
func (s *Store) DecisionsToEnforce(ctx context.Context, now time.Time) ([]DecisionRef, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT d.id FROM decisions d LEFT JOIN decision_enforcement e ON e.decision_id = d.id
		WHERE e.decision_id IS NULL AND d.revoked_at IS NULL AND d.until > ? ORDER BY d.id`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("decisions to enforce: %w", err)
	}
	defer rows.Close()
	var out []DecisionRef
	for rows.Next() {
		var r DecisionRef
		if err := rows.Scan(&r.ID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DecisionRef names a decision.
type DecisionRef struct{ ID int64 }

// MarkDecisionEnforced records that the decision's block went to
// endpoints. false when it was already recorded (another pass won).
func (s *Store) MarkDecisionEnforced(ctx context.Context, decisionID int64, endpoints []string, at time.Time) (bool, error) {
	if endpoints == nil {
		endpoints = []string{}
	}
	eps, err := jsonText(endpoints)
	if err != nil {
		return false, err
	}
	var n int64
	err = s.write(ctx, "decision.enforce", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO decision_enforcement (decision_id, endpoints, blocked_at) VALUES (?, ?, ?)
			ON CONFLICT (decision_id) DO NOTHING`, decisionID, eps, ms(at))
		if err != nil {
			return fmt.Errorf("mark decision %d enforced: %w", decisionID, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// DecisionsToRelease returns enforced decisions that are revoked or have
// expired at now and whose unblock has not been sent.
func (s *Store) DecisionsToRelease(ctx context.Context, now time.Time) ([]Enforcement, error) {
	return s.enforcements(ctx, "decisions to release", `WHERE e.released_at IS NULL AND (d.revoked_at IS NOT NULL OR d.until <= ?)`, ms(now))
}

// enforcements lists the enforcement records of the decisions that where
// (a WHERE clause over e, decision_enforcement, and d, decisions) selects,
// by decision id.
func (s *Store) enforcements(ctx context.Context, what, where string, args ...any) ([]Enforcement, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.decision_id, e.endpoints, e.blocked_at FROM decision_enforcement e
		JOIN decisions d ON d.id = e.decision_id `+where+` ORDER BY e.decision_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Enforcement
	for rows.Next() {
		var e Enforcement
		var eps string
		var at int64
		if err := rows.Scan(&e.DecisionID, &eps, &at); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := json.Unmarshal([]byte(eps), &e.Endpoints); err != nil {
			return nil, fmt.Errorf("decision %d enforcement: %w", e.DecisionID, err)
		}
		e.BlockedAt = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// MarkDecisionReleased records that the decision's unblock was sent.
func (s *Store) MarkDecisionReleased(ctx context.Context, decisionID int64, at time.Time) error {
	return s.write(ctx, "decision.release", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE decision_enforcement SET released_at = ? WHERE decision_id = ? AND released_at IS NULL`, ms(at), decisionID)
		return err
	})
}

// CountDecisionsFor counts the decisions ever made for value with the
// given origin since since (repeat offenders get longer blocks).
func (s *Store) CountDecisionsFor(ctx context.Context, value, origin string, since time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM decisions WHERE value = ? AND origin = ? AND created_at >= ?`,
		value, origin, ms(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count decisions for %s: %w", value, err)
	}
	return n, nil
}

// IncidentForAlert returns the incident of the newest alert with the
// fingerprint that is attached to one (how an automatic response finds
// the incident of the alert it answered). ErrNotFound when none is.
func (s *Store) IncidentForAlert(ctx context.Context, fingerprint string) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT incident_id FROM alerts WHERE fingerprint = ? AND incident_id IS NOT NULL
		ORDER BY id DESC LIMIT 1`, fingerprint).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("incident of alert %s: %w", fingerprint, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("incident of alert %s: %w", fingerprint, err)
	}
	return id, nil
}

// UnlinkedResponseActions returns actions requested since since that
// answered an alert but are not linked to an incident yet, oldest first,
// at most 100.
func (s *Store) UnlinkedResponseActions(ctx context.Context, since time.Time) ([]ResponseAction, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+responseCols+` FROM response_actions
		WHERE incident_id IS NULL AND alert_fingerprint != '' AND requested_at >= ? ORDER BY requested_at, id LIMIT 100`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("unlinked responses: %w", err)
	}
	defer rows.Close()
	var out []ResponseAction
	for rows.Next() {
		a, err := scanResponse(rows)
		if err != nil {
			return nil, fmt.Errorf("unlinked responses: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// LinkResponseIncident attaches an unlinked action to an incident and
// notes on its timeline, with msg, what happened so far (the entries the
// action would have written had the incident existed). Linking an action
// that already has an incident changes nothing and returns it as is.
func (s *Store) LinkResponseIncident(ctx context.Context, actor Actor, id, incidentID int64, msg string) (ResponseAction, error) {
	var after ResponseAction
	err := s.write(ctx, "response.link", func(tx *sql.Tx) error {
		before, err := getResponse(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.IncidentID != 0 {
			after = before
			return nil
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM incidents WHERE id = ?`, incidentID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = ErrNotFound
			}
			return fmt.Errorf("link response %d: incident %d: %w", id, incidentID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE response_actions SET incident_id = ? WHERE id = ?`, incidentID, id); err != nil {
			return fmt.Errorf("link response %d: %w", id, err)
		}
		after = before
		after.IncidentID = incidentID
		if err := s.audit(ctx, tx, actor, "response.link", responseTarget(id), before, after); err != nil {
			return err
		}
		return s.responseTimeline(ctx, tx, actor, after, "response.link", msg)
	})
	if err != nil {
		return ResponseAction{}, err
	}
	return after, nil
}

// EnforcedLabelDecisions returns the label-scoped decisions active at now
// whose block has been sent and not withdrawn, with where it went: the
// reconciler re-resolves their selectors every pass.
func (s *Store) EnforcedLabelDecisions(ctx context.Context, now time.Time) ([]Enforcement, error) {
	return s.enforcements(ctx, "enforced label decisions", `WHERE e.released_at IS NULL AND d.labels IS NOT NULL AND d.revoked_at IS NULL AND d.until > ?`, ms(now))
}

// SetDecisionEnforcement records the endpoints a decision's block is now
// in force on (after a relabel moved it).
func (s *Store) SetDecisionEnforcement(ctx context.Context, decisionID int64, endpoints []string) error {
	if endpoints == nil {
		endpoints = []string{}
	}
	eps, err := jsonText(endpoints)
	if err != nil {
		return err
	}
	return s.write(ctx, "decision.enforce", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE decision_enforcement SET endpoints = ? WHERE decision_id = ? AND released_at IS NULL`, eps, decisionID)
		if err != nil {
			return fmt.Errorf("set decision %d enforcement: %w", decisionID, err)
		}
		return nil
	})
}
