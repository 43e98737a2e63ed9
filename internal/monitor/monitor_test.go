package monitor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	up          = check.StateUp
	down        = check.StateDown
	unreachable = check.StateUnreachable
	flapping    = check.StateFlapping
	maint       = check.StateMaintenance
	unknown     = check.StateUnknown
)

// want describes one expected Outcome; an empty reason is not checked.
type want struct {
	check     string
	state     check.State
	alert     AlertAction
	rootCause string
	reason    string // substring
	changed   bool
}

// step feeds one result at t0 + minute minutes, with maint naming the
// maintenance window covering the check ("" for none).
type step struct {
	minute int
	check  string
	ok     bool
	maint  string
	want   []want
}

func spec(name string, fail, success int, deps ...string) check.Spec {
	return check.Spec{Name: name, Type: check.TypePush, FailThreshold: fail, SuccessThreshold: success, DependsOn: deps}
}

// runSteps feeds the steps to a fresh tracker and compares every outcome.
func runSteps(t *testing.T, opts Options, specs []check.Spec, steps []step) *Tracker {
	t.Helper()
	var window string
	opts.InMaintenance = func(string, map[string]string, time.Time) (string, bool) { return window, window != "" }
	tr := NewTracker(opts)
	tr.SetChecks(specs)
	for i, s := range steps {
		window = s.maint
		r := check.Result{Check: s.check, Time: t0.Add(time.Duration(s.minute) * time.Minute), OK: s.ok}
		if !s.ok {
			r.Error = "connection refused"
		}
		got := tr.Observe(r)
		if len(got) != len(s.want) {
			t.Fatalf("step %d (%s ok=%v): got %d outcomes %+v, want %d", i, s.check, s.ok, len(got), got, len(s.want))
		}
		for j, w := range s.want {
			g := got[j]
			if g.Check != w.check || g.State != w.state || g.To != w.state || g.Alert != w.alert || g.RootCause != w.rootCause || g.Changed != w.changed {
				t.Errorf("step %d outcome %d: got {check %s state %s to %s alert %s root %q changed %v}, want {check %s state %s alert %s root %q changed %v}",
					i, j, g.Check, g.State, g.To, g.Alert, g.RootCause, g.Changed, w.check, w.state, w.alert, w.rootCause, w.changed)
			}
			if w.reason != "" && !strings.Contains(g.Reason, w.reason) {
				t.Errorf("step %d outcome %d (%s): reason %q does not contain %q", i, j, g.Check, g.Reason, w.reason)
			}
			if j == 0 && (g.Result == nil || g.Result.Check != s.check) {
				t.Errorf("step %d: first outcome must carry the result of %s, got %+v", i, s.check, g.Result)
			}
			if j > 0 && g.Result != nil {
				t.Errorf("step %d outcome %d: dependant outcome carries a result", i, j)
			}
		}
	}
	return tr
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		name  string
		specs []check.Spec
		steps []step
	}{
		{
			name:  "fail_threshold 3 goes down on the third failure only",
			specs: []check.Spec{spec("web", 3, 1)},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "ok", true}}},
				{1, "web", false, "", []want{{"web", up, AlertNone, "", "", false}}},
				{2, "web", false, "", []want{{"web", up, AlertNone, "", "", false}}},
				{3, "web", false, "", []want{{"web", down, AlertOpen, "", "3 consecutive failures: connection refused", true}}},
				{4, "web", false, "", []want{{"web", down, AlertNone, "", "", false}}},
			},
		},
		{
			name:  "a success resets the failure count",
			specs: []check.Spec{spec("web", 2, 1)},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", up, AlertNone, "", "", false}}},
				{2, "web", true, "", []want{{"web", up, AlertNone, "", "", false}}},
				{3, "web", false, "", []want{{"web", up, AlertNone, "", "", false}}},
				{4, "web", false, "", []want{{"web", down, AlertOpen, "", "2 consecutive failures", true}}},
			},
		},
		{
			name:  "from unknown failures need the threshold, one OK is enough",
			specs: []check.Spec{spec("a", 2, 3), spec("b", 2, 3)},
			steps: []step{
				{0, "a", false, "", []want{{"a", unknown, AlertNone, "", "", false}}},
				{1, "a", false, "", []want{{"a", down, AlertOpen, "", "", true}}},
				{0, "b", true, "", []want{{"b", up, AlertNone, "", "", true}}},
			},
		},
		{
			name:  "default thresholds of zero mean one",
			specs: []check.Spec{spec("web", 0, 0)},
			steps: []step{
				{0, "web", false, "", []want{{"web", down, AlertOpen, "", "1 failure: connection refused", true}}},
				{1, "web", true, "", []want{{"web", up, AlertResolve, "", "recovered", true}}},
			},
		},
		{
			name:  "success_threshold 2 recovers on the second consecutive OK",
			specs: []check.Spec{spec("web", 1, 2)},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{2, "web", true, "", []want{{"web", down, AlertNone, "", "", false}}},
				{3, "web", false, "", []want{{"web", down, AlertNone, "", "", false}}},
				{4, "web", true, "", []want{{"web", down, AlertNone, "", "", false}}},
				{5, "web", true, "", []want{{"web", up, AlertResolve, "", "recovered", true}}},
				{6, "web", true, "", []want{{"web", up, AlertNone, "", "", false}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, Options{FlapThreshold: -1}, tc.specs, tc.steps)
		})
	}
}

func TestStatusFields(t *testing.T) {
	tr := runSteps(t, Options{}, []check.Spec{spec("web", 2, 1)}, []step{
		{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
		{1, "web", false, "", []want{{"web", up, AlertNone, "", "", false}}},
		{2, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
	})
	st, ok := tr.Status("web")
	if !ok {
		t.Fatal("Status(web) not found")
	}
	if st.State != down || st.Underlying != down || !st.Alerting || st.ConsecutiveFailures != 2 || st.ConsecutiveSuccesses != 0 {
		t.Errorf("status = %+v", st)
	}
	if !st.Since.Equal(t0.Add(2*time.Minute)) || !st.LastChange.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("since %v, last change %v, want both at minute 2", st.Since, st.LastChange)
	}
	if len(st.Changes) != 1 || st.LastResult == nil || st.LastResult.OK {
		t.Errorf("changes %v, last result %+v", st.Changes, st.LastResult)
	}
	// The returned status is a copy.
	st.Changes[0] = time.Time{}
	st.LastResult.OK = true
	again, _ := tr.Status("web")
	if again.Changes[0].IsZero() || again.LastResult.OK {
		t.Error("Status returned memory shared with the tracker")
	}
	if _, ok := tr.Status("nope"); ok {
		t.Error("Status(nope) found")
	}
	if got := tr.Observe(check.Result{Check: "nope", Time: t0}); got != nil {
		t.Errorf("Observe of an unknown check = %+v, want nil", got)
	}
}

func TestFlapping(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{
			name: "enters with an alert open, keeps it, resolves when it settles up",
			opts: Options{FlapWindow: 10 * time.Minute, FlapThreshold: 4},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{2, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
				{3, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{4, "web", true, "", []want{{"web", flapping, AlertNone, "", "flapping: 4 state changes within 10m0s", true}}},
				{5, "web", false, "", []want{{"web", flapping, AlertNone, "", "", false}}},
				{6, "web", true, "", []want{{"web", flapping, AlertNone, "", "", false}}},
				// Changes at 1..6; at 13 only 4,5,6 are inside (3 > 4/2).
				{13, "web", true, "", []want{{"web", flapping, AlertNone, "", "", false}}},
				// At 14 only 5 and 6 remain: 2 <= 4/2, it settles up and the alert opened at 3 resolves.
				{14, "web", true, "", []want{{"web", up, AlertResolve, "", "stopped flapping; recovered", true}}},
			},
		},
		{
			name: "settles down with no alert open: opens",
			opts: Options{FlapWindow: 10 * time.Minute, FlapThreshold: 3},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{2, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
				{3, "web", false, "", []want{{"web", flapping, AlertNone, "", "", true}}},
				{4, "web", false, "", []want{{"web", flapping, AlertNone, "", "", false}}},
				// At 11 changes 2 and 3 remain: 2 > 3/2, still flapping (hysteresis).
				{11, "web", false, "", []want{{"web", flapping, AlertNone, "", "", false}}},
				{12, "web", false, "", []want{{"web", down, AlertOpen, "", "stopped flapping; ", true}}},
			},
		},
		{
			name: "changes spread wider than the window never flap",
			opts: Options{FlapWindow: 10 * time.Minute, FlapThreshold: 3},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{6, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
				{11, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{16, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
			},
		},
		{
			name: "negative threshold disables flap detection",
			opts: Options{FlapThreshold: -1},
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{2, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
				{3, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{4, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
				{5, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{6, "web", true, "", []want{{"web", up, AlertResolve, "", "", true}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, tc.opts, []check.Spec{spec("web", 1, 1)}, tc.steps)
		})
	}
}

func TestDependencies(t *testing.T) {
	// core <- db <- app, and db <- api.
	specs := []check.Spec{spec("core", 1, 1), spec("db", 2, 1, "core"), spec("app", 2, 1, "db"), spec("api", 1, 1, "db")}
	allUp := []step{
		{0, "core", true, "", []want{{"core", up, AlertNone, "", "", true}}},
		{0, "db", true, "", []want{{"db", up, AlertNone, "", "", true}}},
		{0, "app", true, "", []want{{"app", up, AlertNone, "", "", true}}},
		{0, "api", true, "", []want{{"api", up, AlertNone, "", "", true}}},
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "child fails first, then the parent's first failure makes it unreachable",
			steps: []step{
				{1, "app", false, "", []want{{"app", up, AlertNone, "", "", false}}},
				{2, "app", false, "", []want{{"app", down, AlertOpen, "", "", true}}},
				// db is below its own threshold but failing: app's failure is attributed to it.
				{3, "db", false, "", []want{
					{"db", up, AlertNone, "", "", false},
					{"app", unreachable, AlertResolve, "db", "root cause: parent db is failing", true},
				}},
				// db goes down: app is already unreachable with the same root cause.
				{4, "db", false, "", []want{{"db", down, AlertOpen, "", "", true}}},
				{5, "app", false, "", []want{{"app", unreachable, AlertNone, "db", "", false}}},
			},
		},
		{
			name: "parent fails first, child becomes unreachable at its own threshold",
			steps: []step{
				{1, "db", false, "", []want{{"db", up, AlertNone, "", "", false}}},
				{2, "db", false, "", []want{{"db", down, AlertOpen, "", "", true}}},
				{3, "app", false, "", []want{{"app", up, AlertNone, "", "", false}}},
				{4, "app", false, "", []want{{"app", unreachable, AlertNone, "db", "root cause: parent db is down", true}}},
				{4, "api", false, "", []want{{"api", unreachable, AlertNone, "db", "", true}}},
				// db recovers: dependants stay unreachable until their own next result.
				{5, "db", true, "", []want{{"db", up, AlertResolve, "", "recovered", true}}},
				{6, "app", true, "", []want{{"app", up, AlertNone, "", "", true}}},
				// api fails again with no failing parent: down, with an alert.
				{6, "api", false, "", []want{{"api", down, AlertOpen, "", "2 consecutive failures", true}}},
			},
		},
		{
			name: "grandparent chain: root cause is the top-most failing ancestor",
			steps: []step{
				{1, "core", false, "", []want{{"core", down, AlertOpen, "", "", true}}},
				{2, "db", false, "", []want{{"db", up, AlertNone, "", "", false}}},
				{3, "db", false, "", []want{{"db", unreachable, AlertNone, "core", "root cause: parent core is down", true}}},
				{3, "app", false, "", []want{{"app", up, AlertNone, "", "", false}}},
				{4, "app", false, "", []want{{"app", unreachable, AlertNone, "core", "", true}}},
			},
		},
		{
			name: "grandparent fails after the parent: the parent's alert resolves and children are re-labelled",
			steps: []step{
				{1, "db", false, "", []want{{"db", up, AlertNone, "", "", false}}},
				{2, "db", false, "", []want{
					{"db", down, AlertOpen, "", "", true},
				}},
				{3, "api", false, "", []want{{"api", unreachable, AlertNone, "db", "", true}}},
				{4, "core", false, "", []want{
					{"core", down, AlertOpen, "", "", true},
					{"db", unreachable, AlertResolve, "core", "root cause: parent core is down", true},
					{"api", unreachable, AlertNone, "core", "root cause: parent core is down", false},
				}},
				// core recovers; db's next OK brings it up at once (success threshold is for its own outages).
				{5, "core", true, "", []want{{"core", up, AlertResolve, "", "", true}}},
				{6, "db", true, "", []want{{"db", up, AlertNone, "", "", true}}},
				// api still carries the stale label until its own result.
				{7, "api", true, "", []want{{"api", up, AlertNone, "", "", true}}},
			},
		},
		{
			name: "child recovers on its own while the parent is still down",
			steps: []step{
				{1, "db", false, "", []want{{"db", up, AlertNone, "", "", false}}},
				{2, "db", false, "", []want{{"db", down, AlertOpen, "", "", true}}},
				{3, "api", false, "", []want{{"api", unreachable, AlertNone, "db", "", true}}},
				{4, "api", true, "", []want{{"api", up, AlertNone, "", "", true}}},
				{5, "api", false, "", []want{{"api", unreachable, AlertNone, "db", "", true}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, Options{FlapThreshold: -1}, specs, append(append([]step{}, allUp...), tc.steps...))
		})
	}
}

func TestDependantInMaintenanceIsLeftAlone(t *testing.T) {
	specs := []check.Spec{spec("db", 1, 1), spec("app", 1, 1, "db")}
	runSteps(t, Options{}, specs, []step{
		{0, "app", false, "w", []want{{"app", maint, AlertNone, "", "maintenance window \"w\"", true}}},
		{1, "db", false, "", []want{{"db", down, AlertOpen, "", "", true}}},
		// The window ended: app's own next result attributes its failure to db.
		{2, "app", false, "", []want{{"app", unreachable, AlertNone, "db", "", true}}},
	})
}

func TestMaintenance(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "failure inside the window raises no alert; still down on exit opens one",
			steps: []step{
				{0, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
				{1, "web", false, "patch", []want{{"web", maint, AlertNone, "", `in maintenance window "patch"`, true}}},
				{2, "web", false, "patch", []want{{"web", maint, AlertNone, "", "", false}}},
				{3, "web", false, "", []want{{"web", down, AlertOpen, "", "3 consecutive failures", true}}},
			},
		},
		{
			name: "open alert stays open in the window and resolves on recovery inside it",
			steps: []step{
				{0, "web", false, "", []want{{"web", down, AlertOpen, "", "", true}}},
				{1, "web", false, "patch", []want{{"web", maint, AlertNone, "", "", true}}},
				{2, "web", true, "patch", []want{{"web", maint, AlertResolve, "", `recovered during maintenance window "patch"`, false}}},
				{3, "web", false, "patch", []want{{"web", maint, AlertNone, "", "", false}}},
				{4, "web", true, "", []want{{"web", up, AlertNone, "", "recovered", true}}},
			},
		},
		{
			name: "recovery inside the window then exit up: nothing more",
			steps: []step{
				{0, "web", true, "patch", []want{{"web", maint, AlertNone, "", "", true}}},
				{1, "web", true, "", []want{{"web", up, AlertNone, "", "", true}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, Options{FlapThreshold: -1}, []check.Spec{spec("web", 1, 1)}, tc.steps)
		})
	}
}

func TestMaintenanceCallbackArguments(t *testing.T) {
	var gotCheck string
	var gotLabels map[string]string
	var gotNow time.Time
	tr := NewTracker(Options{InMaintenance: func(c string, l map[string]string, now time.Time) (string, bool) {
		gotCheck, gotLabels, gotNow = c, l, now
		return "", false
	}})
	s := spec("web", 1, 1)
	s.Labels = map[string]string{"env": "prod"}
	tr.SetChecks([]check.Spec{s})
	s.Labels["env"] = "changed after SetChecks"
	tr.Observe(check.Result{Check: "web", Time: t0, OK: true})
	if gotCheck != "web" || gotLabels["env"] != "prod" || !gotNow.Equal(t0) {
		t.Errorf("InMaintenance(%q, %v, %v), want (web, env=prod, %v)", gotCheck, gotLabels, gotNow, t0)
	}
}

func TestSetChecks(t *testing.T) {
	tr := NewTracker(Options{})
	tr.SetChecks([]check.Spec{spec("a", 1, 1), spec("b", 1, 1), spec("c", 1, 1, "a")})
	tr.Observe(check.Result{Check: "a", Time: t0, OK: false})
	tr.Observe(check.Result{Check: "b", Time: t0, OK: true})

	// b is removed, d is new, a changes its threshold, c no longer depends on a.
	tr.SetChecks([]check.Spec{spec("a", 3, 1), spec("c", 1, 1), spec("d", 1, 1)})
	if st, ok := tr.Status("a"); !ok || st.State != down || !st.Alerting || st.ConsecutiveFailures != 1 {
		t.Errorf("a = %+v, %v; want kept down and alerting", st, ok)
	}
	if _, ok := tr.Status("b"); ok {
		t.Error("removed check b still has a status")
	}
	if st, ok := tr.Status("d"); !ok || st.State != unknown || st.Underlying != unknown {
		t.Errorf("d = %+v, %v; want unknown", st, ok)
	}
	if got := tr.Observe(check.Result{Check: "b", Time: t0, OK: true}); got != nil {
		t.Errorf("result for removed check b = %+v", got)
	}
	// c's failure is its own now that the dependency is gone.
	if got := tr.Observe(check.Result{Check: "c", Time: t0, OK: false}); len(got) != 1 || got[0].State != down || got[0].Alert != AlertOpen {
		t.Errorf("c after dependency removed: %+v", got)
	}

	var names []string
	for _, s := range tr.All() {
		names = append(names, s.Check)
	}
	if strings.Join(names, ",") != "a,c,d" {
		t.Errorf("All() names = %v, want sorted a,c,d", names)
	}
	counts := tr.Counts()
	if counts[down] != 2 || counts[unknown] != 1 || counts[up] != 0 || len(counts) != len(check.States) {
		t.Errorf("Counts() = %v", counts)
	}
}

func TestRestore(t *testing.T) {
	tr := NewTracker(Options{})
	tr.SetChecks([]check.Spec{spec("a", 1, 1), spec("b", 1, 1), spec("c", 1, 1)})
	since := t0.Add(-time.Hour)
	tr.Restore([]Status{
		{Check: "a", State: down, Underlying: down, Since: since, Alerting: true, ConsecutiveFailures: 4},
		{Check: "b", State: "sideways", Underlying: up},  // invalid: ignored
		{Check: "c", State: up, Underlying: unreachable}, // invalid: ignored
		{Check: "gone", State: down, Underlying: down},   // unknown: ignored
	})
	st, _ := tr.Status("a")
	if st.State != down || !st.Alerting || !st.Since.Equal(since) {
		t.Fatalf("restored a = %+v", st)
	}
	for _, n := range []string{"b", "c"} {
		if st, _ := tr.Status(n); st.State != unknown {
			t.Errorf("%s = %+v, want an invalid restore ignored", n, st)
		}
	}
	if _, ok := tr.Status("gone"); ok {
		t.Error("restore created an unknown check")
	}
	// The restored alert is not opened a second time.
	got := tr.Observe(check.Result{Check: "a", Time: t0, OK: false})
	if got[0].Alert != AlertNone || got[0].State != down || got[0].Changed {
		t.Errorf("after restore: %+v", got[0])
	}
	if st, _ := tr.Status("a"); st.ConsecutiveFailures != 5 || !st.Since.Equal(since) {
		t.Errorf("after restore: %+v", st)
	}
	got = tr.Observe(check.Result{Check: "a", Time: t0.Add(time.Minute), OK: true})
	if got[0].Alert != AlertResolve {
		t.Errorf("recovery after restore: %+v", got[0])
	}
}

// TestAlertInvariants drives random results through a dependency tree with
// maintenance and flapping and checks the alert rules on every outcome.
func TestAlertInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var specs []check.Spec
	for i := range 30 {
		s := spec(fmt.Sprintf("c%02d", i), 1+rng.IntN(3), 1+rng.IntN(3))
		if i > 0 && rng.IntN(3) > 0 {
			s.DependsOn = []string{fmt.Sprintf("c%02d", rng.IntN(i))}
		}
		specs = append(specs, s)
	}
	if name, err := check.ValidateSet(specs); err != nil {
		t.Fatalf("test specs invalid: %s: %v", name, err)
	}
	maintOn := map[string]bool{}
	tr := NewTracker(Options{FlapWindow: 20 * time.Minute, FlapThreshold: 4, InMaintenance: func(c string, _ map[string]string, _ time.Time) (string, bool) {
		return "w", maintOn[c]
	}})
	tr.SetChecks(specs)
	alerting := map[string]bool{}
	now := t0
	for i := range 5000 {
		now = now.Add(time.Duration(1+rng.IntN(30)) * time.Second)
		s := specs[rng.IntN(len(specs))]
		maintOn[s.Name] = rng.IntN(10) == 0
		outs := tr.Observe(check.Result{Check: s.Name, Time: now, OK: rng.IntN(3) > 0})
		for j, o := range outs {
			if o.State != o.To || (o.Changed != (o.From != o.To)) {
				t.Fatalf("step %d outcome %d inconsistent: %+v", i, j, o)
			}
			switch o.Alert {
			case AlertOpen:
				if alerting[o.Check] || o.State != down {
					t.Fatalf("step %d: open for %s in state %s with alerting=%v", i, o.Check, o.State, alerting[o.Check])
				}
				alerting[o.Check] = true
			case AlertResolve:
				if !alerting[o.Check] || o.State == down || o.State == flapping {
					t.Fatalf("step %d: resolve for %s in state %s with alerting=%v", i, o.Check, o.State, alerting[o.Check])
				}
				alerting[o.Check] = false
			}
			if (o.State == unreachable) != (o.RootCause != "") {
				t.Fatalf("step %d: %s state %s root cause %q", i, o.Check, o.State, o.RootCause)
			}
			st, _ := tr.Status(o.Check)
			if j == 0 && st.State == down && !st.Alerting {
				t.Fatalf("step %d: %s down without an alert", i, o.Check)
			}
		}
	}
	for _, st := range tr.All() {
		if st.Alerting != alerting[st.Check] {
			t.Errorf("%s: tracker alerting=%v, outcomes say %v", st.Check, st.Alerting, alerting[st.Check])
		}
	}
}

func TestConcurrentObserve(t *testing.T) {
	const workers, perWorker, rounds = 8, 25, 40
	var specs []check.Spec
	for w := range workers {
		for c := range perWorker {
			specs = append(specs, spec(fmt.Sprintf("w%d-c%d", w, c), 2, 1, "shared"))
		}
	}
	specs = append(specs, spec("shared", 1, 1))
	// The pattern below would flap; flap detection is tested elsewhere.
	tr := NewTracker(Options{FlapThreshold: -1, InMaintenance: func(string, map[string]string, time.Time) (string, bool) { return "", false }})
	tr.SetChecks(specs)

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				for c := range perWorker {
					// Every check ends on two failures in a row.
					ok := i%3 == 0 && i < rounds-2
					tr.Observe(check.Result{Check: fmt.Sprintf("w%d-c%d", w, c), Time: t0.Add(time.Duration(i) * time.Minute), OK: ok})
				}
				tr.Observe(check.Result{Check: "shared", Time: t0.Add(time.Duration(i) * time.Minute), OK: true})
			}
		})
	}
	wg.Go(func() {
		for range rounds {
			tr.All()
			tr.Counts()
			tr.Status("shared")
			tr.SetChecks(specs)
		}
	})
	wg.Wait()

	for _, st := range tr.All() {
		if st.Check == "shared" {
			if st.State != up || st.ConsecutiveSuccesses != workers*rounds {
				t.Errorf("shared = %+v", st)
			}
			continue
		}
		if st.State != down || !st.Alerting || st.ConsecutiveFailures < 2 {
			t.Errorf("%s = state %s alerting %v failures %d", st.Check, st.State, st.Alerting, st.ConsecutiveFailures)
		}
	}
}

// BenchmarkObserve feeds results to a tracker holding 10,000 checks: 100
// parents with 99 dependants each. "steady": 1% of results fail.
// "outage": every child fails and every parent alternates between failing
// and OK, so each parent failure re-evaluates its 99 dependants.
func BenchmarkObserve(b *testing.B) {
	var specs []check.Spec
	for p := range 100 {
		parent := fmt.Sprintf("p%03d", p)
		specs = append(specs, spec(parent, 1, 1))
		for c := range 99 {
			specs = append(specs, spec(fmt.Sprintf("%s-c%02d", parent, c), 2, 1, parent))
		}
	}
	cases := []struct {
		name string
		ok   func(i int) bool
	}{
		{"steady", func(i int) bool { return i%100 != 7 }},
		// Index i%100 == 0 is a parent; (i/10000)%2 alternates per pass.
		{"outage", func(i int) bool { return i%100 == 0 && (i/len(specs))%2 == 1 }},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			tr := NewTracker(Options{InMaintenance: func(string, map[string]string, time.Time) (string, bool) { return "", false }})
			tr.SetChecks(specs)
			now := t0
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(6 * time.Millisecond) // ~170 results/s
				tr.Observe(check.Result{Check: specs[i%len(specs)].Name, Time: now, OK: bc.ok(i)})
				i++
			}
		})
	}
}
