package fleet

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/store"
)

// bkAlerts records alerts by fingerprint: firing until resolved.
type bkAlerts struct {
	mu     sync.Mutex
	firing map[string]alert.Alert
	fired  int
}

func (f *bkAlerts) Fire(_ context.Context, a alert.Alert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.firing[a.Fingerprint] = a
	f.fired++
	return nil
}

func (f *bkAlerts) Resolve(_ context.Context, fp string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.firing, fp)
	return nil
}

// problems lists the firing alerts as "team:problem".
func (f *bkAlerts) problems() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for _, a := range f.firing {
		out[a.Team+":"+a.Labels["problem"]] = true
	}
	return out
}

type bkEvents struct {
	mu  sync.Mutex
	evs []event.Event
}

func (f *bkEvents) Write(_ context.Context, evs []event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, evs...)
	return nil
}

type bkEnv struct {
	svc    *Service
	st     *store.Store
	alerts *bkAlerts
	events *bkEvents
	ep     store.Endpoint
	now    time.Time
	mu     sync.Mutex
}

func (e *bkEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *bkEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func newBkEnv(t *testing.T) *bkEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &bkEnv{st: st, alerts: &bkAlerts{firing: map[string]alert.Alert{}}, events: &bkEvents{}, now: time.Now().UTC().Truncate(time.Second)}
	e.svc = New(Options{Store: st, Alerts: e.alerts, Events: e.events, Now: e.clock})
	tok, _, err := e.svc.CreateEnrollmentToken(ctx, store.Actor{Name: "admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Enroll(ctx, agentproto.EnrollRequest{Token: tok, Hostname: "db1", OS: "linux"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if e.ep, err = st.Endpoint(ctx, resp.AgentID); err != nil {
		t.Fatal(err)
	}
	return e
}

var bkSeq uint64

func (e *bkEnv) send(t *testing.T, runs ...agentproto.BackupRun) {
	t.Helper()
	bkSeq++
	b := agentproto.Batch{BatchID: newID(), AgentID: e.ep.ID, Seq: bkSeq, SentAt: e.clock(), Backups: runs}
	defer e.advance(time.Hour)
	if _, err := e.svc.ApplyBatch(context.Background(), e.ep, b); err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
}

func (e *bkEnv) run(job string, exit int, dur time.Duration, bytes int64) agentproto.BackupRun {
	end := e.clock()
	return agentproto.BackupRun{RunID: newID(), Job: job, StartedAt: end.Add(-dur), EndedAt: end, ExitCode: exit,
		DurationMS: dur.Milliseconds(), Bytes: bytes, BytesSource: agentproto.BytesFromSize, OutputTail: "done\n"}
}

func TestBackupRunsJudgedAndResolved(t *testing.T) {
	e := newBkEnv(t)
	ctx := context.Background()
	job, err := e.svc.CreateBackupJob(ctx, store.Actor{Name: "op"}, store.BackupJob{Name: "pgdump", EndpointID: e.ep.ID,
		Schedule: "0 2 * * *", MinDuration: check.Duration(time.Minute), MinBytes: 1000, MaxSizeDrop: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if job.Grace.D() != DefaultBackupGrace || job.Severity != "high" {
		t.Errorf("defaults: grace %s severity %q", job.Grace, job.Severity)
	}
	want := func(step string, probs ...string) {
		t.Helper()
		got := e.alerts.problems()
		if len(got) != len(probs) {
			t.Errorf("%s: firing %v, want %v", step, got, probs)
			return
		}
		for _, p := range probs {
			if !got[p] {
				t.Errorf("%s: firing %v, want %v", step, got, probs)
			}
		}
	}

	e.send(t, e.run("pgdump", 0, 5*time.Minute, 10000))
	want("good run")

	fail := e.run("pgdump", 2, time.Minute, 0)
	fail.OutputTail = "pg_dump: error: connection refused\n"
	e.send(t, fail)
	want("failed run", "noc:failed")
	for _, a := range e.alerts.firing {
		if a.Labels["host"] != "db1" || a.Team != alert.TeamNOC {
			t.Errorf("failed alert labels %v team %s", a.Labels, a.Team)
		}
	}
	// A replay of the same batch content changes nothing.
	e.send(t, fail)
	if e.alerts.fired != 1 {
		t.Errorf("replayed run fired again: %d fires", e.alerts.fired)
	}

	e.send(t, e.run("pgdump", 0, 10*time.Second, 500))
	want("short and small run", "noc:too_short", "noc:too_small", "noc:size_drop", "soc:size_drop")

	e.send(t, e.run("pgdump", 0, 5*time.Minute, 10000))
	want("good run resolves")

	e.send(t, e.run("pgdump", 0, 5*time.Minute, 4000)) // 60% drop
	want("size drop", "noc:size_drop", "soc:size_drop")

	e.send(t, e.run("pgdump", 0, 5*time.Minute, 4100))
	want("next good run resolves")

	runs, err := e.svc.BackupRuns(ctx, job.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 6 {
		t.Fatalf("runs = %d, want 6 (the replay stored once)", len(runs))
	}
	if runs[1].Bytes != 4000 || len(runs[1].Problems) != 1 || runs[1].Problems[0] != ProblemSizeDrop {
		t.Errorf("newest runs: %+v", runs[:3])
	}

	// A failing run of a job nobody defined still alerts.
	e.send(t, e.run("adhoc", 1, time.Second, 0))
	want("undefined job failing", "noc:failed")
}

func TestBackupMissed(t *testing.T) {
	e := newBkEnv(t)
	ctx := context.Background()
	job, err := e.svc.CreateBackupJob(ctx, store.Actor{Name: "op"}, store.BackupJob{Name: "nightly", EndpointID: e.ep.ID,
		Schedule: "0 2 * * *", Grace: check.Duration(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// The next 02:00 after the job was created.
	due := time.Date(e.now.Year(), e.now.Month(), e.now.Day(), 2, 0, 0, 0, time.UTC)
	if !due.After(job.UpdatedAt) {
		due = due.AddDate(0, 0, 1)
	}
	e.now = due.Add(29 * time.Minute)
	if err := e.svc.CheckBackups(ctx, e.clock()); err != nil {
		t.Fatal(err)
	}
	if len(e.alerts.firing) != 0 {
		t.Fatalf("alert within the grace: %v", e.alerts.problems())
	}
	e.now = due.Add(31 * time.Minute)
	for range 3 { // raised once, however often it is checked
		if err := e.svc.CheckBackups(ctx, e.clock()); err != nil {
			t.Fatal(err)
		}
	}
	if p := e.alerts.problems(); !p["noc:missed"] || len(p) != 1 || e.alerts.fired != 1 {
		t.Fatalf("after the grace: firing %v, %d fires; want one missed alert", p, e.alerts.fired)
	}
	board, err := e.svc.BackupBoard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(board) != 1 || board[0].State != BackupMissed || board[0].Hostname != "db1" {
		t.Fatalf("board = %+v", board)
	}

	// The late run resolves it; the next day's check stays quiet.
	e.send(t, e.run("nightly", 0, time.Minute, 100))
	if len(e.alerts.firing) != 0 {
		t.Fatalf("late good run left %v", e.alerts.problems())
	}
	if err := e.svc.CheckBackups(ctx, e.clock()); err != nil {
		t.Fatal(err)
	}
	if len(e.alerts.firing) != 0 {
		t.Fatalf("covered occurrence alerted again: %v", e.alerts.problems())
	}
	if board, _ = e.svc.BackupBoard(ctx); board[0].State != BackupOK || board[0].LastSuccess == nil {
		t.Fatalf("board after the run = %+v", board[0])
	}

	// Next day: a run a few seconds before 02:00 (clock skew) covers it.
	e.now = due.AddDate(0, 0, 1).Add(-5 * time.Second)
	e.send(t, e.run("nightly", 0, 0, 100))
	e.now = due.AddDate(0, 0, 1).Add(2 * time.Hour)
	if err := e.svc.CheckBackups(ctx, e.clock()); err != nil {
		t.Fatal(err)
	}
	if len(e.alerts.firing) != 0 {
		t.Fatalf("early run not counted: %v", e.alerts.problems())
	}
	// Day three: nothing ran.
	e.now = due.AddDate(0, 0, 2).Add(2 * time.Hour)
	if err := e.svc.CheckBackups(ctx, e.clock()); err != nil {
		t.Fatal(err)
	}
	if p := e.alerts.problems(); !p["noc:missed"] {
		t.Fatalf("day three: %v", p)
	}
	// Deleting the job resolves its missed alert.
	if _, err := e.svc.DeleteBackupJob(ctx, store.Actor{Name: "op"}, job.ID); err != nil {
		t.Fatal(err)
	}
	if len(e.alerts.firing) != 0 {
		t.Fatalf("after delete: %v", e.alerts.problems())
	}
}

func TestBackupJobValidation(t *testing.T) {
	e := newBkEnv(t)
	ctx := context.Background()
	base := store.BackupJob{Name: "ok", EndpointID: e.ep.ID, Schedule: "@daily"}
	for _, tc := range []struct {
		field string
		mod   func(j *store.BackupJob)
	}{
		{"name", func(j *store.BackupJob) { j.Name = "has space" }},
		{"endpoint_id", func(j *store.BackupJob) { j.EndpointID = "" }},
		{"endpoint_id", func(j *store.BackupJob) { j.EndpointID = "nope" }},
		{"schedule", func(j *store.BackupJob) { j.Schedule = "61 * * * *" }},
		{"timezone", func(j *store.BackupJob) { j.TimeZone = "Mars/Olympus" }},
		{"severity", func(j *store.BackupJob) { j.Severity = "dire" }},
		{"max_size_drop", func(j *store.BackupJob) { j.MaxSizeDrop = 1.5 }},
		{"grace", func(j *store.BackupJob) { j.Grace = -1 }},
	} {
		j := base
		tc.mod(&j)
		_, err := e.svc.CreateBackupJob(ctx, store.Actor{Name: "op"}, j)
		var fe *store.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a field error on %s", tc.field, err, tc.field)
		}
	}
	if jobs, _ := e.svc.BackupJobs(ctx); len(jobs) != 0 {
		t.Errorf("rejected jobs were stored: %v", jobs)
	}
	if _, err := e.svc.CreateBackupJob(ctx, store.Actor{Name: "op"}, base); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateBackupJob(ctx, store.Actor{Name: "op"}, base); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate job: %v, want conflict", err)
	}
}

func TestBackupBatchValidation(t *testing.T) {
	e := newBkEnv(t)
	good := e.run("x", 0, time.Second, 1)
	for name, mod := range map[string]func(r *agentproto.BackupRun){
		"run_id":       func(r *agentproto.BackupRun) { r.RunID = "1" },
		"job":          func(r *agentproto.BackupRun) { r.Job = "../etc" },
		"ended_at":     func(r *agentproto.BackupRun) { r.EndedAt = r.StartedAt.Add(-time.Second) },
		"bytes_source": func(r *agentproto.BackupRun) { r.BytesSource = "guess" },
		"output_tail":  func(r *agentproto.BackupRun) { r.OutputTail = string(make([]byte, agentproto.MaxBackupTail+1)) },
	} {
		r := good
		mod(&r)
		b := agentproto.Batch{BatchID: newID(), AgentID: e.ep.ID, Seq: 1, SentAt: e.clock(), Backups: []agentproto.BackupRun{r},
			Metrics: []agentproto.Sample{{Name: "m", Value: 1}}}
		_, err := e.svc.ApplyBatch(context.Background(), e.ep, b)
		var fe *store.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a field error", name, err)
		}
	}
}
