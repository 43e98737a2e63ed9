package fleet

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/cron"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Backups: the server side of `nocsoc agent run --job NAME`. Agents report
// runs in their batches; operators define jobs (what is expected of a
// job name on an endpoint); each run is judged against its job, and a
// periodic check (CheckBackups) finds jobs whose scheduled run never came.

// Backup run problems, as stored on runs and named in alerts.
const (
	ProblemFailed    = "failed"
	ProblemTooShort  = "too_short"
	ProblemTooSmall  = "too_small"
	ProblemSizeDrop  = "size_drop"
	problemMissed    = "missed"
	problemSizeDropS = "size_drop_soc"
)

// DefaultBackupGrace is a job's grace when none is given.
const DefaultBackupGrace = time.Hour

// JobNameRE is what a backup job name may look like (the agent checks
// --job against it too).
var JobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// validateBackups checks every run of a batch before anything of it is
// applied.
func validateBackups(runs []agentproto.BackupRun) error {
	if len(runs) > agentproto.MaxBackupRuns {
		return &store.FieldError{Field: "backups", Reason: fmt.Sprintf("at most %d runs per batch (got %d)", agentproto.MaxBackupRuns, len(runs))}
	}
	for i, r := range runs {
		f := func(name string) string { return fmt.Sprintf("backups[%d].%s", i, name) }
		switch {
		case !uuidRe.MatchString(r.RunID):
			return &store.FieldError{Field: f("run_id"), Reason: "must be a lowercase UUID"}
		case !JobNameRE.MatchString(r.Job):
			return &store.FieldError{Field: f("job"), Reason: fmt.Sprintf("%q must be 1-128 letters, digits, '.', '_' or '-'", r.Job)}
		case r.StartedAt.IsZero() || r.EndedAt.IsZero():
			return &store.FieldError{Field: f("started_at"), Reason: "started_at and ended_at are required"}
		case r.EndedAt.Before(r.StartedAt):
			return &store.FieldError{Field: f("ended_at"), Reason: "is before started_at"}
		case r.DurationMS < 0 || r.Bytes < 0:
			return &store.FieldError{Field: f("bytes"), Reason: "duration_ms and bytes must not be negative"}
		case r.BytesSource != agentproto.BytesFromSize && r.BytesSource != agentproto.BytesFromOutput:
			return &store.FieldError{Field: f("bytes_source"), Reason: fmt.Sprintf("must be %q or %q", agentproto.BytesFromSize, agentproto.BytesFromOutput)}
		case len(r.OutputTail) > agentproto.MaxBackupTail || len(r.Error) > agentproto.MaxBackupTail || len(r.Command) > 256:
			return &store.FieldError{Field: f("output_tail"), Reason: fmt.Sprintf("output_tail and error are limited to %d bytes, command to 256", agentproto.MaxBackupTail)}
		}
	}
	return nil
}

// backupFingerprint identifies one kind of alert of one job on one
// endpoint.
func backupFingerprint(kind, endpointID, job string) string {
	return alert.Fingerprint(map[string]string{"alertname": "Backup:" + kind, "endpoint": endpointID, "backup_job": job})
}

func (s *Service) applyBackups(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	for _, r := range b.Backups {
		if err := s.applyBackupRun(ctx, e, r); err != nil {
			return err
		}
	}
	return nil
}

// judge lists a run's problems against its job (nil when no job is
// defined: only a failure counts then).
func (s *Service) judge(ctx context.Context, job *store.BackupJob, e store.Endpoint, r agentproto.BackupRun) (problems []string, detail map[string]string, err error) {
	detail = map[string]string{}
	if r.ExitCode != 0 {
		return []string{ProblemFailed}, detail, nil
	}
	if job == nil {
		return nil, detail, nil
	}
	if d := job.MinDuration.D(); d > 0 && time.Duration(r.DurationMS)*time.Millisecond < d {
		problems = append(problems, ProblemTooShort)
		detail[ProblemTooShort] = fmt.Sprintf("ran %s, expected at least %s", time.Duration(r.DurationMS)*time.Millisecond, d)
	}
	if job.MinBytes > 0 && r.Bytes < job.MinBytes {
		problems = append(problems, ProblemTooSmall)
		detail[ProblemTooSmall] = fmt.Sprintf("%d bytes, expected at least %d", r.Bytes, job.MinBytes)
	}
	if job.MaxSizeDrop > 0 {
		prev, err := s.o.Store.BackupRuns(ctx, store.BackupRunFilter{EndpointID: e.ID, Job: r.Job, Succeeded: true,
			Before: r.StartedAt, ExcludeRunID: r.RunID, Limit: 1})
		if err != nil {
			return nil, nil, err
		}
		if len(prev) == 1 && prev[0].Bytes > 0 {
			drop := float64(prev[0].Bytes-r.Bytes) / float64(prev[0].Bytes)
			if drop > job.MaxSizeDrop {
				problems = append(problems, ProblemSizeDrop)
				detail[ProblemSizeDrop] = fmt.Sprintf("%d bytes, %.0f%% less than the previous successful run's %d bytes (limit %.0f%%)",
					r.Bytes, drop*100, prev[0].Bytes, job.MaxSizeDrop*100)
			}
		}
	}
	return problems, detail, nil
}

func (s *Service) applyBackupRun(ctx context.Context, e store.Endpoint, r agentproto.BackupRun) error {
	var job *store.BackupJob
	if j, err := s.o.Store.BackupJobByName(ctx, e.ID, r.Job); err == nil {
		job = &j
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	problems, detail, err := s.judge(ctx, job, e, r)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	inserted, err := s.o.Store.InsertBackupRun(ctx, store.BackupRun{EndpointID: e.ID, BackupRun: r, Problems: problems, ReceivedAt: now})
	if err != nil {
		return err
	}
	if !inserted {
		return nil // a replay: judged and alerted when it first came
	}
	s.log.Info("backup run", "endpoint", e.ID, "hostname", e.Hostname, "job", r.Job, "exit_code", r.ExitCode,
		"bytes", r.Bytes, "duration_ms", r.DurationMS, "problems", strings.Join(problems, ","))
	if s.o.Alerts == nil {
		return nil
	}
	severity := "high"
	if job != nil {
		severity = job.Severity
	}
	var errs []error
	fire := func(kind, title, desc string, soc bool) {
		a := s.backupAlert(kind, e, r.Job, severity, title, desc, now, soc)
		a.Labels["run_id"] = r.RunID
		if err := s.o.Alerts.Fire(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("fire backup alert: %w", err))
		}
	}
	resolve := func(kind string) {
		if err := s.o.Alerts.Resolve(ctx, backupFingerprint(kind, e.ID, r.Job), now); err != nil {
			errs = append(errs, fmt.Errorf("resolve backup alert: %w", err))
		}
	}
	if slices.Contains(problems, ProblemFailed) {
		desc := fmt.Sprintf("Backup job %s on %s exited with status %d after %s.", r.Job, e.Hostname, r.ExitCode,
			time.Duration(r.DurationMS)*time.Millisecond)
		if r.Error != "" {
			desc += " " + r.Error
		}
		if tail := lastLines(r.OutputTail, 10); tail != "" {
			desc += "\n\nLast output:\n" + tail
		}
		fire(ProblemFailed, fmt.Sprintf("Backup %s failed on %s", r.Job, e.Hostname), desc, false)
		return errors.Join(errs...)
	}
	// A run that exited 0 settles failures and misses; its size and
	// duration settle the rest.
	resolve(ProblemFailed)
	resolve(problemMissed)
	if job != nil && job.MissedSince != nil {
		if err := s.o.Store.SetBackupMissed(ctx, job.ID, nil); err != nil {
			errs = append(errs, err)
		}
	}
	titles := map[string]string{
		ProblemTooShort: "Backup %s on %s was too short",
		ProblemTooSmall: "Backup %s on %s was too small",
		ProblemSizeDrop: "Backup %s on %s shrank suddenly",
	}
	for _, p := range []string{ProblemTooShort, ProblemTooSmall, ProblemSizeDrop} {
		if !slices.Contains(problems, p) {
			resolve(p)
			if p == ProblemSizeDrop {
				resolve(problemSizeDropS)
			}
			continue
		}
		desc := fmt.Sprintf("Backup job %s on %s: %s.", r.Job, e.Hostname, detail[p])
		fire(p, fmt.Sprintf(titles[p], r.Job, e.Hostname), desc, false)
		if p == ProblemSizeDrop {
			// Data vanishing from a backup is what ransomware or a
			// destructive intruder looks like: the SOC looks too.
			fire(problemSizeDropS, fmt.Sprintf("Backup %s on %s shrank suddenly: possible data destruction", r.Job, e.Hostname),
				desc+" A sudden drop can mean files were encrypted or deleted; check the host for ransomware or tampering.", true)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) backupAlert(kind string, e store.Endpoint, job, severity, title, desc string, now time.Time, soc bool) alert.Alert {
	a := alert.Alert{
		Fingerprint: backupFingerprint(kind, e.ID, job),
		Status:      alert.StatusFiring,
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    severity,
		Title:       title,
		Description: desc,
		Labels: map[string]string{"alertname": "Backup" + alertKindName(kind), "endpoint": e.ID, "host": e.Hostname,
			"backup_job": job, "problem": strings.TrimSuffix(kind, "_soc")},
		Source:      "backup:" + job,
		StartedAt:   now,
		LastSeenAt:  now,
		Occurrences: 1,
	}
	if soc {
		a.Team, a.Origin = alert.TeamSOC, alert.OriginHuman
		a.Labels["alertname"] = "BackupSizeDropSecurity"
	}
	return a
}

func alertKindName(kind string) string {
	switch kind {
	case ProblemFailed:
		return "Failed"
	case ProblemTooShort:
		return "TooShort"
	case ProblemTooSmall:
		return "TooSmall"
	case ProblemSizeDrop, problemSizeDropS:
		return "SizeDrop"
	case problemMissed:
		return "Missed"
	}
	return kind
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// compiledJob is a job with its schedule parsed.
type compiledJob struct {
	sched *cron.Schedule
	loc   *time.Location
}

func compileJob(j store.BackupJob) (compiledJob, error) {
	sched, err := cron.Parse(j.Schedule)
	if err != nil {
		return compiledJob{}, &store.FieldError{Field: "schedule", Reason: err.Error()}
	}
	loc := time.UTC
	if j.TimeZone != "" {
		if loc, err = time.LoadLocation(j.TimeZone); err != nil {
			return compiledJob{}, &store.FieldError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q", j.TimeZone)}
		}
	}
	return compiledJob{sched: sched, loc: loc}, nil
}

// prepareJob validates and fills in the defaults of an operator's job.
func (s *Service) prepareJob(ctx context.Context, j store.BackupJob) (store.BackupJob, error) {
	if !JobNameRE.MatchString(j.Name) {
		return j, &store.FieldError{Field: "name", Reason: fmt.Sprintf("%q must be 1-128 letters, digits, '.', '_' or '-' (the --job of `nocsoc agent run`)", j.Name)}
	}
	if j.EndpointID == "" {
		return j, &store.FieldError{Field: "endpoint_id", Reason: "is required (the id of the endpoint whose agent runs the job)"}
	}
	if _, err := s.o.Store.Endpoint(ctx, j.EndpointID); errors.Is(err, store.ErrNotFound) {
		return j, &store.FieldError{Field: "endpoint_id", Reason: fmt.Sprintf("endpoint %q does not exist", j.EndpointID)}
	} else if err != nil {
		return j, err
	}
	if _, err := compileJob(j); err != nil {
		return j, err
	}
	if j.Grace == 0 {
		j.Grace = check.Duration(DefaultBackupGrace)
	}
	if j.Severity == "" {
		j.Severity = check.DefaultSeverity
	}
	if !slices.Contains(check.Severities, j.Severity) {
		return j, &store.FieldError{Field: "severity", Reason: fmt.Sprintf("unknown severity %q (one of %s)", j.Severity, strings.Join(check.Severities, ", "))}
	}
	return j, nil
}

// CreateBackupJob validates and stores a job (audited).
func (s *Service) CreateBackupJob(ctx context.Context, actor store.Actor, j store.BackupJob) (store.BackupJob, error) {
	j, err := s.prepareJob(ctx, j)
	if err != nil {
		return store.BackupJob{}, err
	}
	return s.o.Store.CreateBackupJob(ctx, actor, j)
}

// UpdateBackupJob validates and replaces a job (audited). Its missed
// alert is resolved: the new settings are judged afresh.
func (s *Service) UpdateBackupJob(ctx context.Context, actor store.Actor, j store.BackupJob) (store.BackupJob, error) {
	j, err := s.prepareJob(ctx, j)
	if err != nil {
		return store.BackupJob{}, err
	}
	before, err := s.o.Store.BackupJob(ctx, j.ID)
	if err != nil {
		return store.BackupJob{}, err
	}
	out, err := s.o.Store.UpdateBackupJob(ctx, actor, j)
	if err != nil {
		return store.BackupJob{}, err
	}
	if before.MissedSince != nil && s.o.Alerts != nil {
		if err := s.o.Alerts.Resolve(ctx, backupFingerprint(problemMissed, before.EndpointID, before.Name), s.o.Now().UTC()); err != nil {
			s.log.Warn("resolve missed backup alert", "job", before.Name, "err", err)
		}
	}
	return out, nil
}

// DeleteBackupJob removes a job (audited) and resolves its missed alert;
// alerts about its runs stay until their next good run or an operator.
func (s *Service) DeleteBackupJob(ctx context.Context, actor store.Actor, id int64) (store.BackupJob, error) {
	j, err := s.o.Store.DeleteBackupJob(ctx, actor, id)
	if err != nil {
		return store.BackupJob{}, err
	}
	if s.o.Alerts != nil {
		if err := s.o.Alerts.Resolve(ctx, backupFingerprint(problemMissed, j.EndpointID, j.Name), s.o.Now().UTC()); err != nil {
			s.log.Warn("resolve missed backup alert", "job", j.Name, "err", err)
		}
	}
	return j, nil
}

// BackupJob returns one job.
func (s *Service) BackupJob(ctx context.Context, id int64) (store.BackupJob, error) {
	return s.o.Store.BackupJob(ctx, id)
}

// BackupJobs lists the jobs.
func (s *Service) BackupJobs(ctx context.Context) ([]store.BackupJob, error) {
	return s.o.Store.BackupJobs(ctx)
}

// BackupRuns returns a job's runs, newest first.
func (s *Service) BackupRuns(ctx context.Context, id int64, limit int) ([]store.BackupRun, error) {
	j, err := s.o.Store.BackupJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.o.Store.BackupRuns(ctx, store.BackupRunFilter{EndpointID: j.EndpointID, Job: j.Name, Limit: limit})
}

// Backup job states on the status board.
const (
	BackupOK      = "ok"
	BackupPending = "pending" // no run reported yet
	BackupMissed  = "missed"
	BackupFailed  = "failed"
	BackupProblem = "problem" // exited 0 but too short, too small or shrunk
)

// BackupStatus is one job on the status board. Runs carry no output tail
// here; GET …/runs has it.
type BackupStatus struct {
	Job         store.BackupJob  `json:"job"`
	Hostname    string           `json:"hostname"`
	State       string           `json:"state"`
	Problems    []string         `json:"problems"`
	LastRun     *store.BackupRun `json:"last_run,omitempty"`
	LastSuccess *store.BackupRun `json:"last_success,omitempty"`
	NextDue     *time.Time       `json:"next_due,omitempty"`
}

// BackupBoard returns every job's state, as of now.
func (s *Service) BackupBoard(ctx context.Context) ([]BackupStatus, error) {
	jobs, err := s.o.Store.BackupJobs(ctx)
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	out := make([]BackupStatus, 0, len(jobs))
	hosts := map[string]string{}
	for _, j := range jobs {
		st := BackupStatus{Job: j, Problems: []string{}}
		if h, ok := hosts[j.EndpointID]; ok {
			st.Hostname = h
		} else if e, err := s.o.Store.Endpoint(ctx, j.EndpointID); err == nil {
			st.Hostname, hosts[j.EndpointID] = e.Hostname, e.Hostname
		}
		f := store.BackupRunFilter{EndpointID: j.EndpointID, Job: j.Name, Limit: 1}
		runs, err := s.o.Store.BackupRuns(ctx, f)
		if err != nil {
			return nil, err
		}
		if len(runs) == 1 {
			r := runs[0]
			r.OutputTail = ""
			st.LastRun = &r
			st.Problems = r.Problems
		}
		f.Succeeded = true
		if runs, err = s.o.Store.BackupRuns(ctx, f); err != nil {
			return nil, err
		}
		if len(runs) == 1 {
			r := runs[0]
			r.OutputTail = ""
			st.LastSuccess = &r
		}
		switch {
		case j.MissedSince != nil:
			st.State = BackupMissed
			st.Problems = append(slices.Clone(st.Problems), problemMissed)
		case st.LastRun == nil:
			st.State = BackupPending
		case st.LastRun.ExitCode != 0:
			st.State = BackupFailed
		case len(st.LastRun.Problems) > 0:
			st.State = BackupProblem
		default:
			st.State = BackupOK
		}
		if cj, err := compileJob(j); err == nil {
			if n, ok := cj.sched.Next(now, cj.loc); ok {
				n = n.UTC()
				st.NextDue = &n
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// CheckBackups raises a missed alert for each job whose latest scheduled
// occurrence, plus its grace, has passed before now without a successful
// run. Occurrences before the job was created or last changed do not
// count. A job already marked missed for the same occurrence is left
// alone, so the alert is raised once per missed occurrence.
func (s *Service) CheckBackups(ctx context.Context, now time.Time) error {
	jobs, err := s.o.Store.BackupJobs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		if err := s.checkBackup(ctx, j, now); err != nil {
			errs = append(errs, fmt.Errorf("backup job %q: %w", j.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) checkBackup(ctx context.Context, j store.BackupJob, now time.Time) error {
	cj, err := compileJob(j)
	if err != nil {
		return err
	}
	grace := j.Grace.D()
	due, ok := cj.sched.Prev(now.Add(-grace), cj.loc)
	if !ok || due.Before(j.UpdatedAt) {
		return nil
	}
	// A run may start a little before its occurrence (clock skew between
	// the endpoint and the server, cron's own jitter): one that started
	// within the grace, at most half the gap since the occurrence before,
	// still counts for it.
	tolerance := grace
	if before, ok := cj.sched.Prev(due.Add(-time.Minute), cj.loc); ok {
		tolerance = min(tolerance, due.Sub(before)/2)
	}
	runs, err := s.o.Store.BackupRuns(ctx, store.BackupRunFilter{EndpointID: j.EndpointID, Job: j.Name, Succeeded: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(runs) == 1 && !runs[0].StartedAt.Before(due.Add(-tolerance)) {
		return nil // covered; a successful run already resolved any alert
	}
	if j.MissedSince != nil && j.MissedSince.Equal(due) {
		return nil
	}
	e, err := s.o.Store.Endpoint(ctx, j.EndpointID)
	if err != nil {
		return err
	}
	last := "never"
	if len(runs) == 1 {
		last = runs[0].EndedAt.Format(time.RFC3339)
	}
	s.log.Warn("backup missed", "job", j.Name, "endpoint", e.ID, "hostname", e.Hostname, "due", due)
	if err := s.o.Store.SetBackupMissed(ctx, j.ID, &due); err != nil {
		return err
	}
	if s.o.Alerts == nil {
		return nil
	}
	a := s.backupAlert(problemMissed, e, j.Name, j.Severity, fmt.Sprintf("Backup %s missed on %s", j.Name, e.Hostname),
		fmt.Sprintf("Backup job %s on %s had no successful run for its occurrence at %s (schedule %q, grace %s); last success: %s.",
			j.Name, e.Hostname, due.UTC().Format(time.RFC3339), j.Schedule, grace, last), now.UTC(), false)
	return s.o.Alerts.Fire(ctx, a)
}
