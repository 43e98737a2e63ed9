package autoresponse_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/autoresponse"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jobs records the job specs it is asked for.
type jobs struct {
	mu    sync.Mutex
	specs []fleet.JobSpec
	n     int
}

func (j *jobs) CreateJobs(_ context.Context, _ store.Actor, spec fleet.JobSpec) ([]store.Job, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.specs = append(j.specs, spec)
	var out []store.Job
	for _, e := range spec.Endpoints {
		j.n++
		out = append(out, store.Job{ID: fmt.Sprintf("job-%d", j.n), EndpointID: e, Action: spec.Action, Args: spec.Args, Status: store.JobQueued, Origin: spec.Origin})
	}
	return out, nil
}

func (j *jobs) actions() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, s := range j.specs {
		out = append(out, s.Action+" "+s.Args["value"]+" "+s.Args["duration"])
	}
	return out
}

type fixture struct {
	st    *store.Store
	svc   *autoresponse.Service
	jobs  *jobs
	clock *clock
	ep    string
	rule  *sigma.Rule
}

func setup(t *testing.T, cfg config.Response) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	sum := sha256.Sum256([]byte("enroll"))
	if _, err := st.CreateEnrollmentToken(ctx, store.Actor{Name: "admin"}, store.EnrollmentToken{Hash: hex.EncodeToString(sum[:]), Prefix: "enroll",
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cred := sha256.Sum256([]byte("cred"))
	ep, err := st.EnrollEndpoint(ctx, hex.EncodeToString(sum[:]), store.Endpoint{ID: "0b7c2a8e-3f1d-4c55-9a0e-6d2f1b3c4a5e",
		CredentialHash: hex.EncodeToString(cred[:]), Hostname: "web1", OS: "linux"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	j := &jobs{}
	svc, err := autoresponse.New(autoresponse.Options{Store: st, Jobs: j, Config: cfg, Policy: decision.DefaultPolicy(), Now: c.Now,
		Servers: nil})
	if err != nil {
		t.Fatal(err)
	}
	rules, errs := sigma.ParseRule("test.yml", []byte(`title: SSH Brute Force
id: rule-bf
name: bf
nocsoc:
    response:
        action: block_ip
        duration: 4h
correlation:
    type: event_count
    rules: [x]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 10}
`))
	if len(errs) > 0 || len(rules) != 1 {
		t.Fatal(errs)
	}
	return &fixture{st: st, svc: svc, jobs: j, clock: c, ep: ep.ID, rule: rules[0]}
}

func (f *fixture) fire(ip, host string) {
	a := alert.Alert{Source: "sigma:rule-bf", Title: "SSH Brute Force (source.ip=" + ip + ")",
		Labels: map[string]string{"rule_id": "rule-bf", "source.ip": ip}, Annotations: map[string]string{"host.name": host}}
	f.svc.HandleAlert(context.Background(), a, []*sigma.Rule{f.rule})
}

func TestRuleMetadata(t *testing.T) {
	f := setup(t, config.Response{})
	f.fire("203.0.113.9", "web1")
	got := f.jobs.actions()
	if len(got) != 1 || got[0] != "firewall.block 203.0.113.9 4h0m0s" {
		t.Fatalf("jobs = %v, want one 4h block", got)
	}
	if ep := f.jobs.specs[0].Endpoints; len(ep) != 1 || ep[0] != f.ep {
		t.Errorf("block sent to %v, want the attacked host %s only", ep, f.ep)
	}
	// The attack goes on: no second block while the first is active.
	f.fire("203.0.113.9", "web1")
	if n := len(f.jobs.actions()); n != 1 {
		t.Errorf("a running attack stacked %d blocks", n)
	}
	// No endpoint with that hostname: nothing to act on, counted.
	f.fire("203.0.113.10", "db9")
	if n := len(f.jobs.actions()); n != 1 {
		t.Errorf("block sent for an unknown host")
	}
	if f.svc.Stats().RefusedNoTarget != 1 {
		t.Errorf("stats = %+v", f.svc.Stats())
	}
	// Allow-listed: never blocked.
	f.fire("127.0.0.1", "web1")
	if f.svc.Stats().RefusedAllowList != 1 || len(f.jobs.actions()) != 1 {
		t.Errorf("loopback handled: stats %+v, jobs %v", f.svc.Stats(), f.jobs.actions())
	}
}

// TestRepeatOffender: each earlier automatic block of the same address
// doubles the next, up to the cap.
func TestRepeatOffender(t *testing.T) {
	f := setup(t, config.Response{Repeat: config.Repeat{Max: check.Duration(20 * time.Hour)}})
	ctx := context.Background()
	var got []string
	for i := 0; i < 4; i++ {
		f.fire("198.51.100.7", "web1")
		ds, err := f.st.ListDecisions(ctx, f.clock.Now(), false, 0)
		if err != nil || len(ds) != 1 {
			t.Fatalf("round %d: decisions %v, %v", i, ds, err)
		}
		got = append(got, ds[0].Until.Sub(ds[0].CreatedAt).String())
		// The block runs out; the attacker comes back.
		f.clock.Advance(ds[0].Until.Sub(ds[0].CreatedAt) + time.Minute)
	}
	if want := "4h0m0s 8h0m0s 16h0m0s 20h0m0s"; strings.Join(got, " ") != want {
		t.Errorf("durations = %v, want %s", got, want)
	}
}

// TestStormRateLimit: a false-positive storm of 100 distinct sources
// blocks only as many as the limit allows, and counts the rest; an
// isolation rule storm on the whole fleet leaves one request pending.
func TestStormRateLimit(t *testing.T) {
	f := setup(t, config.Response{RateLimits: map[string]config.RateLimit{"block_ip": {Count: 5, Per: check.Duration(time.Minute)}}})
	for i := 0; i < 100; i++ {
		f.fire(fmt.Sprintf("203.0.113.%d", i+1), "web1")
	}
	if n := len(f.jobs.actions()); n != 5 {
		t.Errorf("%d blocks during the storm, want 5", n)
	}
	if s := f.svc.Stats(); s.RefusedRateLimit != 95 {
		t.Errorf("stats = %+v, want 95 refused", s)
	}
	f.clock.Advance(time.Minute)
	f.fire("192.0.2.77", "web1")
	if n := len(f.jobs.actions()); n != 6 {
		t.Errorf("after the window: %d blocks, want 6", n)
	}

	g := setup(t, config.Response{Servers: []string{"192.0.2.1"},
		Rules: []config.ResponseRule{{Rule: "bf", Action: "isolate_host", Scope: "fleet"}}})
	for i := 0; i < 10; i++ {
		g.fire(fmt.Sprintf("203.0.113.%d", i+1), "web1")
	}
	as, err := g.svc.List(context.Background(), store.ResponseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Status != autoresponse.StatusPending || as[0].Kind != "isolate_host" {
		t.Errorf("isolation storm: %+v, want one pending isolation", as)
	}
	if len(g.jobs.actions()) != 0 {
		t.Errorf("isolation ran without approval: %v", g.jobs.actions())
	}
}

// TestReconcile: a decision made through the API is pushed to its
// endpoints, revoked → unblocked once; a fleet-wide one reaches every
// enrolled endpoint; a result is recorded on the decision.
func TestReconcile(t *testing.T) {
	f := setup(t, config.Response{})
	ctx := context.Background()
	now := f.clock.Now()
	d, err := decision.DefaultPolicy().Validate(decision.Request{Value: "203.0.113.50", Duration: "1h"}, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	d, err = f.st.CreateDecision(ctx, store.Actor{Name: "alice"}, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.jobs.actions(); len(got) != 1 || got[0] != "firewall.block 203.0.113.50 1h0m0s" {
		t.Fatalf("jobs = %v", got)
	}
	if eps := f.jobs.specs[0].Endpoints; len(eps) != 1 || eps[0] != f.ep {
		t.Errorf("fleet-wide decision sent to %v", eps)
	}
	f.svc.OnJobResult(ctx, store.Job{ID: "job-1", Origin: "response", Status: "succeeded", EndpointID: f.ep})
	js, err := f.svc.DecisionJobs(ctx, d.ID)
	if err != nil || len(js) != 1 || js[0].Status != "succeeded" || js[0].FinishedAt == nil {
		t.Errorf("decision jobs = %+v, %v", js, err)
	}
	if _, err := f.st.RevokeDecision(ctx, store.Actor{Name: "alice"}, d.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.jobs.actions(); len(got) != 2 || got[1] != "firewall.unblock 203.0.113.50 " {
		t.Errorf("jobs = %v, want one unblock after the revoke", got)
	}
}

// TestApprovalRules: who may approve, four-eyes, and bad input.
func TestApprovalRules(t *testing.T) {
	f := setup(t, config.Response{Servers: []string{"192.0.2.1"}, Approval: config.Approval{Approvers: []string{"lead"}, FourEyes: true}})
	ctx := context.Background()
	op := autoresponse.Requester{User: store.User{Name: "junior", Role: "operator"}}
	lead := autoresponse.Requester{User: store.User{Name: "lead", Role: "operator"}}
	admin := autoresponse.Requester{User: store.User{Name: "root-admin", Role: "admin"}}
	eps := []byte(fmt.Sprintf("[%q]", f.ep))
	a, err := f.svc.Request(ctx, lead, autoresponse.Request{Kind: "isolate_host", Endpoints: eps})
	if err != nil || a.Status != autoresponse.StatusPending {
		t.Fatalf("four-eyes: the approver's own request = %+v, %v; want pending", a, err)
	}
	if _, err := f.svc.Approve(ctx, lead, a.ID, ""); err == nil || !strings.Contains(err.Error(), "four-eyes") {
		t.Errorf("self-approval under four-eyes: %v", err)
	}
	if _, err := f.svc.Approve(ctx, op, a.ID, ""); err == nil {
		t.Error("an L1 operator approved")
	}
	if a, err = f.svc.Approve(ctx, admin, a.ID, "ok"); err != nil || a.Status != autoresponse.StatusRunning {
		t.Fatalf("admin approval = %+v, %v", a, err)
	}
	if got := f.jobs.specs[0]; got.Action != "firewall.isolate" || got.Args["servers"] != "192.0.2.1" {
		t.Errorf("isolation job = %+v", got)
	}
	// A block on one endpoint needs no approval; fleet-wide does.
	b, err := f.svc.Request(ctx, op, autoresponse.Request{Kind: "block_ip", Value: "203.0.113.5", Endpoints: eps})
	if err != nil || b.Status != autoresponse.StatusRunning || b.DecisionID == 0 {
		t.Errorf("endpoint block = %+v, %v", b, err)
	}
	b, err = f.svc.Request(ctx, op, autoresponse.Request{Kind: "block_ip", Value: "203.0.113.6"})
	if err != nil || b.Status != autoresponse.StatusPending {
		t.Errorf("fleet-wide block = %+v, %v; want pending", b, err)
	}
	for _, bad := range []autoresponse.Request{
		{Kind: "format_disk"},
		{Kind: "block_ip", Value: "10.0.0.0/8"},
		{Kind: "block_ip", Value: "127.0.0.1"},
		{Kind: "kill_process", Endpoints: eps, PID: 99},
		{Kind: "lock_user", Endpoints: eps, User: "root"},
		{Kind: "block_ip", Value: "203.0.113.7", Endpoints: []byte(`["nope"]`)},
	} {
		if _, err := f.svc.Request(ctx, op, bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	all, _ := f.svc.List(ctx, store.ResponseFilter{})
	if len(all) != 3 {
		t.Errorf("%d actions stored, want 3 (bad requests store nothing)", len(all))
	}
}
