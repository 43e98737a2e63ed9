package response

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/store"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder is a notify sender that records what would be sent.
type recorder struct{ ch chan sent }

type sent struct {
	Channel string
	Msg     notify.Message
}

func (r *recorder) Send(ctx context.Context, ch notify.Channel, m notify.Message) (int, error) {
	r.ch <- sent{ch.Name, m}
	return 200, nil
}

func (r *recorder) next(t *testing.T) sent {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no notification sent")
	}
	return sent{}
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-r.ch:
		t.Fatalf("unexpected notification %+v", s)
	default:
	}
}

type fixture struct {
	svc   *Service
	st    *store.Store
	clock *fakeClock
	rec   *recorder
	ctx   context.Context
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, rc alert.RouteConfig, inhibit []alert.InhibitRule) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(testWriter(t), nil))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: t0}
	svc, err := New(ctx, Options{Store: st, Logger: log, Now: clock.Now, PublicURL: "http://nocsoc.test"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ch: make(chan sent, 100)}
	svc.SetDispatcher(notify.NewDispatcher(notify.DispatcherOptions{Sender: rec, Log: svc, Logger: log}))
	route, err := alert.CompileRoute(rc)
	if err != nil {
		t.Fatal(err)
	}
	tiers := []oncall.Tier{
		{Name: "L1", Timeout: check.Duration(5 * time.Minute), Targets: []oncall.Target{{Type: "channel", Name: "l1"}}},
		{Name: "L2", Timeout: check.Duration(10 * time.Minute), Targets: []oncall.Target{{Type: "channel", Name: "l2"}}},
	}
	err = svc.SetRules(Rules{
		Route:   route,
		Inhibit: inhibit,
		Channels: []notify.Channel{
			{Name: "l1", Type: notify.TypeWebhook, URL: "http://127.0.0.1:1/l1"},
			{Name: "l2", Type: notify.TypeWebhook, URL: "http://127.0.0.1:1/l2"},
			{Name: "ops", Type: notify.TypeWebhook, URL: "http://127.0.0.1:1/ops"},
		},
		Policies: []oncall.Policy{{Name: "default", Tiers: tiers}},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{svc: svc, st: st, clock: clock, rec: rec, ctx: ctx}
}

func (f *fixture) fire(t *testing.T, labels map[string]string, sev string) Outcome {
	t.Helper()
	out, err := f.svc.Submit(f.ctx, Op{Kind: OpFire, Alert: alert.Alert{Title: labels["alertname"], Labels: labels, Severity: sev, Source: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func (f *fixture) tick(t *testing.T) {
	t.Helper()
	if err := f.svc.Tick(f.ctx); err != nil {
		t.Fatal(err)
	}
}

var defaultRoute = alert.RouteConfig{Team: "noc", Policy: "default", Channels: []string{"ops"}, GroupBy: []string{"alertname"}, GroupWait: new(check.Duration(30 * time.Second))}

func TestGroupingDedupAndGroupWait(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	a := f.fire(t, map[string]string{"alertname": "DiskFull", "host": "a"}, "high")
	if a.IncidentID == 0 || a.Deduplicated {
		t.Fatalf("first alert: %+v", a)
	}
	again := f.fire(t, map[string]string{"alertname": "DiskFull", "host": "a"}, "high")
	if !again.Deduplicated || again.AlertID != a.AlertID || again.IncidentID != a.IncidentID {
		t.Errorf("repeat: %+v, want deduplicated onto %+v", again, a)
	}
	b := f.fire(t, map[string]string{"alertname": "DiskFull", "host": "b"}, "high")
	if b.IncidentID != a.IncidentID || b.AlertID == a.AlertID {
		t.Errorf("same group: %+v, want a new alert on incident %d", b, a.IncidentID)
	}
	c := f.fire(t, map[string]string{"alertname": "HighLatency", "host": "a"}, "high")
	if c.IncidentID == a.IncidentID {
		t.Errorf("other group joined incident %d", a.IncidentID)
	}
	got, _ := f.st.GetAlert(f.ctx, a.AlertID)
	if got.Occurrences != 2 {
		t.Errorf("occurrences = %d, want 2", got.Occurrences)
	}
	// Nothing is paged during the group wait.
	f.tick(t)
	f.rec.none(t)
	f.clock.Advance(30 * time.Second)
	f.tick(t)
	seen := map[string]int{}
	for i := 0; i < 4; i++ { // two incidents × (l1 + ops)
		s := f.rec.next(t)
		seen[s.Channel]++
	}
	if seen["l1"] != 2 || seen["ops"] != 2 {
		t.Errorf("first pages went to %v", seen)
	}
	inc, _ := f.svc.Get(f.ctx, a.IncidentID)
	if inc.AlertCount != 2 || inc.Tier != 0 {
		t.Errorf("incident = %+v", inc)
	}
}

func TestCriticalPagesAtOnce(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	f.fire(t, map[string]string{"alertname": "SiteDown"}, "critical")
	got := map[string]bool{}
	got[f.rec.next(t).Channel] = true
	got[f.rec.next(t).Channel] = true
	if !got["l1"] || !got["ops"] {
		t.Errorf("critical alert paged %v without waiting; want l1 and ops", got)
	}
}

func TestEscalationAckResolveTimes(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	a := f.fire(t, map[string]string{"alertname": "DBDown"}, "critical")
	f.rec.next(t)
	f.rec.next(t)
	// L1 does not acknowledge within 5 minutes: L2 is paged.
	f.clock.Advance(4 * time.Minute)
	f.tick(t)
	f.rec.none(t)
	f.clock.Advance(time.Minute)
	f.tick(t)
	if s := f.rec.next(t); s.Channel != "l2" || s.Msg.Event != "escalated" || s.Msg.Tier != "L2" {
		t.Errorf("escalation sent %+v", s)
	}
	f.clock.Advance(2 * time.Minute)
	inc, err := f.svc.Acknowledge(f.ctx, store.Actor{Name: "alice"}, a.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Owner != "alice" || inc.NextEscalationAt != nil || !inc.AcknowledgedAt.Equal(t0.Add(7*time.Minute)) {
		t.Errorf("after ack: %+v", inc)
	}
	// Acknowledgement stops escalation.
	f.clock.Advance(time.Hour)
	f.tick(t)
	// The channels that were paged hear about the acknowledgement only.
	for i := 0; i < 3; i++ {
		if s := f.rec.next(t); s.Msg.Event != "acknowledged" {
			t.Errorf("after ack sent %+v", s)
		}
	}
	f.rec.none(t)
	out, err := f.svc.Submit(f.ctx, Op{Kind: OpResolve, Fingerprint: a.Fingerprint})
	if err != nil || out[0].IncidentID != a.IncidentID {
		t.Fatalf("resolve: %+v %v", out, err)
	}
	inc, _ = f.svc.Get(f.ctx, a.IncidentID)
	if inc.Status != incident.StatusResolved || !inc.ResolvedAt.Equal(t0.Add(67*time.Minute)) {
		t.Errorf("after the last alert resolved: %+v", inc)
	}
	// A duplicate resolve is a no-op.
	out, _ = f.svc.Submit(f.ctx, Op{Kind: OpResolve, Fingerprint: a.Fingerprint})
	if !out[0].Noop {
		t.Errorf("duplicate resolve: %+v", out[0])
	}
	// Closing needs resolved first; a triggered incident cannot be closed.
	b := f.fire(t, map[string]string{"alertname": "Other"}, "high")
	if _, err := f.svc.SetStatus(f.ctx, store.Actor{Name: "alice"}, b.IncidentID, incident.StatusClosed, ""); err == nil {
		t.Error("closing a triggered incident succeeded")
	}
	if _, err := f.svc.SetStatus(f.ctx, store.Actor{Name: "alice"}, a.IncidentID, incident.StatusClosed, ""); err != nil {
		t.Errorf("close resolved: %v", err)
	}
	tl, _ := f.st.Timeline(f.ctx, a.IncidentID, 100, 0)
	kinds := map[string]int{}
	for _, e := range tl {
		kinds[e.Kind]++
	}
	if kinds[incident.KindEscalated] != 2 || kinds[incident.KindStatus] != 3 || kinds[incident.KindCreated] != 1 {
		t.Errorf("timeline kinds = %v", kinds)
	}
}

func TestSilenceAndInhibition(t *testing.T) {
	f := newFixture(t, defaultRoute, []alert.InhibitRule{{Name: "site-down", SourceMatchers: []string{`alertname="SiteDown"`}, TargetMatchers: []string{`severity="high"`}, Equal: []string{"site"}}})
	if _, err := f.st.CreateSilence(f.ctx, store.Actor{Name: "bob"}, alert.Silence{Matchers: []string{`host="lab"`}, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(time.Hour), CreatedBy: "bob", Comment: "lab work", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ReloadSilences(f.ctx); err != nil {
		t.Fatal(err)
	}
	s := f.fire(t, map[string]string{"alertname": "X", "host": "lab"}, "high")
	if s.SuppressedBy == "" || s.IncidentID != 0 {
		t.Errorf("silenced alert: %+v", s)
	}
	got, _ := f.st.GetAlert(f.ctx, s.AlertID)
	if got.SuppressedBy != s.SuppressedBy {
		t.Errorf("stored alert not marked: %+v", got)
	}
	f.fire(t, map[string]string{"alertname": "SiteDown", "site": "paris", "severity": "critical"}, "critical")
	in := f.fire(t, map[string]string{"alertname": "SlowPage", "site": "paris", "severity": "high"}, "high")
	if in.SuppressedBy != "inhibit:site-down" {
		t.Errorf("inhibited alert: %+v", in)
	}
	other := f.fire(t, map[string]string{"alertname": "SlowPage", "site": "rome", "severity": "high"}, "high")
	if other.SuppressedBy != "" || other.IncidentID == 0 {
		t.Errorf("alert at another site was suppressed: %+v", other)
	}
}

func TestHandoffMergeAndSplit(t *testing.T) {
	rc := defaultRoute
	rc.Routes = []alert.RouteConfig{{Matchers: []string{`team="soc"`}, Team: "soc", Policy: "default", Channels: []string{"ops"}}}
	f := newFixture(t, rc, nil)
	a := f.fire(t, map[string]string{"alertname": "Strange"}, "high")
	actor := store.Actor{Name: "nina"}
	if _, err := f.svc.Handoff(f.ctx, actor, a.IncidentID, "soc", false, ""); err == nil {
		t.Error("hand-off without a note succeeded")
	}
	inc, err := f.svc.Handoff(f.ctx, actor, a.IncidentID, "soc", false, "logins from a new country at the same time")
	if err != nil {
		t.Fatal(err)
	}
	if inc.Team != "soc" || inc.Handoffs != 1 {
		t.Errorf("after hand-off: %+v", inc)
	}
	// The receiving team is paged at once.
	if s := f.rec.next(t); s.Msg.Team != "soc" {
		t.Errorf("hand-off page: %+v", s)
	}
	b := f.fire(t, map[string]string{"alertname": "Other"}, "high")
	merged, err := f.svc.Merge(f.ctx, actor, b.IncidentID, a.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if merged.AlertCount != 2 {
		t.Errorf("merged incident has %d alerts", merged.AlertCount)
	}
	src, _ := f.svc.Get(f.ctx, b.IncidentID)
	if src.MergedInto != a.IncidentID || src.Status != incident.StatusResolved {
		t.Errorf("merged source: %+v", src)
	}
	split, err := f.svc.MoveAlert(f.ctx, actor, b.AlertID, 0)
	if err != nil {
		t.Fatal(err)
	}
	moved, _ := f.st.GetAlert(f.ctx, b.AlertID)
	if moved.IncidentID == a.IncidentID || moved.IncidentID == 0 {
		t.Errorf("split alert on incident %d (from %d)", moved.IncidentID, split.ID)
	}
	// Resolving the split alert resolves its new incident only.
	if _, err := f.svc.Submit(f.ctx, Op{Kind: OpResolve, Fingerprint: b.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	n, _ := f.svc.Get(f.ctx, moved.IncidentID)
	o, _ := f.svc.Get(f.ctx, a.IncidentID)
	if n.Status != incident.StatusResolved || o.Status == incident.StatusResolved {
		t.Errorf("after resolving the split alert: new %s, original %s", n.Status, o.Status)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	a := f.fire(t, map[string]string{"alertname": "Persist"}, "high")
	// A new service on the same store sees the firing alert and open incident.
	svc2, err := New(f.ctx, Options{Store: f.st, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	route, _ := alert.CompileRoute(defaultRoute)
	_ = svc2.SetRules(Rules{Route: route})
	go func() { _ = svc2.Run(f.ctx) }()
	out, err := svc2.Submit(f.ctx, Op{Kind: OpFire, Alert: alert.Alert{Title: "Persist", Labels: map[string]string{"alertname": "Persist"}, Severity: "high"}})
	if err != nil {
		t.Fatal(err)
	}
	if !out[0].Deduplicated || out[0].IncidentID != a.IncidentID {
		t.Errorf("after restart: %+v, want dedup onto incident %d", out[0], a.IncidentID)
	}
}

func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "state.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := New(ctx, Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	route, _ := alert.CompileRoute(defaultRoute)
	_ = svc.SetRules(Rules{Route: route})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = svc.Run(rctx) }()
	// Many concurrent senders, as behind the HTTP intake: their alerts
	// share group commits.
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_, err := svc.Submit(ctx, Op{Kind: OpFire, Alert: alert.Alert{Title: "load", Severity: "high",
				Labels: map[string]string{"alertname": fmt.Sprintf("A%d", i%500), "host": fmt.Sprintf("h%d", i%2000)}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}

type tw struct{ t *testing.T }

func (w tw) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
func testWriter(t *testing.T) io.Writer  { return tw{t} }

// TestSubmitAfterStop: once Run has returned, Submit with a context that
// is never cancelled (the SOC pipeline drains its queue that way at
// shutdown) must fail with ErrStopped instead of waiting forever — even
// when the queue is full.
func TestSubmitAfterStop(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := New(ctx, Options{Store: st, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(rctx) }()
	cancel()
	<-ran
	done := make(chan error, 3)
	for range 3 { // more than the queue holds
		go func() {
			_, err := svc.Submit(ctx, Op{Kind: OpFire, Alert: alert.Alert{Title: "late", Severity: "high", Labels: map[string]string{"alertname": "late"}}})
			done <- err
		}()
	}
	for range 3 {
		select {
		case err := <-done:
			if !errors.Is(err, ErrStopped) {
				t.Fatalf("Submit after stop: got %v, want ErrStopped", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Submit after stop is still waiting after 10s")
		}
	}
}

// TestRepeatReplacesAnnotations: a repeat of a firing alert that carries
// annotations (a detection's latest matching events) replaces them and
// counts one more occurrence; once the alert was resolved behind the
// service's back, the next one fires afresh.
func TestRepeatReplacesAnnotations(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	labels := map[string]string{"alertname": "SSHBruteForce", "source.ip": "203.0.113.7"}
	fire := func(events string) Outcome {
		t.Helper()
		out, err := f.svc.Submit(f.ctx, Op{Kind: OpFire, Alert: alert.Alert{Title: "SSH brute force", Labels: labels,
			Severity: "high", Source: "test", Annotations: map[string]string{"event_ids": events}}})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	a := fire("1,2")
	again := fire("3,4")
	if !again.Deduplicated || again.AlertID != a.AlertID {
		t.Fatalf("repeat: %+v, want deduplicated onto alert %d", again, a.AlertID)
	}
	got, err := f.st.GetAlert(f.ctx, a.AlertID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Occurrences != 2 || got.Annotations["event_ids"] != "3,4" {
		t.Fatalf("after the repeat: occurrences %d, annotations %v; want 2 and the repeat's", got.Occurrences, got.Annotations)
	}
	if _, err := f.st.ResolveAlert(f.ctx, got.Fingerprint, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	fresh := fire("5")
	if fresh.Deduplicated || fresh.AlertID == a.AlertID || fresh.IncidentID == 0 {
		t.Fatalf("after a resolve behind its back: %+v, want a new alert on an incident", fresh)
	}
	if got, _ := f.st.GetAlert(f.ctx, fresh.AlertID); got.Status != alert.StatusFiring || got.Annotations["event_ids"] != "5" {
		t.Fatalf("fresh alert = %+v", got)
	}
}

// TestBatchRepeatsCoalesce: the repeats of a firing alert within one
// intake batch are written as one update, with the same result as one at
// a time (occurrences, newest annotations, latest sighting), and ops that
// are not fires see the repeats before them applied.
func TestBatchRepeatsCoalesce(t *testing.T) {
	f := newFixture(t, defaultRoute, nil)
	labels := map[string]string{"alertname": "SSHBruteForce", "source.ip": "203.0.113.7"}
	fire := func(events string, at time.Duration) Op {
		var ann map[string]string
		if events != "" {
			ann = map[string]string{"event_ids": events}
		}
		return Op{Kind: OpFire, At: t0.Add(at), Alert: alert.Alert{Title: "SSH brute force", Labels: labels,
			Severity: "high", Source: "test", Annotations: ann}}
	}
	batch := func(ops ...Op) []Outcome {
		t.Helper()
		ps := make([]*op, len(ops))
		for i, o := range ops {
			ps[i] = &op{Op: o, done: make(chan struct{})}
		}
		f.svc.processBatch(f.ctx, ps)
		out := make([]Outcome, len(ps))
		for i, p := range ps {
			if p.err != nil {
				t.Fatalf("op %d: %v", i, p.err)
			}
			out[i] = p.res
		}
		return out
	}
	first := batch(fire("1,2", 0))[0]
	other := fire("9", time.Minute)
	other.Alert.Labels = map[string]string{"alertname": "WebScan", "source.ip": "198.51.100.4"}
	outs := batch(fire("3,4", time.Minute), fire("", 3*time.Minute), other, fire("5,6", 2*time.Minute))
	for _, i := range []int{0, 1, 3} {
		if !outs[i].Deduplicated || outs[i].AlertID != first.AlertID {
			t.Fatalf("repeat %d: %+v, want deduplicated onto alert %d", i, outs[i], first.AlertID)
		}
	}
	if outs[2].Deduplicated || outs[2].AlertID == first.AlertID {
		t.Fatalf("another alert in the batch: %+v", outs[2])
	}
	got, err := f.st.GetAlert(f.ctx, first.AlertID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Occurrences != 4 || got.Annotations["event_ids"] != "5,6" || !got.LastSeenAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("after the batch: occurrences %d, annotations %v, last seen %v; want 4, 5,6 and %v",
			got.Occurrences, got.Annotations, got.LastSeenAt, t0.Add(3*time.Minute))
	}

	// A repeat, a resolve and a fire in one batch: the repeat counts on the
	// alert before it is resolved; the fire opens a new one.
	resolve := Op{Kind: OpResolve, At: t0.Add(5 * time.Minute), Fingerprint: first.Fingerprint}
	outs = batch(fire("7", 4*time.Minute), resolve, fire("8", 6*time.Minute))
	got, _ = f.st.GetAlert(f.ctx, first.AlertID)
	if got.Occurrences != 5 || got.Status != alert.StatusResolved || got.Annotations["event_ids"] != "7" {
		t.Fatalf("the resolved alert: occurrences %d, status %s, annotations %v; want 5, resolved, 7", got.Occurrences, got.Status, got.Annotations)
	}
	if outs[2].Deduplicated || outs[2].AlertID == first.AlertID {
		t.Fatalf("fire after the resolve: %+v, want a new alert", outs[2])
	}
	fresh := outs[2].AlertID

	// Repeats of an alert resolved behind the service's back: the first
	// fires afresh, the others count on the new alert.
	if _, err := f.st.ResolveAlert(f.ctx, first.Fingerprint, t0.Add(7*time.Minute)); err != nil {
		t.Fatal(err)
	}
	outs = batch(fire("10", 8*time.Minute), fire("11", 9*time.Minute))
	if outs[0].Deduplicated || outs[0].AlertID == fresh || outs[0].IncidentID == 0 ||
		!outs[1].Deduplicated || outs[1].AlertID != outs[0].AlertID {
		t.Fatalf("repeats after a resolve behind its back: %+v", outs)
	}
	got, _ = f.st.GetAlert(f.ctx, outs[0].AlertID)
	if got.Status != alert.StatusFiring || got.Occurrences != 2 || got.Annotations["event_ids"] != "11" {
		t.Fatalf("the alert fired afresh: status %s, occurrences %d, annotations %v; want firing, 2, 11", got.Status, got.Occurrences, got.Annotations)
	}
}
