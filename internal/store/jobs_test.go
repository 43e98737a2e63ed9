package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func jobsEndpoint(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	h := func(c byte) string {
		b := make([]byte, 64)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}
	tok := h(id[0])
	if _, err := s.CreateEnrollmentToken(ctx, Actor{Name: "admin"}, EnrollmentToken{Hash: tok, Prefix: "nse_x", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnrollEndpoint(ctx, tok, Endpoint{ID: id, CredentialHash: h(id[0] + 1), Hostname: "host-" + id[:1]}, now); err != nil {
		t.Fatal(err)
	}
}

func TestJobsStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const ep = "1aaaaaaa-0000-4000-8000-000000000000"
	jobsEndpoint(t, s, ep)
	now := time.Now().UTC().Truncate(time.Millisecond)
	actor := Actor{Name: "olga"}
	if _, err := s.CreateJobs(ctx, actor, []Job{{ID: "j1", EndpointID: "nope", Action: "x", NotBefore: now, NotAfter: now.Add(time.Hour)}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("job for an unknown endpoint: %v", err)
	}
	jobs, err := s.CreateJobs(ctx, actor, []Job{
		{ID: "j1", EndpointID: ep, Action: "package.install", Packages: []string{"nginx"}, Args: map[string]string{"k": "v"}, NotBefore: now, NotAfter: now.Add(time.Hour), TimeoutMS: 1000, CreatedAt: now},
		{ID: "j2", EndpointID: ep, Action: "patch.security", NotBefore: now.Add(time.Minute), NotAfter: now.Add(time.Hour), TimeoutMS: 1000, CreatedAt: now},
	})
	if err != nil || len(jobs) != 2 || jobs[0].Hostname != "host-1" || jobs[0].Status != JobQueued || jobs[0].CreatedBy != "olga" {
		t.Fatalf("CreateJobs = %+v, %v", jobs, err)
	}
	// Only j1's window is open.
	got, err := s.ClaimJobs(ctx, ep, now)
	if err != nil || len(got) != 1 || got[0].ID != "j1" || got[0].Status != JobSent || got[0].Args["k"] != "v" || got[0].Packages[0] != "nginx" {
		t.Fatalf("ClaimJobs = %+v, %v", got, err)
	}
	if next, _ := s.NextJobAt(ctx, ep, now); !next.Equal(now.Add(time.Minute)) {
		t.Errorf("NextJobAt = %s", next)
	}
	// Someone else's result is not found; the own one once.
	if _, _, err := s.RecordJobResult(ctx, "other", "j1", JobOutcome{Status: "succeeded"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("foreign result: %v", err)
	}
	j, dup, err := s.RecordJobResult(ctx, ep, "j1", JobOutcome{Status: "failed", ExitCode: 100, Output: "E: x", Error: "exit 100", StartedAt: now, FinishedAt: now})
	if err != nil || dup || j.Status != "failed" || j.ExitCode == nil || *j.ExitCode != 100 || j.Output != "E: x" {
		t.Fatalf("RecordJobResult = %+v %v %v", j, dup, err)
	}
	if _, dup, _ := s.RecordJobResult(ctx, ep, "j1", JobOutcome{Status: "succeeded"}); !dup {
		t.Errorf("second result not a duplicate")
	}
	if _, err := s.CancelJob(ctx, actor, "j1", now); !errors.Is(err, ErrConflict) {
		t.Errorf("cancel a finished job: %v", err)
	}
	// j2 expires after its window.
	exp, err := s.ExpireJobs(ctx, now.Add(2*time.Hour), time.Minute)
	if err != nil || len(exp) != 1 || exp[0].ID != "j2" || exp[0].Status != JobExpired {
		t.Errorf("ExpireJobs = %+v, %v", exp, err)
	}
	list, _ := s.Jobs(ctx, JobFilter{Endpoint: ep, Status: JobExpired})
	if len(list) != 1 || list[0].ID != "j2" {
		t.Errorf("Jobs(expired) = %+v", list)
	}

	// Settings default off, audited when set.
	if st, err := s.EndpointSettings(ctx, ep); err != nil || st.AllowShell {
		t.Errorf("default settings = %+v %v", st, err)
	}
	if _, err := s.SetEndpointSettings(ctx, Actor{Name: "admin"}, EndpointSettings{EndpointID: ep, AllowShell: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.EndpointSettings(ctx, ep); !st.AllowShell || st.UpdatedBy != "admin" {
		t.Errorf("settings = %+v", st)
	}
	if _, err := s.EndpointSettings(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("settings of unknown endpoint: %v", err)
	}
	for action, want := range map[string]int{"job.create": 2, "job.result": 1, "job.expire": 1, "endpoint.settings": 1} {
		if es, _ := s.ListAudit(ctx, AuditFilter{Action: action}); len(es) != want {
			t.Errorf("audit %s: %d, want %d", action, len(es), want)
		}
	}
}

func TestReplaceUpdatesKeepsFirstSeen(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const ep = "2bbbbbbb-0000-4000-8000-000000000000"
	jobsEndpoint(t, s, ep)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t1 := t0.Add(48 * time.Hour)
	st := UpdateState{EndpointID: ep, Manager: "apt", CollectedAt: t0}
	if err := s.ReplaceUpdates(ctx, st, []PendingUpdate{{Name: "openssl", Version: "1"}, {Name: "curl", Version: "1", Security: true}}, t0); err != nil {
		t.Fatal(err)
	}
	// openssl turns into a security update at t1; curl is gone.
	st.CollectedAt = t1
	if err := s.ReplaceUpdates(ctx, st, []PendingUpdate{{Name: "openssl", Version: "2", Security: true}}, t1); err != nil {
		t.Fatal(err)
	}
	_, ups, err := s.EndpointUpdates(ctx, ep)
	if err != nil || len(ups) != 1 || !ups[0].FirstSeen.Equal(t0) || ups[0].SecuritySince == nil || !ups[0].SecuritySince.Equal(t1) || ups[0].Version != "2" {
		t.Fatalf("updates = %+v %v", ups, err)
	}
	// A report that failed keeps the list.
	st.CollectedAt, st.Error = t1.Add(time.Hour), "apt-get: lock"
	if err := s.ReplaceUpdates(ctx, st, nil, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	state, ups, _ := s.EndpointUpdates(ctx, ep)
	if len(ups) != 1 || state.Error == "" {
		t.Errorf("after a failed report: %+v %+v", state, ups)
	}
	total, reporting, late, err := s.PatchCompliance(ctx, t1.Add(time.Minute))
	if err != nil || total != 1 || reporting != 1 || late != 1 {
		t.Errorf("PatchCompliance = %d %d %d %v", total, reporting, late, err)
	}
}
