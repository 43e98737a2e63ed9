package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/store"
)

// fleetEnv is env with a real fleet.Service and two enrolled endpoints:
// web1 (online, with metrics and an inventory) and db1 (unresponsive).
type fleetEnv struct {
	*env
	fl         *fleet.Service
	web1, db1  string
	clockMu    sync.Mutex
	fleetClock time.Time
}

func (f *fleetEnv) fleetNow() time.Time {
	f.clockMu.Lock()
	defer f.clockMu.Unlock()
	return f.fleetClock
}

func (f *fleetEnv) setFleetNow(t time.Time) {
	f.clockMu.Lock()
	f.fleetClock = t
	f.clockMu.Unlock()
}

// newFleetEnv boots env, then serves a console that also has the fleet
// (the env's own console stays up but unused).
func newFleetEnv(t testing.TB) *fleetEnv {
	t.Helper()
	return newFleetEnvWith(t, nil)
}

// newFleetEnvWith is newFleetEnv with a hook that completes the console's
// Options (a Responder, say) before the console is made.
func newFleetEnvWith(t testing.TB, opts func(*fleetEnv, *Options)) *fleetEnv {
	t.Helper()
	f := &fleetEnv{env: newEnv(t)}
	ctx := context.Background()
	now := time.Now().UTC()
	f.fl = fleet.New(fleet.Options{Store: f.st, Metrics: f.ev, Now: f.fleetNow})

	f.setFleetNow(now.Add(-time.Hour))
	f.db1 = f.enroll("db1")
	f.setFleetNow(now)
	f.web1 = f.enroll("web1")
	if err := f.fl.CheckUnresponsive(ctx, now); err != nil {
		t.Fatal(err)
	}
	// web1 reports an hour of metrics and its inventory.
	var samples []agentproto.Sample
	for i := 60; i >= 0; i-- {
		at := now.Add(-time.Duration(i) * time.Minute)
		samples = append(samples,
			agentproto.Sample{Time: at, Name: "cpu.percent", Value: float64(10 + i%7)},
			agentproto.Sample{Time: at, Name: "mem.used_percent", Value: 42},
			agentproto.Sample{Time: at, Name: "disk.used_percent", Labels: map[string]string{"mount": "/"}, Value: 91},
			agentproto.Sample{Time: at, Name: "disk.used_percent", Labels: map[string]string{"mount": "/var"}, Value: 55})
	}
	inv := &agentproto.Inventory{CollectedAt: now, Hostname: "web1", OS: "linux", Platform: "debian", PlatformVersion: "13",
		Kernel: "6.12.0", Arch: "x86_64", Hardware: agentproto.Hardware{CPUModel: "Test CPU", CPUs: 4, MemoryBytes: 8 << 30},
		IPs:      []string{"192.0.2.10"},
		Packages: []agentproto.Package{{Name: "openssh-server", Version: "1:9.2p1-2"}, {Name: "openssl", Version: "3.0.15-1"}, {Name: "nginx", Version: "1.22.1"}},
		Services: []string{"sshd.service", "nginx.service"}, Ports: []agentproto.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 22}},
		Users: []agentproto.User{{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/bash"}}}
	f.report(f.web1, 1, samples, inv, func(b *agentproto.Batch) {
		b.Updates = &agentproto.Updates{CollectedAt: now, Manager: "apt", RebootRequired: true, RebootPackages: []string{"linux-image-amd64"},
			Pending: []agentproto.PendingUpdate{
				{Name: "openssl", Arch: "amd64", CurrentVersion: "3.0.15-1", Version: "3.0.16-1", Origin: "Debian-Security", Security: true},
				{Name: "nginx", Arch: "amd64", CurrentVersion: "1.22.1", Version: "1.22.2"}}}
		b.Files = []agentproto.FileState{
			{Path: "/etc/passwd", Exists: true, SHA256: strings.Repeat("ab", 32), Size: 1234, Mode: 0o644, MTime: now},
			{Path: "/etc/sudoers.d/extra", Exists: false}}
	})
	if _, err := f.fl.CreateBackupJob(ctx, store.Actor{Name: "test"}, store.BackupJob{Name: "nightly-db", EndpointID: f.web1,
		Schedule: "0 2 * * *", Grace: check.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.report(f.web1, 2, nil, nil, func(b *agentproto.Batch) {
		b.Backups = []agentproto.BackupRun{{RunID: "0b7c1d2e-1111-4222-8333-444455556666", Job: "nightly-db", Command: "restic",
			StartedAt: now.Add(-10 * time.Minute), EndedAt: now.Add(-5 * time.Minute), ExitCode: 0, DurationMS: 300000,
			Bytes: 3 << 30, BytesSource: agentproto.BytesFromSize}}
	})
	f.report(f.db1, 1, nil, &agentproto.Inventory{CollectedAt: now, Hostname: "db1", OS: "linux",
		Packages: []agentproto.Package{{Name: "openssl", Version: "3.0.11-1"}, {Name: "postgresql", Version: "15.8"}}})

	o := Options{Store: f.st, NOC: f.svc, Events: f.ev, Response: f.resp, Fleet: f.fl}
	if opts != nil {
		opts(f, &o)
	}
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	t.Cleanup(u.Close)
	f.ui, f.srv = u, srv
	return f
}

// creds keeps each test endpoint's credential, to report as it.
var fleetCreds sync.Map

func (f *fleetEnv) enroll(host string) string {
	f.t.Helper()
	ctx := context.Background()
	tok, _, err := f.fl.CreateEnrollmentToken(ctx, store.Actor{Name: "test"}, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.fl.Enroll(ctx, agentproto.EnrollRequest{Token: tok, Hostname: host, OS: "linux", Platform: "debian",
		AgentVersion: "0.9.1"}, "127.0.0.1")
	if err != nil {
		f.t.Fatal(err)
	}
	fleetCreds.Store(resp.AgentID, resp.Credential)
	return resp.AgentID
}

func (f *fleetEnv) report(id string, seq uint64, samples []agentproto.Sample, inv *agentproto.Inventory, more ...func(*agentproto.Batch)) {
	f.t.Helper()
	ctx := context.Background()
	cred, _ := fleetCreds.Load(id)
	e, err := f.fl.Authenticate(ctx, cred.(string))
	if err != nil {
		f.t.Fatal(err)
	}
	// Endpoint id + seq make a unique, valid lowercase UUID per batch.
	batch := fmt.Sprintf("%s%04x", id[:len(id)-4], seq)
	b := agentproto.Batch{BatchID: batch, AgentID: id, Seq: seq, SentAt: time.Now().UTC(), Metrics: samples, Inventory: inv}
	for _, fn := range more {
		fn(&b)
	}
	if _, err := f.fl.ApplyBatch(ctx, e, b); err != nil {
		f.t.Fatal(err)
	}
}

func TestEndpointPagesRenderForEveryRole(t *testing.T) {
	e := newFleetEnv(t)
	all := func(code int) map[string]int {
		return map[string]int{auth.RoleAdmin: code, auth.RoleOperator: code, auth.RoleViewer: code}
	}
	pages := []struct {
		path    string
		want    map[string]int
		has     []string
		hasNot  []string
		opsOnly []string // shown to operators and admins, not to viewers
	}{
		{"/endpoints", all(200), []string{"web1", "db1", "st-up\">online", "st-down\">unresponsive", "0.9.1", "2 enrolled",
			`href="/endpoints/` + e.web1 + `"`, `class="security-updates"><span class="chip st-down">1</span>`, `href="/fleet/patches"`, `href="/backups"`}, nil, nil},
		{"/endpoints?status=unresponsive", all(200), []string{"db1"}, []string{">web1<"}, nil},
		{"/endpoints?q=WEB", all(200), []string{"web1"}, []string{">db1<"}, nil},
		{"/endpoints?q=nothing-like-this", all(200), []string{"No endpoint matches"}, nil, nil},
		{"/endpoints?status=gone", all(400), nil, nil, nil},
		{"/endpoints/" + e.web1, all(200), []string{`id="endpoint-status">online`, "CPU", "Memory", "Disk /var", "st-down\">91.0%",
			"<polyline", "debian 13", "Test CPU", "8.0 GiB", "192.0.2.10", "openssh-server", "sshd.service", "0.0.0.0:22", "alice",
			"Reboot required by linux-image-amd64", `id="security-count">1`, "3.0.16-1", "nightly-db", `st-up">ok`, "3.0 GiB",
			"/etc/passwd", "-rw-r--r--", "abababababababab…", "missing", "Storage forecast", "Threshold rules", "No jobs yet"},
			nil, []string{`id="run-job"`, `id="patch-now"`, `<option>patch.security</option>`}},
		{"/endpoints/" + e.web1 + "?pkg=openssl", all(200), []string{"3.0.15-1"}, []string{"openssh-server"}, nil},
		{"/endpoints/" + e.web1 + "?period=7d", all(200), []string{`aria-current="true">7d`, "<polyline"}, nil, nil},
		{"/endpoints/" + e.web1 + "?period=2d", all(400), nil, nil, nil},
		{"/endpoints/" + e.db1, all(200), []string{`id="endpoint-status">unresponsive`, "No metric samples", "postgresql"}, nil, nil},
		{"/endpoints/no-such-endpoint", all(404), nil, nil, nil},
		{"/fleet/software", all(200), []string{"2 of 2 endpoints", `data-package="openssl"`, "3.0.11-1", "3.0.15-1", "postgresql"}, nil, nil},
		{"/fleet/software?q=postgres", all(200), []string{"postgresql"}, []string{`data-package="openssl"`}, nil},
		{"/fleet/patches", all(200), []string{`data-package="openssl"`, "3.0.15-1 → 3.0.16-1", `id="compliance-percent">`, "1 reporting updates"},
			nil, []string{`class="btn sm patch-job"`}},
		{"/fleet/patches?days=-3", all(400), nil, nil, nil},
		{"/backups", all(200), []string{"nightly-db", `st-up">ok`, "3.0 GiB", "0 2 * * *", ">web1<"}, nil, nil},
	}
	for _, role := range auth.Roles {
		t.Run(role, func(t *testing.T) {
			c, _ := e.login(role, passwords[role])
			for _, p := range pages {
				resp, body := e.get(c, p.path)
				if resp.StatusCode != p.want[role] {
					t.Errorf("GET %s: status %d, want %d\n%.400s", p.path, resp.StatusCode, p.want[role], body)
					continue
				}
				for _, s := range p.has {
					if !strings.Contains(body, s) {
						t.Errorf("GET %s: body lacks %q", p.path, s)
					}
				}
				for _, s := range p.hasNot {
					if strings.Contains(body, s) {
						t.Errorf("GET %s: body has %q", p.path, s)
					}
				}
				for _, s := range p.opsOnly {
					if got := strings.Contains(body, s); got != (role != auth.RoleViewer) {
						t.Errorf("GET %s as %s: %q shown = %v", p.path, role, s, got)
					}
				}
				assertSafeHTML(t, p.path, body)
			}
			_, body := e.get(c, "/endpoints")
			for _, link := range []string{`href="/endpoints"`, `href="/decisions"`} {
				if !strings.Contains(body, link) {
					t.Errorf("nav lacks %s", link)
				}
			}
		})
	}
}

func TestEndpointPagesWithoutFleet(t *testing.T) {
	e := newEnv(t) // the plain env's console has no fleet
	c, _ := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	for _, p := range []string{"/endpoints", "/endpoints/x", "/fleet/software", "/fleet/patches", "/backups"} {
		if resp, body := e.get(c, p); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "fleet is not connected") {
			t.Errorf("GET %s without fleet: %d\n%.300s", p, resp.StatusCode, body)
		}
	}
	// Without the active-response service: no approvals, decisions still
	// work (stored directly).
	if resp, body := e.get(c, "/approvals"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Errorf("GET /approvals without responder: %d", resp.StatusCode)
	}
	if resp, body := e.get(c, "/decisions"); resp.StatusCode != http.StatusOK || strings.Contains(body, "approvals-link") {
		t.Errorf("GET /decisions without responder: %d", resp.StatusCode)
	}
	oc, csrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	if resp, _ := e.post(oc, "/responses/isolate_host", url.Values{"csrf": {csrf}, "host": {"web1"}}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("isolate without responder: %d", resp.StatusCode)
	}
}

func TestBucketize(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	got := bucketize(samplesAt(from, []int{0, 1, 29, 59, 61}, []float64{10, 20, 30, 40, 50}), from, to, 2)
	// Bucket 0 holds minutes 0, 1, 29; bucket 1 holds 59 and 61 (clamped).
	want := []float64{20, 45}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bucketize = %v, want %v", got, want)
	}
	if got := bucketize(nil, from, to, 60); got != nil {
		t.Errorf("no samples: %v", got)
	}
	if s := string(pctSparkline([]float64{0, 100}, 120, 24)); !strings.Contains(s, `points="0.0,23.0 120.0,1.0"`) {
		t.Errorf("sparkline not on a 0-100 scale: %s", s)
	}
}

func samplesAt(from time.Time, minutes []int, values []float64) []eventstore.MetricSample {
	out := make([]eventstore.MetricSample, len(minutes))
	for i, m := range minutes {
		out[i] = eventstore.MetricSample{Time: from.Add(time.Duration(m) * time.Minute), Value: values[i]}
	}
	return out
}

// The fleet service implements every optional part the pages show; a
// changed signature fails here instead of hiding a section.
var (
	_ FleetReader   = (*fleet.Service)(nil)
	_ FleetPatches  = (*fleet.Service)(nil)
	_ FleetSoftware = (*fleet.Service)(nil)
	_ FleetJobs     = (*fleet.Service)(nil)
	_ FleetBackups  = (*fleet.Service)(nil)
	_ FleetFiles    = (*fleet.Service)(nil)
	_ FleetCapacity = (*fleet.Service)(nil)
)

func TestEndpointJobs(t *testing.T) {
	e := newFleetEnv(t)
	ctx := context.Background()
	jobs := func() []store.Job {
		t.Helper()
		js, err := e.fl.Jobs(ctx, store.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	path := "/endpoints/" + e.web1 + "/jobs"
	vc, vcsrf := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	if resp, _ := e.post(vc, path, url.Values{"csrf": {vcsrf}, "action": {"patch.security"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer job: %d", resp.StatusCode)
	}
	c, csrf := e.login(auth.RoleOperator, passwords[auth.RoleOperator])
	if resp, _ := e.post(c, path, url.Values{"action": {"patch.security"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("job without csrf: %d", resp.StatusCode)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// Refused jobs: a flash names the field, nothing is queued.
	for _, tc := range []struct {
		form url.Values
		has  string
	}{
		{form("action", "shell"), `action: "shell" is not one of`},
		{form("action", "rm -rf"), "action:"},
		{form("action", "package.install"), "packages: package.install needs at least one package"},
		{form("action", "package.install", "packages", "-oops"), "is not a package name"},
		{form("action", "patch.security", "window_hours", "0"), "window_hours:"},
	} {
		resp, _ := e.post(c, path, tc.form)
		if _, msg := e.flashOf(c, resp); !strings.Contains(msg, tc.has) {
			t.Errorf("%v: error %q, want %q", tc.form, msg, tc.has)
		}
	}
	if n := len(jobs()); n != 0 {
		t.Fatalf("refused jobs queued %d", n)
	}
	if resp, _ := e.post(c, "/endpoints/nope/jobs", form("action", "patch.security")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("job on unknown endpoint: %d", resp.StatusCode)
	}

	resp, _ := e.post(c, path, form("action", "package.upgrade", "packages", "openssl, nginx", "window_hours", "2", "reason", "CVE"))
	if flash, _ := e.flashOf(c, resp); !strings.Contains(flash, "Queued job") || !strings.Contains(flash, "on web1") {
		t.Errorf("create job: %q", flash)
	}
	js := jobs()
	if len(js) != 1 || js[0].Action != "package.upgrade" || strings.Join(js[0].Packages, ",") != "openssl,nginx" ||
		js[0].CreatedBy != "operator" || js[0].Status != store.JobQueued || js[0].NotAfter.Sub(js[0].NotBefore) != 2*time.Hour {
		t.Fatalf("jobs = %+v", js)
	}
	_, body := e.get(c, "/endpoints/"+e.web1)
	if !strings.Contains(body, `data-job="`+js[0].ID+`"`) || !strings.Contains(body, `action="/jobs/`+js[0].ID+`/cancel"`) {
		t.Errorf("endpoint page lacks the job or its cancel button")
	}
	_, body = e.get(vc, "/endpoints/"+e.web1)
	if strings.Contains(body, "/cancel") {
		t.Errorf("viewer sees a cancel button")
	}
	if resp, _ := e.post(vc, "/jobs/"+js[0].ID+"/cancel", url.Values{"csrf": {vcsrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer cancel: %d", resp.StatusCode)
	}
	if resp, _ := e.post(vc, "/fleet/patches/jobs", url.Values{"csrf": {vcsrf}, "package": {"openssl"}, "arch": {"amd64"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer fleet patch: %d", resp.StatusCode)
	}
	resp, _ = e.post(c, "/jobs/"+js[0].ID+"/cancel", form())
	if flash, _ := e.flashOf(c, resp); !strings.Contains(flash, "canceled") {
		t.Errorf("cancel: %q", flash)
	}
	resp, _ = e.post(c, "/jobs/"+js[0].ID+"/cancel", form())
	if _, msg := e.flashOf(c, resp); !strings.Contains(msg, "Job not canceled") {
		t.Errorf("second cancel: %q", msg)
	}
	if resp, _ := e.post(c, "/jobs/nope/cancel", form()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("cancel unknown: %d", resp.StatusCode)
	}

	// The fleet patch view upgrades one security update where it is missing.
	resp, _ = e.post(c, "/fleet/patches/jobs", form("package", "openssl", "arch", "amd64"))
	if flash, _ := e.flashOf(c, resp); !strings.Contains(flash, "Queued 1 upgrade job(s) of openssl:amd64") {
		t.Errorf("fleet patch: %q", flash)
	}
	resp, _ = e.post(c, "/fleet/patches/jobs", form("package", "bash", "arch", "amd64"))
	if _, msg := e.flashOf(c, resp); !strings.Contains(msg, "no endpoint misses") {
		t.Errorf("fleet patch of nothing: %q", msg)
	}
	// Both jobs carry the frozen fleet clock's time, so their order is not
	// defined: find the new one.
	js = jobs()
	var upgrade *store.Job
	for i := range js {
		if js[i].Status == store.JobQueued {
			upgrade = &js[i]
		}
	}
	if len(js) != 2 || upgrade == nil || upgrade.Action != "package.upgrade" || upgrade.EndpointID != e.web1 ||
		strings.Join(upgrade.Packages, ",") != "openssl:amd64" {
		t.Errorf("jobs after fleet patch = %+v", js)
	}
	for _, action := range []string{"job.create", "job.cancel"} {
		entries, err := e.st.ListAudit(ctx, store.AuditFilter{Actor: "operator", Action: action})
		if err != nil || len(entries) == 0 {
			t.Errorf("audit %s: %v, %v", action, entries, err)
		}
	}
}
