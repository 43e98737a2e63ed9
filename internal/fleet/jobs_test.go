package fleet

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/store"
)

type jtEvents struct {
	mu  sync.Mutex
	evs []event.Event
}

func (f *jtEvents) Write(_ context.Context, evs []event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, evs...)
	return nil
}

func (f *jtEvents) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.evs {
		out = append(out, e.String("event.action"))
	}
	return out
}

type jtAlerts struct {
	mu       sync.Mutex
	firing   map[string]alert.Alert
	resolved []string
}

func (f *jtAlerts) Fire(_ context.Context, a alert.Alert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.firing == nil {
		f.firing = map[string]alert.Alert{}
	}
	f.firing[a.Fingerprint] = a
	return nil
}

func (f *jtAlerts) Resolve(_ context.Context, fp string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.firing[fp]; ok {
		delete(f.firing, fp)
		f.resolved = append(f.resolved, fp)
	}
	return nil
}

// jtClock is a settable test jtClock.
type jtClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jtClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *jtClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type jtEnv struct {
	svc    *Service
	st     *store.Store
	ev     *jtEvents
	al     *jtAlerts
	clk    *jtClock
	ep     store.Endpoint
	done   []store.Job
	doneMu sync.Mutex
}

var jtAdmin = store.Actor{Name: "jtAdmin"}

func newJTEnv(t *testing.T) *jtEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &jtEnv{st: st, ev: &jtEvents{}, al: &jtAlerts{}, clk: &jtClock{t: time.Now().UTC().Truncate(time.Millisecond)}}
	e.svc = New(Options{Store: st, Events: e.ev, Alerts: e.al, Now: e.clk.now, OnJobResult: func(_ context.Context, j store.Job) {
		e.doneMu.Lock()
		defer e.doneMu.Unlock()
		e.done = append(e.done, j)
	}})
	e.ep = e.enroll(t, "web1")
	return e
}

func (e *jtEnv) enroll(t *testing.T, host string) store.Endpoint {
	t.Helper()
	ctx := context.Background()
	tok, _, err := e.svc.CreateEnrollmentToken(ctx, jtAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Enroll(ctx, agentproto.EnrollRequest{Token: tok, Hostname: host, OS: "linux"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := e.svc.Authenticate(ctx, resp.Credential)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestCreateJobsValidation(t *testing.T) {
	e := newJTEnv(t)
	ctx := context.Background()
	id := e.ep.ID
	other := "11111111-1111-4111-8111-111111111111"
	tests := []struct {
		name  string
		spec  JobSpec
		field string
	}{
		{"not on allow-list", JobSpec{Endpoints: []string{id}, Action: "rm.rf"}, "action"},
		{"no endpoints", JobSpec{Action: ActionPatchSecurity}, "endpoints"},
		{"endpoint twice", JobSpec{Endpoints: []string{id, id}, Action: ActionPatchSecurity}, "endpoints[1]"},
		{"unknown endpoint", JobSpec{Endpoints: []string{id, other}, Action: ActionPatchSecurity}, "endpoints[1]"},
		{"install without packages", JobSpec{Endpoints: []string{id}, Action: ActionPackageInstall}, "packages"},
		{"option as package", JobSpec{Endpoints: []string{id}, Action: ActionPackageInstall, Packages: []string{"-o=APT::x"}}, "packages[0]"},
		{"shell metachar package", JobSpec{Endpoints: []string{id}, Action: ActionPackageRemove, Packages: []string{"bash;reboot"}}, "packages[0]"},
		{"packages on patch", JobSpec{Endpoints: []string{id}, Action: ActionPatchSecurity, Packages: []string{"bash"}}, "packages"},
		{"shell not enabled", JobSpec{Endpoints: []string{id}, Action: ActionShell, Args: map[string]string{"command": "id"}}, "action"},
		{"window backwards", JobSpec{Endpoints: []string{id}, Action: ActionPatchSecurity, NotBefore: e.clk.now().Add(time.Hour), NotAfter: e.clk.now()}, "not_after"},
		{"window past", JobSpec{Endpoints: []string{id}, Action: ActionPatchSecurity, NotBefore: e.clk.now().Add(-2 * time.Hour), NotAfter: e.clk.now().Add(-time.Hour)}, "not_after"},
		{"timeout too long", JobSpec{Endpoints: []string{id}, Action: ActionPatchSecurity, Timeout: 7 * time.Hour}, "timeout"},
		{"bad arg name", JobSpec{Endpoints: []string{id}, Action: "firewall.block", Args: map[string]string{"IP Address": "1.2.3.4"}}, "args"},
	}
	for _, tt := range tests {
		_, err := e.svc.CreateJobs(ctx, jtAdmin, tt.spec)
		var fe *store.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want a field error on %q", tt.name, err, tt.field)
		}
	}
	if js, _ := e.svc.Jobs(ctx, store.JobFilter{}); len(js) != 0 {
		t.Errorf("rejected specs queued %d jobs", len(js))
	}
	// Shell once an jtAdmin enabled it.
	if _, err := e.svc.SetEndpointSettings(ctx, jtAdmin, store.EndpointSettings{EndpointID: id, AllowShell: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateJobs(ctx, jtAdmin, JobSpec{Endpoints: []string{id}, Action: ActionShell, Args: map[string]string{"command": "id"}}); err != nil {
		t.Errorf("shell on an enabled endpoint: %v", err)
	}
	// Switched off again before delivery: the job is held back.
	if _, err := e.svc.SetEndpointSettings(ctx, jtAdmin, store.EndpointSettings{EndpointID: id, AllowShell: false}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.WaitJobs(ctx, e.ep, 0); len(got) != 0 {
		t.Errorf("shell job delivered while shell is disabled: %+v", got)
	}
	if _, err := e.svc.SetEndpointSettings(ctx, jtAdmin, store.EndpointSettings{EndpointID: id, AllowShell: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.WaitJobs(ctx, e.ep, 0); len(got) != 1 || got[0].Args["command"] != "id" {
		t.Errorf("shell job after re-enabling: %+v", got)
	}
	// A batch with malformed updates is refused before anything of it is
	// applied.
	_, err := e.svc.ApplyBatch(ctx, e.ep, agentproto.Batch{BatchID: newID(), AgentID: id, Seq: 1, SentAt: e.clk.now(),
		Metrics: []agentproto.Sample{{Name: "cpu.percent", Value: 1}}, Updates: &agentproto.Updates{Pending: []agentproto.PendingUpdate{{Name: "x"}}}})
	var fe *store.FieldError
	if !errors.As(err, &fe) || fe.Field != "updates.pending[0]" {
		t.Errorf("batch with an update without version: %v", err)
	}
	if ep, _ := e.svc.Endpoint(ctx, id); ep.Batches != 0 {
		t.Errorf("refused batch was recorded")
	}
}

// TestJobLifecycle: queued → sent (by poll) → result (once), events on
// the timeline, the hook called; cancel and expiry.
func TestJobLifecycle(t *testing.T) {
	e := newJTEnv(t)
	ctx := context.Background()
	jobs, err := e.svc.CreateJobs(ctx, jtAdmin, JobSpec{Endpoints: []string{e.ep.ID}, Action: ActionPackageInstall,
		Packages: []string{"nginx"}, Reason: "ticket 42"})
	if err != nil {
		t.Fatal(err)
	}
	j := jobs[0]
	if j.Status != store.JobQueued || j.Hostname != "web1" || j.TimeoutMS != defaultPkgTimeout.Milliseconds() || j.CreatedBy != "jtAdmin" {
		t.Errorf("created job = %+v", j)
	}
	got, err := e.svc.WaitJobs(ctx, e.ep, 0)
	if err != nil || len(got) != 1 || got[0].ID != j.ID || !slices.Equal(got[0].Packages, []string{"nginx"}) {
		t.Fatalf("poll = %+v, %v", got, err)
	}
	if again, _ := e.svc.WaitJobs(ctx, e.ep, 0); len(again) != 0 {
		t.Errorf("a sent job was delivered again: %+v", again)
	}
	if _, err := e.svc.CancelJob(ctx, jtAdmin, j.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("cancel of a sent job: %v, want conflict", err)
	}
	// Another endpoint cannot report on this job.
	other := e.enroll(t, "db1")
	res := agentproto.JobResult{JobID: j.ID, Status: agentproto.JobSucceeded, Output: "ok\n", StartedAt: e.clk.now(), FinishedAt: e.clk.now()}
	if _, err := e.svc.RecordJobResult(ctx, other, res); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("result from another endpoint: %v, want not found", err)
	}
	if dup, err := e.svc.RecordJobResult(ctx, e.ep, agentproto.JobResult{JobID: j.ID, Status: "done"}); err == nil || dup {
		t.Errorf("bad status accepted")
	}
	if dup, err := e.svc.RecordJobResult(ctx, e.ep, res); err != nil || dup {
		t.Fatalf("result: dup %v, %v", dup, err)
	}
	res.Status = agentproto.JobFailed
	if dup, err := e.svc.RecordJobResult(ctx, e.ep, res); err != nil || !dup {
		t.Errorf("second result: dup %v, %v; want duplicate", dup, err)
	}
	j, _ = e.svc.Job(ctx, j.ID)
	if j.Status != agentproto.JobSucceeded || j.Output != "ok\n" || j.ExitCode == nil || *j.ExitCode != 0 || j.FinishedAt == nil {
		t.Errorf("job after result = %+v", j)
	}

	// Cancel a queued job; expire another whose window closes.
	c, _ := e.svc.CreateJobs(ctx, jtAdmin, JobSpec{Endpoints: []string{e.ep.ID}, Action: ActionPatchSecurity, NotBefore: e.clk.now().Add(time.Hour)})
	x, _ := e.svc.CreateJobs(ctx, jtAdmin, JobSpec{Endpoints: []string{e.ep.ID}, Action: ActionInventoryCollect, NotAfter: e.clk.now().Add(time.Minute)})
	if cj, err := e.svc.CancelJob(ctx, jtAdmin, c[0].ID); err != nil || cj.Status != store.JobCanceled {
		t.Errorf("cancel: %+v %v", cj, err)
	}
	e.clk.add(2 * time.Minute)
	if err := e.svc.expireJobs(ctx, e.clk.now()); err != nil {
		t.Fatal(err)
	}
	if xj, _ := e.svc.Job(ctx, x[0].ID); xj.Status != store.JobExpired {
		t.Errorf("job past its window: %s, want expired", xj.Status)
	}
	want := []string{"job.created", "job.sent", "job.succeeded", "job.created", "job.created", "job.canceled", "job.expired"}
	if got := e.ev.actions(); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	e.doneMu.Lock()
	var hooked []string
	for _, d := range e.done {
		hooked = append(hooked, d.Status)
	}
	e.doneMu.Unlock()
	if !slices.Equal(hooked, []string{"succeeded", "canceled", "expired"}) {
		t.Errorf("OnJobResult saw %v", hooked)
	}
	audit, err := e.st.ListAudit(ctx, store.AuditFilter{Action: "job.create"})
	if err != nil || len(audit) != 3 {
		t.Errorf("job.create audit entries = %d, %v", len(audit), err)
	}
}

// TestPollWakeLatency: a job queued while its agent's poll waits reaches
// it at once, not at the end of the wait. The poll is known to be parked
// before the job is created (WaitingPolls), so the measurement is the
// wake-up path itself.
func TestPollWakeLatency(t *testing.T) {
	e := newJTEnv(t)
	ctx := context.Background()
	var lat []time.Duration
	for range 30 {
		got := make(chan []agentproto.Job, 1)
		go func() {
			js, err := e.svc.WaitJobs(ctx, e.ep, agentproto.MaxJobWait)
			if err != nil {
				t.Error(err)
			}
			got <- js
		}()
		for e.svc.WaitingPolls(e.ep.ID) == 0 {
			time.Sleep(time.Millisecond) // observe the poll parking; not a correctness wait
		}
		start := time.Now()
		if _, err := e.svc.CreateJobs(ctx, jtAdmin, JobSpec{Endpoints: []string{e.ep.ID}, Action: ActionInventoryCollect}); err != nil {
			t.Fatal(err)
		}
		js := <-got
		lat = append(lat, time.Since(start))
		if len(js) != 1 {
			t.Fatalf("woken poll got %d jobs", len(js))
		}
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("poll wake-up latency: p50 %s, p99 %s, max %s", lat[len(lat)/2], p99, lat[len(lat)-1])
	if p99 > 2*time.Second {
		t.Errorf("p99 wake-up latency %s, want < 2s", p99)
	}
	// StopPolls answers a waiting poll at once, empty.
	got := make(chan []agentproto.Job, 1)
	go func() {
		js, _ := e.svc.WaitJobs(ctx, e.ep, agentproto.MaxJobWait)
		got <- js
	}()
	for e.svc.WaitingPolls(e.ep.ID) == 0 {
		time.Sleep(time.Millisecond)
	}
	e.svc.StopPolls()
	if js := <-got; len(js) != 0 {
		t.Errorf("stopped poll got %v", js)
	}
}

func TestUpdatesAndCompliance(t *testing.T) {
	e := newJTEnv(t)
	ctx := context.Background()
	web2 := e.enroll(t, "web2")
	t0 := e.clk.now()
	batch := func(ep store.Endpoint, n int, at time.Time, ups ...agentproto.PendingUpdate) {
		t.Helper()
		b := agentproto.Batch{BatchID: newID(), AgentID: ep.ID, Seq: uint64(n), SentAt: at, Updates: &agentproto.Updates{CollectedAt: at, Manager: "apt", Pending: ups}}
		if _, err := e.svc.ApplyBatch(ctx, ep, b); err != nil {
			t.Fatal(err)
		}
	}
	ssl := agentproto.PendingUpdate{Name: "openssl", Arch: "amd64", CurrentVersion: "3.0.1", Version: "3.0.2", Origin: "Debian-Security", Security: true}
	tz := agentproto.PendingUpdate{Name: "tzdata", Arch: "all", CurrentVersion: "a", Version: "b"}
	batch(e.ep, 1, t0, ssl, tz)
	batch(web2, 1, t0, tz)
	e.clk.add(10 * 24 * time.Hour)
	// A newer openssl: the pending-since time stays.
	ssl2 := ssl
	ssl2.Version = "3.0.3"
	batch(e.ep, 2, e.clk.now(), ssl2, tz)
	st, ups, err := e.svc.EndpointUpdates(ctx, e.ep.ID)
	if err != nil || st == nil || len(ups) != 2 || ups[0].Name != "openssl" || ups[0].Version != "3.0.3" || !ups[0].SecuritySince.Equal(t0) {
		t.Fatalf("updates = %+v %+v %v", st, ups, err)
	}
	ps, err := e.svc.Patches(ctx)
	if err != nil || len(ps) != 1 || ps[0].Package != "openssl" || len(ps[0].Endpoints) != 1 || ps[0].Endpoints[0].Days < 9.9 {
		t.Errorf("patches = %+v %v", ps, err)
	}
	c, err := e.svc.PatchCompliance(ctx, 7)
	if err != nil || c.Endpoints != 2 || c.Reporting != 2 || c.Compliant != 1 || c.Percent == nil || *c.Percent != 50 {
		t.Errorf("compliance(7) = %+v %v", c, err)
	}
	c, _ = e.svc.PatchCompliance(ctx, 30)
	if c.Percent == nil || *c.Percent != 100 {
		t.Errorf("compliance(30) = %+v", c)
	}
	// A late replay of an older report changes nothing.
	batch(e.ep, 3, t0, tz)
	if _, ups, _ := e.svc.EndpointUpdates(ctx, e.ep.ID); len(ups) != 2 {
		t.Errorf("older report replaced newer: %+v", ups)
	}
	// Patched: compliant again.
	batch(e.ep, 4, e.clk.now().Add(time.Minute), tz)
	if c, _ = e.svc.PatchCompliance(ctx, 7); c.Percent == nil || *c.Percent != 100 {
		t.Errorf("compliance after patching = %+v", c)
	}
	if _, err := e.svc.PatchCompliance(ctx, -1); err == nil {
		t.Errorf("negative days accepted")
	}
}

func TestDeniedSoftware(t *testing.T) {
	e := newJTEnv(t)
	ctx := context.Background()
	inv := func(n int, pkgs ...string) {
		t.Helper()
		i := &agentproto.Inventory{Hostname: "web1"}
		for _, p := range pkgs {
			i.Packages = append(i.Packages, agentproto.Package{Name: p, Version: "1.0", Arch: "amd64"})
		}
		if _, err := e.svc.ApplyBatch(ctx, e.ep, agentproto.Batch{BatchID: newID(), AgentID: e.ep.ID, Seq: uint64(n), SentAt: e.clk.now(), Inventory: i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateSoftwareRule(ctx, jtAdmin, store.SoftwareRule{List: "deny", Pattern: "[bad"}); err == nil {
		t.Errorf("malformed glob accepted")
	}
	if _, err := e.svc.CreateSoftwareRule(ctx, jtAdmin, store.SoftwareRule{List: "maybe", Pattern: "x"}); err == nil {
		t.Errorf("unknown list accepted")
	}
	if _, err := e.svc.CreateSoftwareRule(ctx, jtAdmin, store.SoftwareRule{List: "deny", Pattern: "*torrent*", Reason: "P2P"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateSoftwareRule(ctx, jtAdmin, store.SoftwareRule{List: "deny", Pattern: "*torrent*"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate rule: %v", err)
	}
	allow, err := e.svc.CreateSoftwareRule(ctx, jtAdmin, store.SoftwareRule{List: "allow", Pattern: "libtorrent*"})
	if err != nil {
		t.Fatal(err)
	}
	inv(1, "bash", "libtorrent21")
	if len(e.al.firing) != 0 {
		t.Errorf("allowed package alerted: %v", e.al.firing)
	}
	inv(2, "bash", "libtorrent21", "qbittorrent")
	fp := SoftwareAlertFingerprint(e.ep.ID, "qbittorrent")
	a, ok := e.al.firing[fp]
	if !ok || a.Team != alert.TeamSOC || a.Origin != alert.OriginHuman || a.Labels["package"] != "qbittorrent" {
		t.Fatalf("denied package alert = %+v (firing %d)", a, len(e.al.firing))
	}
	sw, err := e.svc.Software(ctx, "torrent")
	if err != nil || len(sw) != 2 || sw[0].Name != "libtorrent21" || sw[0].Status != "allowed" || sw[1].Status != "denied" || sw[1].Endpoints != 1 {
		t.Errorf("software = %+v %v", sw, err)
	}
	// Removing the allow entry makes libtorrent21 denied too, at once.
	if err := e.svc.DeleteSoftwareRule(ctx, jtAdmin, allow.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.al.firing[SoftwareAlertFingerprint(e.ep.ID, "libtorrent21")]; !ok {
		t.Errorf("deleting the allow entry did not alert on libtorrent21")
	}
	// Removed from the endpoint: resolved.
	inv(3, "bash")
	if len(e.al.firing) != 0 || len(e.al.resolved) != 2 {
		t.Errorf("after removal: firing %v, resolved %v", e.al.firing, e.al.resolved)
	}
	if vs, _ := e.svc.SoftwareViolations(ctx, ""); len(vs) != 0 {
		t.Errorf("violations left: %+v", vs)
	}
}
