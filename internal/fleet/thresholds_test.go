package fleet

import (
	"context"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/store"
)

// opsAlerts records what the service fires and resolves.
type opsAlerts struct {
	mu       sync.Mutex
	firing   map[string]alert.Alert
	resolved []string
}

func (a *opsAlerts) Fire(ctx context.Context, al alert.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.firing[al.Fingerprint] = al
	return nil
}

func (a *opsAlerts) Resolve(ctx context.Context, fp string, at time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.firing[fp]; ok {
		a.resolved = append(a.resolved, fp)
		delete(a.firing, fp)
	}
	return nil
}

func (a *opsAlerts) get(fp string) (alert.Alert, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.firing[fp]
	return al, ok
}

type opsEvents struct {
	mu  sync.Mutex
	evs []event.Event
}

func (e *opsEvents) Write(ctx context.Context, evs []event.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, evs...)
	return nil
}

type opsEnv struct {
	svc    *Service
	st     *store.Store
	alerts *opsAlerts
	events *opsEvents
	ep     store.Endpoint
	seq    uint64
}

func newOpsEnv(t *testing.T, hostname string) *opsEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &opsEnv{st: st, alerts: &opsAlerts{firing: map[string]alert.Alert{}}, events: &opsEvents{}}
	e.svc = New(Options{Store: st, Alerts: e.alerts, Events: e.events})
	tok, _, err := e.svc.CreateEnrollmentToken(ctx, store.Actor{Name: "admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Enroll(ctx, agentproto.EnrollRequest{Token: tok, Hostname: hostname, OS: "linux"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if e.ep, err = st.Endpoint(ctx, resp.AgentID); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *opsEnv) batch(t *testing.T, b agentproto.Batch) {
	t.Helper()
	e.seq++
	b.BatchID, b.AgentID, b.Seq = newID(), e.ep.ID, e.seq
	if b.SentAt.IsZero() {
		b.SentAt = time.Now().UTC()
	}
	if _, err := e.svc.ApplyBatch(context.Background(), e.ep, b); err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
}

func TestThresholdPendingFiringResolved(t *testing.T) {
	e := newOpsEnv(t, "web1")
	ctx := context.Background()
	rule := ThresholdRule{Name: "disk-full", Metric: "disk.used_percent", Labels: map[string]string{"mount": "/"}, Op: ">", Value: 90, For: 10 * time.Minute, Severity: "critical"}
	if err := e.svc.SetThresholds(ctx, []ThresholdRule{rule}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	sample := func(at time.Duration, mount string, v float64) {
		e.batch(t, agentproto.Batch{SentAt: t0.Add(at), Metrics: []agentproto.Sample{{Time: t0.Add(at), Name: "disk.used_percent", Labels: map[string]string{"mount": mount}, Value: v}}})
	}
	root := map[string]string{"mount": "/"}
	fp := ThresholdFingerprint("disk-full", e.ep.ID, root)
	state := func() string {
		st, err := e.svc.ThresholdStates(ctx, e.ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) == 0 {
			return "ok"
		}
		return st[0].State
	}

	sample(0, "/", 50)
	sample(30*time.Second, "/", 95) // pending from here
	if state() != ThresholdPending {
		t.Fatalf("state after first high sample = %s, want pending", state())
	}
	sample(5*time.Minute, "/", 96)
	sample(5*time.Minute, "/data", 99) // another series, not selected by the labels
	if _, ok := e.alerts.get(fp); ok || state() != ThresholdPending {
		t.Fatalf("fired before 10m: state %s", state())
	}
	sample(10*time.Minute, "/", 91) // back to pending? no: still above, but only 9m30s
	if _, ok := e.alerts.get(fp); ok {
		t.Fatal("fired after 9m30s")
	}
	sample(10*time.Minute+30*time.Second, "/", 93)
	a, ok := e.alerts.get(fp)
	if !ok || state() != ThresholdFiring {
		t.Fatalf("not firing after 10m above: state %s", state())
	}
	if a.Team != alert.TeamNOC || a.Origin != alert.OriginNatural || a.Severity != "critical" || a.Labels["endpoint"] != e.ep.ID ||
		a.Labels["host"] != "web1" || a.Labels["mount"] != "/" || a.Labels["alertname"] != "disk-full" {
		t.Errorf("alert = %+v", a)
	}
	// A late replay of an older sample changes nothing.
	sample(time.Minute, "/", 10)
	if _, ok := e.alerts.get(fp); !ok {
		t.Fatal("an out-of-order sample resolved the alert")
	}
	sample(11*time.Minute, "/", 80)
	if _, ok := e.alerts.get(fp); ok || state() != "ok" {
		t.Fatalf("not resolved when back under: state %s", state())
	}
	// A dip resets pending.
	sample(12*time.Minute, "/", 95)
	sample(15*time.Minute, "/", 85)
	sample(20*time.Minute, "/", 95)
	sample(29*time.Minute, "/", 95)
	if _, ok := e.alerts.get(fp); ok {
		t.Fatal("pending was not reset by the dip")
	}
	// Removing the rule resolves its firing alert.
	sample(31*time.Minute, "/", 95)
	if _, ok := e.alerts.get(fp); !ok {
		t.Fatal("not firing again")
	}
	if err := e.svc.SetThresholds(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.alerts.get(fp); ok {
		t.Fatal("removed rule's alert still firing")
	}
	if err := e.svc.SetThresholds(ctx, []ThresholdRule{{Name: "x", Metric: "m", Op: "=>"}}); err == nil {
		t.Error("bad operator accepted")
	}
}

func TestForecastKnownSlope(t *testing.T) {
	// 1 GiB/day growth on a 100 GiB disk at 40 GiB: full in 60 days.
	const gib = float64(1 << 30)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var pts []store.DiskHour
	for h := 0; h < 72; h++ {
		used := 37*gib + float64(h)/24*gib
		pts = append(pts, store.DiskHour{Mount: "/", Hour: t0.Add(time.Duration(h) * time.Hour), UsedBytes: used, TotalBytes: 100 * gib})
	}
	f := ForecastPoints("/", pts, 12)
	if f.Status != ForecastOK || f.DaysUntilFull == nil {
		t.Fatalf("forecast = %+v", f)
	}
	wantDays := (100*gib - (37*gib + 71.0/24*gib)) / gib
	if math.Abs(*f.DaysUntilFull-wantDays) > 1e-6 || math.Abs(f.GrowthBytesPerDay-gib) > 1 {
		t.Errorf("days = %v (want %v), growth = %v (want %v)", *f.DaysUntilFull, wantDays, f.GrowthBytesPerDay, gib)
	}
	if f := ForecastPoints("/", pts[:5], 12); f.Status != ForecastInsufficient {
		t.Errorf("5 points: status %s, want insufficient_data", f.Status)
	}
	flat := make([]store.DiskHour, len(pts))
	for i, p := range pts {
		p.UsedBytes = 50*gib - float64(i)*1e6 // shrinking
		flat[i] = p
	}
	if f := ForecastPoints("/", flat, 12); f.Status != ForecastNotGrowing || f.DaysUntilFull != nil {
		t.Errorf("shrinking: %+v", f)
	}
}

func TestForecastFromSamplesAlertsAndPersists(t *testing.T) {
	e := newOpsEnv(t, "db1")
	ctx := context.Background()
	if err := e.svc.SetForecast(ForecastOptions{AlertDays: 10, MinPoints: 12}); err != nil {
		t.Fatal(err)
	}
	const total = 100e9
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour)
	// 5 GB/day from 40 GB, samples every 20 minutes for 2 days: full in
	// about 10 days at the end, then crossing below 10.
	send := func(from, to int) {
		for i := from; i < to; i++ {
			at := t0.Add(time.Duration(i) * 20 * time.Minute)
			used := 40e9 + 5e9*at.Sub(t0).Hours()/24
			lbl := map[string]string{"mount": "/var"}
			e.batch(t, agentproto.Batch{SentAt: at, Metrics: []agentproto.Sample{
				{Time: at, Name: "disk.used_bytes", Labels: lbl, Value: used},
				{Time: at, Name: "disk.total_bytes", Labels: lbl, Value: total},
			}})
		}
	}
	send(0, 3*24) // 24 hours
	fs, err := e.svc.Forecasts(ctx, e.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Status != ForecastOK || fs[0].Points != 24 {
		t.Fatalf("forecasts = %+v", fs)
	}
	if g := fs[0].GrowthBytesPerDay; math.Abs(g-5e9) > 1e3 {
		t.Errorf("growth = %v, want 5e9/day", g)
	}
	fp := ForecastFingerprint(e.ep.ID, "/var")
	if _, ok := e.alerts.get(fp); ok {
		t.Fatalf("alert at %.1f days, threshold 10", *fs[0].DaysUntilFull)
	}
	send(3*24, 3*24*3) // two more days: about 9 days left
	fs, _ = e.svc.Forecasts(ctx, e.ep.ID)
	if a, ok := e.alerts.get(fp); !ok || a.Labels["mount"] != "/var" || a.Team != alert.TeamNOC {
		t.Fatalf("no forecast alert at %.2f days left: %+v", *fs[0].DaysUntilFull, a)
	}
	// A new service on the same store (a restart) has the stored points.
	svc2 := New(Options{Store: e.st})
	fs2, err := svc2.Forecasts(ctx, e.ep.ID)
	if err != nil || len(fs2) != 1 || fs2[0].Points != fs[0].Points-1 || fs2[0].Status != ForecastOK {
		t.Fatalf("after restart: %+v %v (before: %d points)", fs2, err, fs[0].Points)
	}
	if _, err := e.svc.Forecasts(ctx, "nope"); err == nil {
		t.Error("forecast of an unknown endpoint: no error")
	}
}

func TestHostRootCause(t *testing.T) {
	e := newOpsEnv(t, "web1.example.com")
	ctx := context.Background()
	now := time.Now().UTC()
	if err := e.svc.Heartbeat(ctx, e.ep, agentproto.Heartbeat{AgentID: e.ep.ID, IntervalMS: 30000}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	e.batch(t, agentproto.Batch{Inventory: &agentproto.Inventory{Hostname: "web1", IPs: []string{"10.1.2.3/24", "127.0.0.1/8", "fe80::1/64"}}})
	addrs, err := e.st.EndpointAddresses(ctx, e.ep.ID)
	if err != nil || len(addrs) != 1 || addrs[0] != "10.1.2.3" {
		t.Fatalf("addresses = %v %v (loopback and link-local are no identity)", addrs, err)
	}
	for _, host := range []string{"web1", "WEB1.example.com", "10.1.2.3"} {
		rc, hold, err := e.svc.HostRootCause(ctx, host, now)
		if err != nil || rc != "" || !hold.IsZero() {
			t.Errorf("%s while online: %q %v %v", host, rc, hold, err)
		}
	}
	// A missed heartbeat: hold until the verdict is due.
	_, hold, _ := e.svc.HostRootCause(ctx, "10.1.2.3", now.Add(50*time.Second))
	if hold.IsZero() || hold.Before(now.Add(90*time.Second)) {
		t.Errorf("hold = %v, want around last seen + 3 intervals + check period", hold)
	}
	if err := e.svc.CheckUnresponsive(ctx, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"web1", "web1.example.com", "10.1.2.3"} {
		rc, _, _ := e.svc.HostRootCause(ctx, host, now.Add(2*time.Minute))
		if rc != "endpoint:web1.example.com" {
			t.Errorf("%s while unresponsive: root cause %q", host, rc)
		}
	}
	for _, host := range []string{"web2", "10.1.2.4", "example.com", ""} {
		if rc, _, _ := e.svc.HostRootCause(ctx, host, now.Add(2*time.Minute)); rc != "" {
			t.Errorf("%s: root cause %q", host, rc)
		}
	}
}

func TestLogEventsNormalized(t *testing.T) {
	e := newOpsEnv(t, "web1")
	prio := 5
	e.batch(t, agentproto.Batch{Logs: []agentproto.LogRecord{
		{Time: time.Now().UTC(), Source: agentproto.LogSourceFile, Path: "/var/log/auth.log",
			Line: "Nov 27 08:00:01 web1 sshd[812]: Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2"},
		{Time: time.Now().UTC(), Source: agentproto.LogSourceFile, Path: "/var/log/auth.log",
			Line: "2026-11-27T08:00:02.123456+00:00 web1 sshd[813]: Accepted publickey for alice from 198.51.100.4 port 40022 ssh2: ED25519 SHA256:x"},
		{Time: time.Now().UTC(), Source: agentproto.LogSourceFile, Path: "/var/log/nginx/access.log",
			Line: `198.51.100.9 - - [27/Nov/2026:08:00:03 +0000] "GET /admin HTTP/1.1" 404 153 "-" "curl/8.0"`},
		{Time: time.Now().UTC(), Source: agentproto.LogSourceJournal, Unit: "ssh.service", Identifier: "sshd", PID: 900, Priority: &prio,
			Line: "Failed password for root from 203.0.113.8 port 40000 ssh2"},
	}})
	evs := e.events.evs
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	for i, ev := range evs {
		if ev.Host != "web1" || ev.Input != InputAgent || ev.Raw == "" || ev.Fields["agent.id"] != e.ep.ID {
			t.Errorf("event %d: host %q input %q raw %q fields %v", i, ev.Host, ev.Input, ev.Raw, ev.Fields)
		}
	}
	checks := []struct {
		i     int
		field string
		want  any
	}{
		{0, "source.ip", "203.0.113.7"}, {0, "event.outcome", "failure"}, {0, "process.name", "sshd"}, {0, "process.pid", float64(812)},
		{0, "log.file.path", "/var/log/auth.log"},
		{1, "source.ip", "198.51.100.4"}, {1, "user.name", "alice"}, {1, "event.outcome", "success"},
		{2, "http.response.status_code", float64(404)}, {2, "source.ip", "198.51.100.9"},
		{3, "source.ip", "203.0.113.8"}, {3, "systemd.unit", "ssh.service"}, {3, "log.syslog.severity.name", "notice"}, {3, "process.pid", float64(900)},
	}
	for _, c := range checks {
		if got := evs[c.i].Fields[c.field]; got != c.want {
			t.Errorf("event %d %s = %v (%T), want %v", c.i, c.field, got, got, c.want)
		}
	}
	if want := time.Date(2026, 11, 27, 8, 0, 2, 123456000, time.UTC); !evs[1].Time.Equal(want) {
		t.Errorf("RFC 3339 stamp: time %v, want %v", evs[1].Time, want)
	}
	// Bad records refuse the batch, and nothing is written.
	n := len(e.events.evs)
	e.seq++
	_, err := e.svc.ApplyBatch(context.Background(), e.ep, agentproto.Batch{BatchID: newID(), AgentID: e.ep.ID, Seq: e.seq, SentAt: time.Now(),
		Logs: []agentproto.LogRecord{{Source: "tape", Line: "x"}}})
	if err == nil || len(e.events.evs) != n {
		t.Errorf("bad source: err %v, events %d -> %d", err, n, len(e.events.evs))
	}
}
