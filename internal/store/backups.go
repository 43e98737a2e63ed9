package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/check"
)

// backupsSchema is this file's migration (migrations.go): backup jobs and
// their runs, the last known state of files watched by file integrity
// monitoring, and the fingerprints of mail posture checks.
const backupsSchema = `
CREATE TABLE backup_jobs (
	id              INTEGER PRIMARY KEY,
	name            TEXT    NOT NULL,
	endpoint_id     TEXT    NOT NULL REFERENCES endpoints (id),
	schedule        TEXT    NOT NULL,
	timezone        TEXT    NOT NULL DEFAULT '',
	grace_ms        INTEGER NOT NULL,
	min_duration_ms INTEGER NOT NULL DEFAULT 0,
	min_bytes       INTEGER NOT NULL DEFAULT 0,
	max_size_drop   REAL    NOT NULL DEFAULT 0,
	severity        TEXT    NOT NULL DEFAULT 'high',
	missed_since    INTEGER,
	created_by      TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX backup_jobs_endpoint_name ON backup_jobs (endpoint_id, name);
CREATE TABLE backup_runs (
	id           INTEGER PRIMARY KEY,
	run_id       TEXT    NOT NULL UNIQUE,
	endpoint_id  TEXT    NOT NULL,
	job          TEXT    NOT NULL,
	command      TEXT    NOT NULL DEFAULT '',
	started_at   INTEGER NOT NULL,
	ended_at     INTEGER NOT NULL,
	exit_code    INTEGER NOT NULL,
	duration_ms  INTEGER NOT NULL,
	bytes        INTEGER NOT NULL,
	bytes_source TEXT    NOT NULL,
	output_tail  TEXT    NOT NULL DEFAULT '',
	truncated    INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	problems     TEXT    NOT NULL DEFAULT '',
	received_at  INTEGER NOT NULL
);
CREATE INDEX backup_runs_job ON backup_runs (endpoint_id, job, started_at);
CREATE TABLE fim_files (
	endpoint_id TEXT    NOT NULL,
	path        TEXT    NOT NULL,
	present     INTEGER NOT NULL,
	sha256      TEXT    NOT NULL DEFAULT '',
	size        INTEGER NOT NULL DEFAULT 0,
	mode        INTEGER NOT NULL DEFAULT 0,
	uid         INTEGER NOT NULL DEFAULT 0,
	gid         INTEGER NOT NULL DEFAULT 0,
	mtime       INTEGER,
	error       TEXT    NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (endpoint_id, path)
) WITHOUT ROWID;
CREATE TABLE mail_posture (
	check_name  TEXT    PRIMARY KEY,
	fingerprint TEXT    NOT NULL,
	records     TEXT    NOT NULL,
	seen_at     INTEGER NOT NULL,
	changed_at  INTEGER NOT NULL
);`

// BackupJob is what an operator expects of a wrapped backup command
// (`nocsoc agent run --job Name`) on one endpoint: a successful run by
// every occurrence of Schedule plus Grace, lasting at least MinDuration,
// at least MinBytes big and not smaller than the previous successful run
// by more than MaxSizeDrop (a fraction, 0.5 = half). Zero disables a
// bound. Schedule and TimeZone are validated by the caller (package cron).
type BackupJob struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	EndpointID  string         `json:"endpoint_id"`
	Schedule    string         `json:"schedule"`
	TimeZone    string         `json:"timezone,omitempty"`
	Grace       check.Duration `json:"grace"`
	MinDuration check.Duration `json:"min_duration,omitempty"`
	MinBytes    int64          `json:"min_bytes,omitempty"`
	MaxSizeDrop float64        `json:"max_size_drop,omitempty"`
	Severity    string         `json:"severity"`
	// MissedSince is set while the job's missed alert is firing: the
	// occurrence that passed without a successful run.
	MissedSince *time.Time `json:"missed_since,omitempty"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// BackupRun is a stored run report.
type BackupRun struct {
	ID         int64  `json:"id"`
	EndpointID string `json:"endpoint_id"`
	agentproto.BackupRun
	// Problems lists what was wrong with the run (failed, too_short,
	// too_small, size_drop), empty for a good run.
	Problems   []string  `json:"problems"`
	ReceivedAt time.Time `json:"received_at"`
}

// OK reports whether the run exited 0 with no problem found.
func (r BackupRun) OK() bool { return r.ExitCode == 0 && len(r.Problems) == 0 }

func backupJobTarget(id int64) string { return "backup_job:" + strconv.FormatInt(id, 10) }

func validateBackupJob(j BackupJob) error {
	switch {
	case strings.TrimSpace(j.Name) == "" || len(j.Name) > agentproto.MaxJobName:
		return invalid("name", fmt.Sprintf("must be 1-%d characters", agentproto.MaxJobName))
	case j.EndpointID == "":
		return invalid("endpoint_id", "is required")
	case strings.TrimSpace(j.Schedule) == "":
		return invalid("schedule", "is required")
	case j.Grace < 0:
		return invalid("grace", "must not be negative")
	case j.MinDuration < 0:
		return invalid("min_duration", "must not be negative")
	case j.MinBytes < 0:
		return invalid("min_bytes", "must not be negative")
	case j.MaxSizeDrop < 0 || j.MaxSizeDrop >= 1:
		return invalid("max_size_drop", fmt.Sprintf("must be a fraction from 0 (off) to below 1 (got %g)", j.MaxSizeDrop))
	case j.Severity == "":
		return invalid("severity", "is required")
	}
	return nil
}

const backupJobCols = `id, name, endpoint_id, schedule, timezone, grace_ms, min_duration_ms, min_bytes, max_size_drop,
	severity, missed_since, created_by, created_at, updated_at`

func scanBackupJob(sc interface{ Scan(...any) error }) (BackupJob, error) {
	var j BackupJob
	var grace, minDur, created, updated int64
	var missed sql.NullInt64
	err := sc.Scan(&j.ID, &j.Name, &j.EndpointID, &j.Schedule, &j.TimeZone, &grace, &minDur, &j.MinBytes, &j.MaxSizeDrop,
		&j.Severity, &missed, &j.CreatedBy, &created, &updated)
	if err != nil {
		return BackupJob{}, err
	}
	j.Grace = check.Duration(time.Duration(grace) * time.Millisecond)
	j.MinDuration = check.Duration(time.Duration(minDur) * time.Millisecond)
	j.MissedSince = fromMSPtr(missed)
	j.CreatedAt, j.UpdatedAt = fromMS(created), fromMS(updated)
	return j, nil
}

func backupJobConflict(err error, j BackupJob) error {
	if isUnique(err) {
		return fmt.Errorf("backup job %q already exists on endpoint %s: %w", j.Name, j.EndpointID, ErrConflict)
	}
	if isForeignKey(err) {
		return invalid("endpoint_id", fmt.Sprintf("endpoint %q does not exist", j.EndpointID))
	}
	return err
}

// CreateBackupJob stores a new job (audited) and returns it with its ID.
func (s *Store) CreateBackupJob(ctx context.Context, actor Actor, j BackupJob) (BackupJob, error) {
	if err := validateBackupJob(j); err != nil {
		return BackupJob{}, fmt.Errorf("create backup job: %w", err)
	}
	now := fromMS(ms(s.now()))
	j.CreatedBy, j.CreatedAt, j.UpdatedAt, j.MissedSince = actor.Name, now, now, nil
	err := s.write(ctx, "backup_job.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO backup_jobs (name, endpoint_id, schedule, timezone, grace_ms, min_duration_ms,
			min_bytes, max_size_drop, severity, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			j.Name, j.EndpointID, j.Schedule, j.TimeZone, j.Grace.D().Milliseconds(), j.MinDuration.D().Milliseconds(),
			j.MinBytes, j.MaxSizeDrop, j.Severity, j.CreatedBy, ms(j.CreatedAt), ms(j.UpdatedAt)).Scan(&j.ID)
		if err != nil {
			return fmt.Errorf("create backup job: %w", backupJobConflict(err, j))
		}
		return s.audit(ctx, tx, actor, "backup_job.create", backupJobTarget(j.ID), nil, j)
	})
	if err != nil {
		return BackupJob{}, err
	}
	return j, nil
}

// UpdateBackupJob replaces a job's settings (audited with before and
// after). The missed state is cleared: the new schedule starts afresh.
func (s *Store) UpdateBackupJob(ctx context.Context, actor Actor, j BackupJob) (BackupJob, error) {
	if err := validateBackupJob(j); err != nil {
		return BackupJob{}, fmt.Errorf("update backup job: %w", err)
	}
	var out BackupJob
	err := s.write(ctx, "backup_job.update", func(tx *sql.Tx) error {
		before, err := backupJob(ctx, tx, j.ID)
		if err != nil {
			return err
		}
		out = j
		out.CreatedBy, out.CreatedAt, out.UpdatedAt, out.MissedSince = before.CreatedBy, before.CreatedAt, fromMS(ms(s.now())), nil
		_, err = tx.ExecContext(ctx, `UPDATE backup_jobs SET name = ?, endpoint_id = ?, schedule = ?, timezone = ?, grace_ms = ?,
			min_duration_ms = ?, min_bytes = ?, max_size_drop = ?, severity = ?, missed_since = NULL, updated_at = ? WHERE id = ?`,
			out.Name, out.EndpointID, out.Schedule, out.TimeZone, out.Grace.D().Milliseconds(), out.MinDuration.D().Milliseconds(),
			out.MinBytes, out.MaxSizeDrop, out.Severity, ms(out.UpdatedAt), out.ID)
		if err != nil {
			return fmt.Errorf("update backup job %d: %w", j.ID, backupJobConflict(err, j))
		}
		return s.audit(ctx, tx, actor, "backup_job.update", backupJobTarget(j.ID), before, out)
	})
	if err != nil {
		return BackupJob{}, err
	}
	return out, nil
}

// DeleteBackupJob removes a job (audited) and returns what it was. Its
// runs are kept: they are the endpoint's history.
func (s *Store) DeleteBackupJob(ctx context.Context, actor Actor, id int64) (BackupJob, error) {
	var before BackupJob
	err := s.write(ctx, "backup_job.delete", func(tx *sql.Tx) error {
		var err error
		if before, err = backupJob(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM backup_jobs WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete backup job %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "backup_job.delete", backupJobTarget(id), before, nil)
	})
	return before, err
}

func backupJob(ctx context.Context, q queryer, id int64) (BackupJob, error) {
	j, err := scanBackupJob(q.QueryRowContext(ctx, `SELECT `+backupJobCols+` FROM backup_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return BackupJob{}, fmt.Errorf("backup job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return BackupJob{}, fmt.Errorf("backup job %d: %w", id, err)
	}
	return j, nil
}

// BackupJob returns one job.
func (s *Store) BackupJob(ctx context.Context, id int64) (BackupJob, error) {
	return backupJob(ctx, s.r, id)
}

// BackupJobByName returns the job name on an endpoint.
func (s *Store) BackupJobByName(ctx context.Context, endpointID, name string) (BackupJob, error) {
	j, err := scanBackupJob(s.r.QueryRowContext(ctx, `SELECT `+backupJobCols+` FROM backup_jobs WHERE endpoint_id = ? AND name = ?`,
		endpointID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return BackupJob{}, fmt.Errorf("backup job %q on %s: %w", name, endpointID, ErrNotFound)
	}
	if err != nil {
		return BackupJob{}, fmt.Errorf("backup job %q on %s: %w", name, endpointID, err)
	}
	return j, nil
}

// BackupJobs lists every job, by name then endpoint.
func (s *Store) BackupJobs(ctx context.Context) ([]BackupJob, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+backupJobCols+` FROM backup_jobs ORDER BY name, endpoint_id`)
	if err != nil {
		return nil, fmt.Errorf("list backup jobs: %w", err)
	}
	defer rows.Close()
	var out []BackupJob
	for rows.Next() {
		j, err := scanBackupJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list backup jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// SetBackupMissed records (or, with nil, clears) the occurrence a job
// missed. It is the evaluator's state, not an operator change: not
// audited.
func (s *Store) SetBackupMissed(ctx context.Context, id int64, since *time.Time) error {
	return s.write(ctx, "backup_job.missed", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE backup_jobs SET missed_since = ? WHERE id = ?`, msPtr(since), id); err != nil {
			return fmt.Errorf("set backup job %d missed: %w", id, err)
		}
		return nil
	})
}

// InsertBackupRun stores a run once: a run id already stored (a replayed
// batch) is skipped and inserted is false.
func (s *Store) InsertBackupRun(ctx context.Context, r BackupRun) (inserted bool, err error) {
	switch {
	case r.RunID == "":
		return false, fmt.Errorf("insert backup run: %w", invalid("run_id", "is required"))
	case r.EndpointID == "" || r.Job == "":
		return false, fmt.Errorf("insert backup run: %w", invalid("job", "endpoint and job are required"))
	}
	err = s.write(ctx, "backup_run.insert", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO backup_runs (run_id, endpoint_id, job, command, started_at, ended_at, exit_code,
			duration_ms, bytes, bytes_source, output_tail, truncated, error, problems, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING`,
			r.RunID, r.EndpointID, r.Job, r.Command, ms(r.StartedAt), ms(r.EndedAt), r.ExitCode, r.DurationMS, r.Bytes,
			r.BytesSource, r.OutputTail, r.Truncated, r.Error, strings.Join(r.Problems, ","), ms(r.ReceivedAt))
		if err != nil {
			return fmt.Errorf("insert backup run: %w", err)
		}
		n, _ := res.RowsAffected()
		inserted = n == 1
		return nil
	})
	return inserted, err
}

const backupRunCols = `id, run_id, endpoint_id, job, command, started_at, ended_at, exit_code, duration_ms, bytes, bytes_source,
	output_tail, truncated, error, problems, received_at`

func scanBackupRun(sc interface{ Scan(...any) error }) (BackupRun, error) {
	var r BackupRun
	var started, ended, received int64
	var problems string
	err := sc.Scan(&r.ID, &r.RunID, &r.EndpointID, &r.Job, &r.Command, &started, &ended, &r.ExitCode, &r.DurationMS, &r.Bytes,
		&r.BytesSource, &r.OutputTail, &r.Truncated, &r.Error, &problems, &received)
	if err != nil {
		return BackupRun{}, err
	}
	r.StartedAt, r.EndedAt, r.ReceivedAt = fromMS(started), fromMS(ended), fromMS(received)
	r.Problems = []string{}
	if problems != "" {
		r.Problems = strings.Split(problems, ",")
	}
	return r, nil
}

// BackupRunFilter selects runs of one job on one endpoint.
type BackupRunFilter struct {
	EndpointID, Job string
	// Succeeded keeps runs that exited 0 only.
	Succeeded bool
	// Before keeps runs started before it (zero: no bound).
	Before time.Time
	// ExcludeRunID leaves one run out (the one being judged).
	ExcludeRunID string
	Limit        int // default 100, at most 1000
}

// BackupRuns returns matching runs, newest start first.
func (s *Store) BackupRuns(ctx context.Context, f BackupRunFilter) ([]BackupRun, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	q := `SELECT ` + backupRunCols + ` FROM backup_runs WHERE endpoint_id = ? AND job = ?`
	args := []any{f.EndpointID, f.Job}
	if f.Succeeded {
		q += ` AND exit_code = 0`
	}
	if !f.Before.IsZero() {
		q += ` AND started_at < ?`
		args = append(args, ms(f.Before))
	}
	if f.ExcludeRunID != "" {
		q += ` AND run_id != ?`
		args = append(args, f.ExcludeRunID)
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list backup runs: %w", err)
	}
	defer rows.Close()
	var out []BackupRun
	for rows.Next() {
		r, err := scanBackupRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list backup runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FileStates returns the last known state of every watched file of an
// endpoint, by path. An empty map means no baseline yet.
func (s *Store) FileStates(ctx context.Context, endpointID string) (map[string]agentproto.FileState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT path, present, sha256, size, mode, uid, gid, mtime, error
		FROM fim_files WHERE endpoint_id = ?`, endpointID)
	if err != nil {
		return nil, fmt.Errorf("file states of %s: %w", endpointID, err)
	}
	defer rows.Close()
	out := map[string]agentproto.FileState{}
	for rows.Next() {
		var f agentproto.FileState
		var mtime sql.NullInt64
		if err := rows.Scan(&f.Path, &f.Exists, &f.SHA256, &f.Size, &f.Mode, &f.UID, &f.GID, &mtime, &f.Error); err != nil {
			return nil, fmt.Errorf("file states of %s: %w", endpointID, err)
		}
		if mtime.Valid {
			f.MTime = fromMS(mtime.Int64)
		}
		out[f.Path] = f
	}
	return out, rows.Err()
}

// SaveFileStates records the given files' states for an endpoint in one
// transaction.
func (s *Store) SaveFileStates(ctx context.Context, endpointID string, files []agentproto.FileState, at time.Time) error {
	return s.write(ctx, "fim.save", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO fim_files (endpoint_id, path, present, sha256, size, mode, uid, gid, mtime, error, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (endpoint_id, path) DO UPDATE SET present = excluded.present, sha256 = excluded.sha256, size = excluded.size,
			mode = excluded.mode, uid = excluded.uid, gid = excluded.gid, mtime = excluded.mtime, error = excluded.error,
			updated_at = excluded.updated_at`)
		if err != nil {
			return fmt.Errorf("save file states: %w", err)
		}
		defer st.Close()
		for _, f := range files {
			var mtime sql.NullInt64
			if !f.MTime.IsZero() {
				mtime = sql.NullInt64{Int64: ms(f.MTime), Valid: true}
			}
			if _, err := st.ExecContext(ctx, endpointID, f.Path, f.Exists, f.SHA256, f.Size, f.Mode, f.UID, f.GID, mtime, f.Error, ms(at)); err != nil {
				return fmt.Errorf("save file state %s: %w", f.Path, err)
			}
		}
		return nil
	})
}

// MailPosture is the last seen DNS mail records of a mail_posture check:
// Records is their canonical text, Fingerprint its hash.
type MailPosture struct {
	Check       string    `json:"check"`
	Fingerprint string    `json:"fingerprint"`
	Records     string    `json:"records"`
	SeenAt      time.Time `json:"seen_at"`
	ChangedAt   time.Time `json:"changed_at"`
}

// MailPostureState returns a check's last seen records.
func (s *Store) MailPostureState(ctx context.Context, checkName string) (MailPosture, error) {
	var m MailPosture
	var seen, changed int64
	err := s.r.QueryRowContext(ctx, `SELECT check_name, fingerprint, records, seen_at, changed_at FROM mail_posture WHERE check_name = ?`,
		checkName).Scan(&m.Check, &m.Fingerprint, &m.Records, &seen, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return MailPosture{}, fmt.Errorf("mail posture of %q: %w", checkName, ErrNotFound)
	}
	if err != nil {
		return MailPosture{}, fmt.Errorf("mail posture of %q: %w", checkName, err)
	}
	m.SeenAt, m.ChangedAt = fromMS(seen), fromMS(changed)
	return m, nil
}

// SaveMailPosture records a check's records as last seen.
func (s *Store) SaveMailPosture(ctx context.Context, m MailPosture) error {
	if m.Check == "" || m.Fingerprint == "" {
		return fmt.Errorf("save mail posture: %w", invalid("check", "check and fingerprint are required"))
	}
	return s.write(ctx, "mail_posture.save", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO mail_posture (check_name, fingerprint, records, seen_at, changed_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (check_name) DO UPDATE SET fingerprint = excluded.fingerprint, records = excluded.records,
			seen_at = excluded.seen_at, changed_at = excluded.changed_at`,
			m.Check, m.Fingerprint, m.Records, ms(m.SeenAt), ms(m.ChangedAt))
		if err != nil {
			return fmt.Errorf("save mail posture of %q: %w", m.Check, err)
		}
		return nil
	})
}
