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

// jobsSchema is migration 9 (migrations.go): agent jobs, per-endpoint
// settings, pending updates with the time each was first seen, and the
// software allow and deny lists with the denied packages currently found.
const jobsSchema = `
CREATE TABLE jobs (
	id          TEXT    PRIMARY KEY,
	endpoint_id TEXT    NOT NULL REFERENCES endpoints(id),
	action      TEXT    NOT NULL,
	args        TEXT,
	packages    TEXT,
	status      TEXT    NOT NULL,
	not_before  INTEGER NOT NULL,
	not_after   INTEGER NOT NULL,
	timeout_ms  INTEGER NOT NULL,
	reason      TEXT    NOT NULL DEFAULT '',
	origin      TEXT    NOT NULL DEFAULT '',
	origin_ref  TEXT    NOT NULL DEFAULT '',
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	sent_at     INTEGER,
	started_at  INTEGER,
	finished_at INTEGER,
	exit_code   INTEGER,
	output      TEXT    NOT NULL DEFAULT '',
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX jobs_endpoint_status ON jobs (endpoint_id, status);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_origin_ref ON jobs (origin_ref) WHERE origin_ref != '';

CREATE TABLE endpoint_settings (
	endpoint_id TEXT    PRIMARY KEY REFERENCES endpoints(id),
	allow_shell INTEGER NOT NULL DEFAULT 0,
	updated_by  TEXT    NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE endpoint_update_state (
	endpoint_id     TEXT    PRIMARY KEY REFERENCES endpoints(id),
	manager         TEXT    NOT NULL DEFAULT '',
	collected_at    INTEGER NOT NULL,
	reboot_required INTEGER NOT NULL DEFAULT 0,
	reboot_packages TEXT,
	error           TEXT    NOT NULL DEFAULT ''
);

-- One row per package with an update pending. first_seen is when the
-- package was first seen needing an update, security_since when it first
-- needed a security update: both survive newer versions appearing.
CREATE TABLE endpoint_updates (
	endpoint_id     TEXT    NOT NULL REFERENCES endpoints(id),
	name            TEXT    NOT NULL,
	arch            TEXT    NOT NULL DEFAULT '',
	current_version TEXT    NOT NULL DEFAULT '',
	version         TEXT    NOT NULL,
	origin          TEXT    NOT NULL DEFAULT '',
	security        INTEGER NOT NULL DEFAULT 0,
	first_seen      INTEGER NOT NULL,
	security_since  INTEGER,
	PRIMARY KEY (endpoint_id, name, arch)
);
CREATE INDEX endpoint_updates_security ON endpoint_updates (security, name);

CREATE TABLE software_rules (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	list       TEXT    NOT NULL CHECK (list IN ('allow', 'deny')),
	pattern    TEXT    NOT NULL,
	reason     TEXT    NOT NULL DEFAULT '',
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (list, pattern)
);

-- Denied packages found on endpoints, each with its open SOC alert.
CREATE TABLE software_violations (
	endpoint_id TEXT    NOT NULL REFERENCES endpoints(id),
	package     TEXT    NOT NULL,
	version     TEXT    NOT NULL DEFAULT '',
	pattern     TEXT    NOT NULL,
	since       INTEGER NOT NULL,
	PRIMARY KEY (endpoint_id, package)
);
`

// Job statuses beyond the agent's own results (agentproto): a job is
// queued until the agent takes it, sent until its result arrives, and
// expired or canceled when it never ran.
const (
	JobQueued   = "queued"
	JobSent     = "sent"
	JobExpired  = "expired"
	JobCanceled = "canceled"
)

// JobFinal reports whether status is one no job leaves.
func JobFinal(status string) bool {
	switch status {
	case JobQueued, JobSent:
		return false
	}
	return true
}

// Job is an action queued for one endpoint's agent and, once it ran, its
// result.
type Job struct {
	ID         string            `json:"id"`
	EndpointID string            `json:"endpoint_id"`
	Hostname   string            `json:"hostname"`
	Action     string            `json:"action"`
	Args       map[string]string `json:"args,omitempty"`
	Packages   []string          `json:"packages,omitempty"`
	Status     string            `json:"status"`
	NotBefore  time.Time         `json:"not_before"`
	NotAfter   time.Time         `json:"not_after"`
	TimeoutMS  int64             `json:"timeout_ms"`
	Reason     string            `json:"reason,omitempty"`
	// Origin says what created the job ("api", "response" …) and
	// OriginRef which object of it (an approval, a playbook run).
	Origin     string     `json:"origin,omitempty"`
	OriginRef  string     `json:"origin_ref,omitempty"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Output     string     `json:"output,omitempty"`
	Error      string     `json:"error,omitempty"`
}

func jobTarget(id string) string { return "job:" + id }

const jobCols = `j.id, j.endpoint_id, e.hostname, j.action, j.args, j.packages, j.status, j.not_before, j.not_after, j.timeout_ms,
	j.reason, j.origin, j.origin_ref, j.created_by, j.created_at, j.sent_at, j.started_at, j.finished_at, j.exit_code, j.output, j.error`

const jobFrom = ` FROM jobs j JOIN endpoints e ON e.id = j.endpoint_id `

func scanJob(sc interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var args, pkgs sql.NullString
	var nb, na, created int64
	var sent, started, finished, exit sql.NullInt64
	err := sc.Scan(&j.ID, &j.EndpointID, &j.Hostname, &j.Action, &args, &pkgs, &j.Status, &nb, &na, &j.TimeoutMS,
		&j.Reason, &j.Origin, &j.OriginRef, &j.CreatedBy, &created, &sent, &started, &finished, &exit, &j.Output, &j.Error)
	if err != nil {
		return Job{}, err
	}
	if args.Valid {
		if err := json.Unmarshal([]byte(args.String), &j.Args); err != nil {
			return Job{}, fmt.Errorf("job %s args: %w", j.ID, err)
		}
	}
	if pkgs.Valid {
		if err := json.Unmarshal([]byte(pkgs.String), &j.Packages); err != nil {
			return Job{}, fmt.Errorf("job %s packages: %w", j.ID, err)
		}
	}
	j.NotBefore, j.NotAfter, j.CreatedAt = fromMS(nb), fromMS(na), fromMS(created)
	j.SentAt, j.StartedAt, j.FinishedAt = fromMSPtr(sent), fromMSPtr(started), fromMSPtr(finished)
	if exit.Valid {
		c := int(exit.Int64)
		j.ExitCode = &c
	}
	return j, nil
}

func queryJobs(ctx context.Context, q queryer, where string, args ...any) ([]Job, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+jobCols+jobFrom+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func getJob(ctx context.Context, q queryer, id string) (Job, error) {
	js, err := queryJobs(ctx, q, `WHERE j.id = ?`, id)
	if err != nil {
		return Job{}, fmt.Errorf("job %q: %w", id, err)
	}
	if len(js) == 0 {
		return Job{}, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	return js[0], nil
}

// CreateJobs stores jobs (validated by the caller) in one transaction,
// each audited as job.create: all or none are queued. Every endpoint must
// exist and not be revoked.
func (s *Store) CreateJobs(ctx context.Context, actor Actor, jobs []Job) ([]Job, error) {
	if len(jobs) == 0 {
		return nil, fmt.Errorf("create jobs: %w", invalid("endpoints", "at least one endpoint is required"))
	}
	out := make([]Job, 0, len(jobs))
	err := s.write(ctx, "job.create", func(tx *sql.Tx) error {
		for i, j := range jobs {
			e, err := endpointWhere(ctx, tx, `id = ?`, j.EndpointID)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("create jobs: %w", invalid(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("endpoint %q not found", j.EndpointID)))
			}
			if err != nil {
				return fmt.Errorf("create jobs: %w", err)
			}
			if e.RevokedAt != nil {
				return fmt.Errorf("create jobs: %w", invalid(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("endpoint %q is revoked", j.EndpointID)))
			}
			j.Hostname = e.Hostname
			j.Status = JobQueued
			j.CreatedBy = actor.Name
			j.NotBefore, j.NotAfter, j.CreatedAt = fromMS(ms(j.NotBefore)), fromMS(ms(j.NotAfter)), fromMS(ms(j.CreatedAt))
			args, err := jsonText(j.Args)
			if err != nil {
				return fmt.Errorf("create jobs: %w", err)
			}
			pkgs, err := jsonText(j.Packages)
			if err != nil {
				return fmt.Errorf("create jobs: %w", err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO jobs (id, endpoint_id, action, args, packages, status, not_before, not_after,
				timeout_ms, reason, origin, origin_ref, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				j.ID, j.EndpointID, j.Action, args, pkgs, j.Status, ms(j.NotBefore), ms(j.NotAfter), j.TimeoutMS,
				j.Reason, j.Origin, j.OriginRef, j.CreatedBy, ms(j.CreatedAt))
			if isUnique(err) {
				return fmt.Errorf("create job %s: %w", j.ID, ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("create jobs: %w", err)
			}
			if err := s.audit(ctx, tx, actor, "job.create", jobTarget(j.ID), nil, j); err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Job returns one job.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	return getJob(ctx, s.r, id)
}

// JobFilter selects jobs; empty fields match all.
type JobFilter struct {
	Endpoint  string
	Status    string
	Action    string
	Origin    string
	OriginRef string
	Limit     int // default 100, at most 1000
}

// Jobs lists matching jobs, newest first.
func (s *Store) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"j.endpoint_id", f.Endpoint}, {"j.status", f.Status}, {"j.action", f.Action},
		{"j.origin", f.Origin}, {"j.origin_ref", f.OriginRef}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, limit(f.Limit))
	js, err := queryJobs(ctx, s.r, where+` ORDER BY j.created_at DESC, j.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return js, nil
}

// ClaimJobs marks the endpoint's queued jobs whose window is open at now
// as sent and returns them, oldest first; they are then the agent's.
// Shell jobs are held back while shell is disabled for the endpoint.
func (s *Store) ClaimJobs(ctx context.Context, endpointID string, now time.Time) ([]Job, error) {
	var out []Job
	err := s.write(ctx, "job.claim", func(tx *sql.Tx) error {
		var err error
		// A shell job waits (and expires) while shell is disabled for the
		// endpoint: an admin switching it off stops queued ones too.
		out, err = queryJobs(ctx, tx, `WHERE j.endpoint_id = ? AND j.status = ? AND j.not_before <= ? AND j.not_after > ?
			AND (j.action != 'shell' OR EXISTS (SELECT 1 FROM endpoint_settings s WHERE s.endpoint_id = j.endpoint_id AND s.allow_shell = 1))
			ORDER BY j.created_at, j.id`, endpointID, JobQueued, ms(now), ms(now))
		if err != nil {
			return fmt.Errorf("claim jobs: %w", err)
		}
		t := fromMS(ms(now))
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, sent_at = ? WHERE id = ?`, JobSent, ms(t), out[i].ID); err != nil {
				return fmt.Errorf("claim jobs: %w", err)
			}
			out[i].Status, out[i].SentAt = JobSent, &t
		}
		return nil
	})
	return out, err
}

// NextJobAt is the earliest not_before after now of the endpoint's queued
// jobs (zero when none): a poll waiting for jobs wakes then.
func (s *Store) NextJobAt(ctx context.Context, endpointID string, now time.Time) (time.Time, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(not_before) FROM jobs WHERE endpoint_id = ? AND status = ? AND not_before > ?`,
		endpointID, JobQueued, ms(now)).Scan(&v)
	if err != nil {
		return time.Time{}, fmt.Errorf("next job: %w", err)
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromMS(v.Int64), nil
}

// JobOutcome is an agent's report of one job.
type JobOutcome struct {
	Status     string
	ExitCode   int
	Output     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// RecordJobResult stores the agent's result of one of its jobs, audited
// as job.result by the agent. A job that already has a result answers
// duplicate and is left as it is. A job the server had expired or
// canceled still takes the result: the agent ran it, and that is what
// happened.
func (s *Store) RecordJobResult(ctx context.Context, endpointID, jobID string, r JobOutcome) (j Job, duplicate bool, err error) {
	err = s.write(ctx, "job.result", func(tx *sql.Tx) error {
		before, err := getJob(ctx, tx, jobID)
		if err != nil {
			return err
		}
		if before.EndpointID != endpointID {
			// Not this agent's job: do not even confirm it exists.
			return fmt.Errorf("job %q: %w", jobID, ErrNotFound)
		}
		switch before.Status {
		case JobQueued, JobSent, JobExpired, JobCanceled:
		default:
			j, duplicate = before, true
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, exit_code = ?, output = ?, error = ?, started_at = ?, finished_at = ?,
			sent_at = coalesce(sent_at, ?) WHERE id = ?`, r.Status, r.ExitCode, r.Output, r.Error, ms(r.StartedAt), ms(r.FinishedAt),
			ms(r.FinishedAt), jobID); err != nil {
			return fmt.Errorf("record job result: %w", err)
		}
		j, err = getJob(ctx, tx, jobID)
		if err != nil {
			return err
		}
		after := j
		after.Output = "" // the output is in the job; the audit log records the outcome
		return s.audit(ctx, tx, Actor{Name: "agent:" + endpointID}, "job.result", jobTarget(jobID),
			map[string]string{"status": before.Status}, after)
	})
	return j, duplicate, err
}

// CancelJob cancels a queued job. A job already sent to its agent or
// finished cannot be canceled (ErrConflict).
func (s *Store) CancelJob(ctx context.Context, actor Actor, id string, now time.Time) (Job, error) {
	var j Job
	err := s.write(ctx, "job.cancel", func(tx *sql.Tx) error {
		before, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.Status != JobQueued {
			return fmt.Errorf("job %s is %s, only a queued job can be canceled: %w", id, before.Status, ErrConflict)
		}
		t := fromMS(ms(now))
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?`,
			JobCanceled, ms(t), "canceled by "+actor.Name, id); err != nil {
			return fmt.Errorf("cancel job: %w", err)
		}
		j = before
		j.Status, j.FinishedAt, j.Error = JobCanceled, &t, "canceled by "+actor.Name
		return s.audit(ctx, tx, actor, "job.cancel", jobTarget(id), before, j)
	})
	return j, err
}

// ExpireJobs ends jobs that can no longer run: queued ones whose window
// closed, and sent ones with no result by their window's end plus their
// timeout plus grace. It returns them.
func (s *Store) ExpireJobs(ctx context.Context, now time.Time, grace time.Duration) ([]Job, error) {
	var out []Job
	err := s.write(ctx, "job.expire", func(tx *sql.Tx) error {
		var err error
		out, err = queryJobs(ctx, tx, `WHERE (j.status = ? AND j.not_after <= ?) OR (j.status = ? AND j.not_after + j.timeout_ms + ? <= ?)`,
			JobQueued, ms(now), JobSent, grace.Milliseconds(), ms(now))
		if err != nil {
			return fmt.Errorf("expire jobs: %w", err)
		}
		t := fromMS(ms(now))
		for i, j := range out {
			msg := "not delivered before not_after"
			if j.Status == JobSent {
				msg = "no result from the agent"
			}
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?`, JobExpired, ms(t), msg, j.ID); err != nil {
				return fmt.Errorf("expire jobs: %w", err)
			}
			out[i].Status, out[i].FinishedAt, out[i].Error = JobExpired, &t, msg
			if err := s.audit(ctx, tx, Actor{Name: "system"}, "job.expire", jobTarget(j.ID), map[string]string{"status": j.Status}, out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// EndpointSettings are an endpoint's admin-controlled switches.
type EndpointSettings struct {
	EndpointID string    `json:"endpoint_id"`
	AllowShell bool      `json:"allow_shell"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// EndpointSettings returns an endpoint's settings (defaults when never
// set).
func (s *Store) EndpointSettings(ctx context.Context, id string) (EndpointSettings, error) {
	if _, err := endpointWhere(ctx, s.r, `id = ?`, id); err != nil {
		return EndpointSettings{}, fmt.Errorf("endpoint %q: %w", id, err)
	}
	st := EndpointSettings{EndpointID: id}
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT allow_shell, updated_by, updated_at FROM endpoint_settings WHERE endpoint_id = ?`, id).
		Scan(&st.AllowShell, &st.UpdatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return EndpointSettings{}, fmt.Errorf("endpoint settings: %w", err)
	}
	st.UpdatedAt = fromMS(at)
	return st, nil
}

// SetEndpointSettings replaces an endpoint's settings, audited.
func (s *Store) SetEndpointSettings(ctx context.Context, actor Actor, st EndpointSettings) (EndpointSettings, error) {
	err := s.write(ctx, "endpoint.settings", func(tx *sql.Tx) error {
		if _, err := endpointWhere(ctx, tx, `id = ?`, st.EndpointID); err != nil {
			return fmt.Errorf("endpoint %q: %w", st.EndpointID, err)
		}
		before := EndpointSettings{EndpointID: st.EndpointID}
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT allow_shell, updated_by, updated_at FROM endpoint_settings WHERE endpoint_id = ?`, st.EndpointID).
			Scan(&before.AllowShell, &before.UpdatedBy, &at)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("endpoint settings: %w", err)
		}
		before.UpdatedAt = fromMS(at)
		st.UpdatedBy, st.UpdatedAt = actor.Name, fromMS(ms(s.now()))
		if _, err := tx.ExecContext(ctx, `INSERT INTO endpoint_settings (endpoint_id, allow_shell, updated_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (endpoint_id) DO UPDATE SET allow_shell = excluded.allow_shell, updated_by = excluded.updated_by,
			updated_at = excluded.updated_at`, st.EndpointID, st.AllowShell, st.UpdatedBy, ms(st.UpdatedAt)); err != nil {
			return fmt.Errorf("endpoint settings: %w", err)
		}
		return s.audit(ctx, tx, actor, "endpoint.settings", endpointTarget(st.EndpointID), before, st)
	})
	return st, err
}

// PendingUpdate is a package update pending on an endpoint.
type PendingUpdate struct {
	EndpointID     string     `json:"endpoint_id,omitempty"`
	Hostname       string     `json:"hostname,omitempty"`
	Name           string     `json:"name"`
	Arch           string     `json:"arch,omitempty"`
	CurrentVersion string     `json:"current_version,omitempty"`
	Version        string     `json:"version"`
	Origin         string     `json:"origin,omitempty"`
	Security       bool       `json:"security"`
	FirstSeen      time.Time  `json:"first_seen"`
	SecuritySince  *time.Time `json:"security_since,omitempty"`
}

// UpdateState is what an endpoint last reported about its updates.
type UpdateState struct {
	EndpointID     string    `json:"endpoint_id"`
	Manager        string    `json:"manager,omitempty"`
	CollectedAt    time.Time `json:"collected_at"`
	RebootRequired bool      `json:"reboot_required"`
	RebootPackages []string  `json:"reboot_packages,omitempty"`
	Error          string    `json:"error,omitempty"`
}

// ReplaceUpdates replaces an endpoint's pending updates with the ones it
// just reported, keeping the first-seen times of those still pending. A
// report older than the stored one is ignored (a late replay). A report
// with an error keeps the previous list.
func (s *Store) ReplaceUpdates(ctx context.Context, st UpdateState, pending []PendingUpdate, now time.Time) error {
	return s.write(ctx, "endpoint.updates", func(tx *sql.Tx) error {
		var prevAt sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT collected_at FROM endpoint_update_state WHERE endpoint_id = ?`, st.EndpointID).Scan(&prevAt)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("replace updates: %w", err)
		}
		if prevAt.Valid && ms(st.CollectedAt) < prevAt.Int64 {
			return nil
		}
		rp, err := jsonText(st.RebootPackages)
		if err != nil {
			return fmt.Errorf("replace updates: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO endpoint_update_state (endpoint_id, manager, collected_at, reboot_required, reboot_packages, error)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id) DO UPDATE SET manager = excluded.manager, collected_at = excluded.collected_at,
			reboot_required = excluded.reboot_required, reboot_packages = excluded.reboot_packages, error = excluded.error`,
			st.EndpointID, st.Manager, ms(st.CollectedAt), st.RebootRequired, rp, st.Error); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("endpoint %q: %w", st.EndpointID, ErrNotFound)
			}
			return fmt.Errorf("replace updates: %w", err)
		}
		if st.Error != "" {
			return nil
		}
		type seen struct {
			first int64
			sec   sql.NullInt64
		}
		prev := map[string]seen{}
		rows, err := tx.QueryContext(ctx, `SELECT name, arch, first_seen, security_since FROM endpoint_updates WHERE endpoint_id = ?`, st.EndpointID)
		if err != nil {
			return fmt.Errorf("replace updates: %w", err)
		}
		for rows.Next() {
			var n, a string
			var v seen
			if err := rows.Scan(&n, &a, &v.first, &v.sec); err != nil {
				rows.Close()
				return fmt.Errorf("replace updates: %w", err)
			}
			prev[n+"\x00"+a] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("replace updates: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM endpoint_updates WHERE endpoint_id = ?`, st.EndpointID); err != nil {
			return fmt.Errorf("replace updates: %w", err)
		}
		at := ms(now)
		for _, p := range pending {
			v, ok := prev[p.Name+"\x00"+p.Arch]
			if !ok {
				v.first = at
			}
			if !p.Security {
				v.sec = sql.NullInt64{}
			} else if !v.sec.Valid {
				v.sec = sql.NullInt64{Int64: at, Valid: true}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO endpoint_updates (endpoint_id, name, arch, current_version, version, origin, security,
				first_seen, security_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				st.EndpointID, p.Name, p.Arch, p.CurrentVersion, p.Version, p.Origin, p.Security, v.first, v.sec); err != nil {
				return fmt.Errorf("replace updates: %w", err)
			}
		}
		return nil
	})
}

// EndpointUpdates returns an endpoint's update state (nil when it never
// reported) and its pending updates, security first.
func (s *Store) EndpointUpdates(ctx context.Context, id string) (*UpdateState, []PendingUpdate, error) {
	if _, err := endpointWhere(ctx, s.r, `id = ?`, id); err != nil {
		return nil, nil, fmt.Errorf("endpoint %q: %w", id, err)
	}
	st := UpdateState{EndpointID: id}
	var at int64
	var rp sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT manager, collected_at, reboot_required, reboot_packages, error FROM endpoint_update_state
		WHERE endpoint_id = ?`, id).Scan(&st.Manager, &at, &st.RebootRequired, &rp, &st.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("endpoint updates: %w", err)
	}
	st.CollectedAt = fromMS(at)
	if rp.Valid {
		_ = json.Unmarshal([]byte(rp.String), &st.RebootPackages)
	}
	ups, err := s.pendingUpdates(ctx, `WHERE u.endpoint_id = ? ORDER BY u.security DESC, u.name, u.arch`, id)
	if err != nil {
		return nil, nil, err
	}
	return &st, ups, nil
}

func (s *Store) pendingUpdates(ctx context.Context, where string, args ...any) ([]PendingUpdate, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.endpoint_id, e.hostname, u.name, u.arch, u.current_version, u.version, u.origin, u.security,
		u.first_seen, u.security_since FROM endpoint_updates u JOIN endpoints e ON e.id = u.endpoint_id `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("pending updates: %w", err)
	}
	defer rows.Close()
	var out []PendingUpdate
	for rows.Next() {
		var p PendingUpdate
		var first int64
		var sec sql.NullInt64
		if err := rows.Scan(&p.EndpointID, &p.Hostname, &p.Name, &p.Arch, &p.CurrentVersion, &p.Version, &p.Origin, &p.Security, &first, &sec); err != nil {
			return nil, fmt.Errorf("pending updates: %w", err)
		}
		p.FirstSeen, p.SecuritySince = fromMS(first), fromMSPtr(sec)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PendingSecurityUpdates lists the security updates pending on live
// (unrevoked) endpoints, by package then hostname.
func (s *Store) PendingSecurityUpdates(ctx context.Context) ([]PendingUpdate, error) {
	return s.pendingUpdates(ctx, `WHERE u.security = 1 AND e.revoked_at IS NULL ORDER BY u.name, u.arch, e.hostname, e.id`)
}

// PatchCompliance counts live endpoints: total, those that reported their
// updates, and those of them with a security update pending since before
// cutoff.
func (s *Store) PatchCompliance(ctx context.Context, cutoff time.Time) (total, reporting, late int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM endpoints WHERE revoked_at IS NULL),
		(SELECT count(*) FROM endpoint_update_state s JOIN endpoints e ON e.id = s.endpoint_id WHERE e.revoked_at IS NULL),
		(SELECT count(DISTINCT u.endpoint_id) FROM endpoint_updates u JOIN endpoints e ON e.id = u.endpoint_id
			WHERE e.revoked_at IS NULL AND u.security = 1 AND u.security_since < ?)`, ms(cutoff)).Scan(&total, &reporting, &late)
	if err != nil {
		err = fmt.Errorf("patch compliance: %w", err)
	}
	return
}

// Software lists.
const (
	SoftwareAllow = "allow"
	SoftwareDeny  = "deny"
)

// SoftwareRule is an entry of the software allow or deny list. Pattern is
// a package name or a shell-style glob (path.Match) over names.
type SoftwareRule struct {
	ID        int64     `json:"id"`
	List      string    `json:"list"`
	Pattern   string    `json:"pattern"`
	Reason    string    `json:"reason,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func softwareRuleTarget(id int64) string { return fmt.Sprintf("software_rule:%d", id) }

func validSoftwareRule(r SoftwareRule) error {
	switch {
	case r.List != SoftwareAllow && r.List != SoftwareDeny:
		return invalid("list", fmt.Sprintf("must be allow or deny (got %q)", r.List))
	case strings.TrimSpace(r.Pattern) == "" || len(r.Pattern) > 200:
		return invalid("pattern", "must be 1-200 characters")
	case len(r.Reason) > 1000:
		return invalid("reason", "at most 1000 characters")
	}
	return nil
}

func scanSoftwareRule(sc interface{ Scan(...any) error }) (SoftwareRule, error) {
	var r SoftwareRule
	var c, u int64
	if err := sc.Scan(&r.ID, &r.List, &r.Pattern, &r.Reason, &r.CreatedBy, &c, &u); err != nil {
		return SoftwareRule{}, err
	}
	r.CreatedAt, r.UpdatedAt = fromMS(c), fromMS(u)
	return r, nil
}

const softwareRuleCols = `id, list, pattern, reason, created_by, created_at, updated_at`

func getSoftwareRule(ctx context.Context, q queryer, id int64) (SoftwareRule, error) {
	r, err := scanSoftwareRule(q.QueryRowContext(ctx, `SELECT `+softwareRuleCols+` FROM software_rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return SoftwareRule{}, fmt.Errorf("software rule %d: %w", id, ErrNotFound)
	}
	return r, err
}

// SoftwareRules lists the allow and deny lists.
func (s *Store) SoftwareRules(ctx context.Context) ([]SoftwareRule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+softwareRuleCols+` FROM software_rules ORDER BY list, pattern`)
	if err != nil {
		return nil, fmt.Errorf("software rules: %w", err)
	}
	defer rows.Close()
	var out []SoftwareRule
	for rows.Next() {
		r, err := scanSoftwareRule(rows)
		if err != nil {
			return nil, fmt.Errorf("software rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SoftwareRule returns one rule.
func (s *Store) SoftwareRule(ctx context.Context, id int64) (SoftwareRule, error) {
	return getSoftwareRule(ctx, s.r, id)
}

// CreateSoftwareRule adds a rule, audited. A duplicate (list, pattern) is
// ErrConflict.
func (s *Store) CreateSoftwareRule(ctx context.Context, actor Actor, r SoftwareRule) (SoftwareRule, error) {
	if err := validSoftwareRule(r); err != nil {
		return SoftwareRule{}, fmt.Errorf("create software rule: %w", err)
	}
	now := fromMS(ms(s.now()))
	r.CreatedBy, r.CreatedAt, r.UpdatedAt = actor.Name, now, now
	err := s.write(ctx, "software_rule.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO software_rules (list, pattern, reason, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, r.List, r.Pattern, r.Reason, r.CreatedBy, ms(now), ms(now)).Scan(&r.ID)
		if isUnique(err) {
			return fmt.Errorf("the %s list already has %q: %w", r.List, r.Pattern, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create software rule: %w", err)
		}
		return s.audit(ctx, tx, actor, "software_rule.create", softwareRuleTarget(r.ID), nil, r)
	})
	if err != nil {
		return SoftwareRule{}, err
	}
	return r, nil
}

// UpdateSoftwareRule changes a rule's list, pattern and reason, audited.
func (s *Store) UpdateSoftwareRule(ctx context.Context, actor Actor, r SoftwareRule) (SoftwareRule, error) {
	if err := validSoftwareRule(r); err != nil {
		return SoftwareRule{}, fmt.Errorf("update software rule: %w", err)
	}
	var out SoftwareRule
	err := s.write(ctx, "software_rule.update", func(tx *sql.Tx) error {
		before, err := getSoftwareRule(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		out = before
		out.List, out.Pattern, out.Reason, out.UpdatedAt = r.List, r.Pattern, r.Reason, fromMS(ms(s.now()))
		_, err = tx.ExecContext(ctx, `UPDATE software_rules SET list = ?, pattern = ?, reason = ?, updated_at = ? WHERE id = ?`,
			out.List, out.Pattern, out.Reason, ms(out.UpdatedAt), r.ID)
		if isUnique(err) {
			return fmt.Errorf("the %s list already has %q: %w", r.List, r.Pattern, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update software rule: %w", err)
		}
		return s.audit(ctx, tx, actor, "software_rule.update", softwareRuleTarget(r.ID), before, out)
	})
	return out, err
}

// DeleteSoftwareRule removes a rule, audited.
func (s *Store) DeleteSoftwareRule(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "software_rule.delete", func(tx *sql.Tx) error {
		before, err := getSoftwareRule(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM software_rules WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete software rule: %w", err)
		}
		return s.audit(ctx, tx, actor, "software_rule.delete", softwareRuleTarget(id), before, nil)
	})
}

// SoftwareViolation is a denied package found on an endpoint.
type SoftwareViolation struct {
	EndpointID string    `json:"endpoint_id"`
	Package    string    `json:"package"`
	Version    string    `json:"version,omitempty"`
	Pattern    string    `json:"pattern"`
	Since      time.Time `json:"since"`
}

// SoftwareViolations lists the open violations, of one endpoint when
// endpointID is not empty.
func (s *Store) SoftwareViolations(ctx context.Context, endpointID string) ([]SoftwareViolation, error) {
	q := `SELECT endpoint_id, package, version, pattern, since FROM software_violations`
	var args []any
	if endpointID != "" {
		q += ` WHERE endpoint_id = ?`
		args = append(args, endpointID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY endpoint_id, package`, args...)
	if err != nil {
		return nil, fmt.Errorf("software violations: %w", err)
	}
	defer rows.Close()
	var out []SoftwareViolation
	for rows.Next() {
		var v SoftwareViolation
		var since int64
		if err := rows.Scan(&v.EndpointID, &v.Package, &v.Version, &v.Pattern, &since); err != nil {
			return nil, fmt.Errorf("software violations: %w", err)
		}
		v.Since = fromMS(since)
		out = append(out, v)
	}
	return out, rows.Err()
}

// ReplaceSoftwareViolations makes cur the endpoint's open violations and
// returns those that are new and those that are gone.
func (s *Store) ReplaceSoftwareViolations(ctx context.Context, endpointID string, cur []SoftwareViolation, now time.Time) (added, removed []SoftwareViolation, err error) {
	err = s.write(ctx, "software.violations", func(tx *sql.Tx) error {
		added, removed = nil, nil
		rows, err := tx.QueryContext(ctx, `SELECT package, version, pattern, since FROM software_violations WHERE endpoint_id = ?`, endpointID)
		if err != nil {
			return fmt.Errorf("software violations: %w", err)
		}
		prev := map[string]SoftwareViolation{}
		for rows.Next() {
			v := SoftwareViolation{EndpointID: endpointID}
			var since int64
			if err := rows.Scan(&v.Package, &v.Version, &v.Pattern, &since); err != nil {
				rows.Close()
				return fmt.Errorf("software violations: %w", err)
			}
			v.Since = fromMS(since)
			prev[v.Package] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("software violations: %w", err)
		}
		seen := map[string]bool{}
		for _, v := range cur {
			if seen[v.Package] {
				continue
			}
			seen[v.Package] = true
			if _, ok := prev[v.Package]; ok {
				continue
			}
			v.EndpointID, v.Since = endpointID, fromMS(ms(now))
			if _, err := tx.ExecContext(ctx, `INSERT INTO software_violations (endpoint_id, package, version, pattern, since) VALUES (?, ?, ?, ?, ?)`,
				endpointID, v.Package, v.Version, v.Pattern, ms(v.Since)); err != nil {
				return fmt.Errorf("software violations: %w", err)
			}
			added = append(added, v)
		}
		for p, v := range prev {
			if seen[p] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM software_violations WHERE endpoint_id = ? AND package = ?`, endpointID, p); err != nil {
				return fmt.Errorf("software violations: %w", err)
			}
			removed = append(removed, v)
		}
		return nil
	})
	return added, removed, err
}
