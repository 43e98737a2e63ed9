// Package monitor owns the live state of every check: it turns probe
// results into states (up, down, unreachable, flapping, maintenance,
// unknown) and says when an alert must open or resolve.
//
// The tracker is pure logic: it does no I/O and starts no goroutines, and
// time comes only from result times, so its behaviour is a function of the
// results fed to it. It is safe for concurrent use.
//
// # Semantics
//
// Underlying state. Each check has an underlying state computed from its
// own results only: unknown until decided, then up or down.
//   - From unknown, the first OK result makes it up; failures need
//     fail_threshold consecutive failures to make it down (as from up).
//   - From up, fail_threshold consecutive failures make it down.
//   - From down, success_threshold consecutive OKs make it up, except when
//     the check is displayed unreachable: its failures were attributed to a
//     parent, so its first OK makes it up.
//
// Thresholds below 1 count as 1.
//
// Displayed state (Status.State, stored with every result) is decided in
// this order:
//  1. maintenance, when Options.InMaintenance reports a window covering the
//     check at the result's time;
//  2. unreachable, when the underlying state is down and a parent in
//     depends_on is failing (see below); RootCause names the top-most
//     failing ancestor, found by walking up through failing parents;
//  3. flapping, while the check is flapping;
//  4. otherwise the underlying state.
//
// A check is failing when its last result failed (even below its own
// threshold), its underlying state is down, or it is displayed unreachable.
//
// Root cause. When a result makes a check failing, or changes the state or
// root cause of a failing check, its dependants (transitively, through
// failing dependants) are re-evaluated without a new result: those whose
// underlying state is down become unreachable with the new root cause (an
// open alert resolves with reason "root cause: parent X is down"), and
// those already unreachable are re-labelled with the new top-most root
// cause. Dependants below their own fail threshold are left alone: they
// become unreachable when their own threshold is reached. Dependants in
// maintenance are left alone. When a parent recovers, its unreachable
// dependants stay unreachable until their own next result: an OK makes them
// up, a failure with no failing parent left makes them down (and opens an
// alert).
//
// Flapping. Every change of the underlying state between up and down is
// recorded with its result time; changes older than FlapWindow (relative to
// the newest result) are forgotten. A check starts flapping when
// FlapThreshold changes are inside the window and stops flapping when at
// most FlapThreshold/2 (rounded down) remain, so that a check hovering at
// the threshold does not toggle in and out of flapping. While flapping no
// alert opens or resolves; when it stops, the displayed state is decided
// again and the alert rules below apply (down with no alert open: open; up
// with an alert open: resolve).
//
// Alerts. The tracker records whether an alert is open for each check
// (Status.Alerting) so that the same problem never opens twice:
//   - AlertOpen when the displayed state is down and no alert is open;
//   - AlertResolve when an alert is open and the displayed state is up or
//     unreachable, or is maintenance while the underlying state is up
//     (resolves are delivered even during maintenance);
//   - nothing while flapping, in maintenance with the underlying state not
//     up, or unknown. An alert open before a maintenance window stays open.
//
// Results are applied in the order Observe is called.
package monitor

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Defaults applied by NewTracker.
const (
	DefaultFlapWindow    = 10 * time.Minute
	DefaultFlapThreshold = 5
)

// Options configures a Tracker.
type Options struct {
	// FlapWindow is the sliding window in which underlying state changes are
	// counted; zero or negative means DefaultFlapWindow.
	FlapWindow time.Duration
	// FlapThreshold is the number of up<->down changes within FlapWindow
	// that makes a check flapping; zero means DefaultFlapThreshold and a
	// negative value disables flap detection.
	FlapThreshold int
	// InMaintenance reports whether a maintenance window covers the check at
	// now, and which (its name, for display). It is called without the
	// tracker's lock held, so it may be slow or call back into the tracker;
	// it must not modify labels. Nil means no maintenance.
	InMaintenance func(check string, labels map[string]string, now time.Time) (window string, ok bool)
	// Logger receives warnings about ignored input (duplicate check names,
	// unusable restored statuses); nil discards them.
	Logger *slog.Logger
}

// Status is the live state of one check.
type Status struct {
	Check string      `json:"check"`
	State check.State `json:"state"`
	// RootCause is the name of the top-most failing ancestor when State is
	// unreachable.
	RootCause string `json:"root_cause,omitempty"`
	// Since is when State began.
	Since time.Time `json:"since"`
	// Maintenance is the window's name when State is maintenance.
	Maintenance string `json:"maintenance,omitempty"`
	// Underlying is up, down or unknown from the check's own results,
	// ignoring root cause, flapping and maintenance.
	Underlying           check.State   `json:"underlying"`
	ConsecutiveFailures  int           `json:"consecutive_failures"`
	ConsecutiveSuccesses int           `json:"consecutive_successes"`
	LastResult           *check.Result `json:"last_result,omitempty"`
	// LastChange is when Underlying last changed.
	LastChange time.Time `json:"last_change"`
	// Changes are the times of up<->down changes of Underlying inside the
	// flap window.
	Changes []time.Time `json:"changes,omitempty"`
	// Flapping is true while the check is flapping, even when State shows
	// something that takes precedence (maintenance, unreachable).
	Flapping bool `json:"flapping,omitempty"`
	// Alerting is true while an alert is open for the check.
	Alerting bool `json:"alerting"`
}

// AlertAction says what the alert pipeline must do after a result.
type AlertAction int

// Alert actions.
const (
	AlertNone AlertAction = iota
	AlertOpen
	AlertResolve
)

// String returns "none", "open" or "resolve".
func (a AlertAction) String() string {
	switch a {
	case AlertNone:
		return "none"
	case AlertOpen:
		return "open"
	case AlertResolve:
		return "resolve"
	}
	return fmt.Sprintf("AlertAction(%d)", int(a))
}

// MarshalText writes the action as its String form.
func (a AlertAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Outcome is what one result did to one check.
type Outcome struct {
	Check string `json:"check"`
	// Result is the result applied; nil for a dependant re-evaluated because
	// of another check's result.
	Result *check.Result `json:"result,omitempty"`
	// State is the state to store with this result, set even when nothing
	// changed.
	State     check.State `json:"state"`
	Changed   bool        `json:"changed"`
	From      check.State `json:"from"`
	To        check.State `json:"to"`
	RootCause string      `json:"root_cause,omitempty"`
	Alert     AlertAction `json:"alert"`
	// Reason is human text such as "3 consecutive failures: connection
	// refused", "recovered" or "root cause: parent db is down"; empty when
	// nothing changed.
	Reason string `json:"reason,omitempty"`
}

// entry is one check: its configuration, fixed by SetChecks, and its status.
type entry struct {
	name             string
	labels           map[string]string
	deps             []string
	dependants       []string // sorted, so re-evaluation order is stable
	failThreshold    int
	successThreshold int
	st               Status
}

// Tracker holds the live state of every check.
type Tracker struct {
	flapWindow    time.Duration
	flapThreshold int
	inMaintenance func(string, map[string]string, time.Time) (string, bool)
	log           *slog.Logger

	mu     sync.Mutex
	checks map[string]*entry
}

// NewTracker returns a Tracker with no checks.
func NewTracker(opts Options) *Tracker {
	t := &Tracker{
		flapWindow:    opts.FlapWindow,
		flapThreshold: opts.FlapThreshold,
		inMaintenance: opts.InMaintenance,
		log:           opts.Logger,
		checks:        map[string]*entry{},
	}
	if t.flapWindow <= 0 {
		t.flapWindow = DefaultFlapWindow
	}
	if t.flapThreshold == 0 {
		t.flapThreshold = DefaultFlapThreshold
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With("component", "monitor")
	return t
}

// SetChecks replaces the set of checks (on start and on every config reload
// or API change). Statuses of checks that still exist are kept, removed ones
// are dropped, new ones start unknown. The specs are expected to have passed
// check.ValidateSet; if not, a duplicate name keeps the last spec and a
// parent that does not exist is ignored. A removed check's open alert is the
// caller's to resolve.
func (t *Tracker) SetChecks(specs []check.Spec) {
	next := make(map[string]*entry, len(specs))
	for _, s := range specs {
		if _, dup := next[s.Name]; dup {
			t.log.Warn("duplicate check name, keeping the last", "check", s.Name)
		}
		next[s.Name] = &entry{
			name:             s.Name,
			labels:           maps.Clone(s.Labels),
			deps:             slices.Clone(s.DependsOn),
			failThreshold:    max(1, s.FailThreshold),
			successThreshold: max(1, s.SuccessThreshold),
		}
	}
	for _, e := range next {
		for _, p := range e.deps {
			if pe, ok := next[p]; ok && pe != e && !slices.Contains(pe.dependants, e.name) {
				pe.dependants = append(pe.dependants, e.name)
			}
		}
	}
	for _, e := range next {
		slices.Sort(e.dependants)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for name, e := range next {
		if old, ok := t.checks[name]; ok {
			e.st = old.st
		} else {
			e.st = Status{Check: name, State: check.StateUnknown, Underlying: check.StateUnknown}
		}
	}
	t.checks = next
}

// Restore seeds statuses saved before a restart. Call it after SetChecks:
// statuses of unknown checks are ignored, and so are statuses whose State or
// Underlying is not a known state (logged as a warning).
func (t *Tracker) Restore(sts []Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, s := range sts {
		e, ok := t.checks[s.Check]
		if !ok {
			continue
		}
		if s.Underlying == "" {
			s.Underlying = check.StateUnknown
		}
		if !slices.Contains(check.States, s.State) {
			t.log.Warn("ignoring restored status: unknown state", "index", i, "check", s.Check, "state", s.State)
			continue
		}
		if s.Underlying != check.StateUp && s.Underlying != check.StateDown && s.Underlying != check.StateUnknown {
			t.log.Warn("ignoring restored status: underlying must be up, down or unknown", "index", i, "check", s.Check, "underlying", s.Underlying)
			continue
		}
		e.st = cloneStatus(s)
	}
}

// Observe applies one result and returns what happened: to the check itself
// first, then to any dependants whose state changed because of it (for
// example, parent down => failing children become unreachable). A result for
// a check the tracker does not know returns nil.
func (t *Tracker) Observe(r check.Result) []Outcome {
	t.mu.Lock()
	e, ok := t.checks[r.Check]
	var labels map[string]string
	if ok {
		labels = e.labels
	}
	t.mu.Unlock()
	if !ok {
		return nil
	}

	// Ask about maintenance outside the lock: the callback may be slow, and
	// the labels map is never modified after SetChecks.
	var window string
	var inMaint bool
	if t.inMaintenance != nil {
		window, inMaint = t.inMaintenance(r.Check, labels, r.Time)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	// The check may have been removed or replaced by SetChecks meanwhile.
	if e, ok = t.checks[r.Check]; !ok {
		return nil
	}
	return t.apply(e, r, window, inMaint)
}

// apply updates e with r and re-evaluates its dependants. t.mu is held.
func (t *Tracker) apply(e *entry, r check.Result, window string, inMaint bool) []Outcome {
	st := &e.st
	wasFailing := t.failing(e)
	prevState, prevRC, prevUnderlying := st.State, st.RootCause, st.Underlying

	if r.OK {
		st.ConsecutiveSuccesses++
		st.ConsecutiveFailures = 0
		if st.Underlying == check.StateUnknown ||
			(st.Underlying == check.StateDown && (prevState == check.StateUnreachable || st.ConsecutiveSuccesses >= e.successThreshold)) {
			st.Underlying = check.StateUp
		}
	} else {
		st.ConsecutiveFailures++
		st.ConsecutiveSuccesses = 0
		if st.Underlying != check.StateDown && st.ConsecutiveFailures >= e.failThreshold {
			st.Underlying = check.StateDown
		}
	}
	stored := r
	st.LastResult = &stored

	// Flap window: forget old changes, record this one, apply hysteresis.
	cutoff := r.Time.Add(-t.flapWindow)
	keep := 0
	for _, c := range st.Changes {
		if c.After(cutoff) {
			st.Changes[keep] = c
			keep++
		}
	}
	st.Changes = st.Changes[:keep]
	if st.Underlying != prevUnderlying {
		st.LastChange = r.Time
		if prevUnderlying != check.StateUnknown {
			st.Changes = append(st.Changes, r.Time)
		}
	}
	if t.flapThreshold > 0 {
		n := len(st.Changes)
		if !st.Flapping && n >= t.flapThreshold {
			st.Flapping = true
		} else if st.Flapping && n <= t.flapThreshold/2 {
			st.Flapping = false
		}
	} else {
		st.Flapping = false
	}

	// Displayed state.
	st.Maintenance, st.RootCause = "", ""
	rc := ""
	if !inMaint && st.Underlying == check.StateDown {
		rc = t.rootCause(e)
	}
	switch {
	case inMaint:
		st.State, st.Maintenance = check.StateMaintenance, window
	case rc != "":
		st.State, st.RootCause = check.StateUnreachable, rc
	case st.Flapping:
		st.State = check.StateFlapping
	default:
		st.State = st.Underlying
	}
	if st.State != prevState {
		st.Since = r.Time
	}

	action := AlertNone
	switch st.State {
	case check.StateDown:
		if !st.Alerting {
			action = AlertOpen
		}
	case check.StateUp, check.StateUnreachable:
		if st.Alerting {
			action = AlertResolve
		}
	case check.StateMaintenance:
		if st.Alerting && st.Underlying == check.StateUp {
			action = AlertResolve
		}
	}
	switch action {
	case AlertOpen:
		st.Alerting = true
	case AlertResolve:
		st.Alerting = false
	}

	res := r
	o := Outcome{
		Check:     e.name,
		Result:    &res,
		State:     st.State,
		Changed:   st.State != prevState,
		From:      prevState,
		To:        st.State,
		RootCause: st.RootCause,
		Alert:     action,
	}
	if o.Changed || action != AlertNone || st.RootCause != prevRC {
		o.Reason = t.reason(e, prevState, action)
	}
	out := []Outcome{o}

	// Dependants only need a look when this check's failure is news to them;
	// recoveries are picked up by each dependant's own next result.
	if t.failing(e) && (!wasFailing || st.State != prevState || st.RootCause != prevRC) {
		out = t.propagate(e, r.Time, out)
	}
	return out
}

// propagate re-evaluates the dependants of src, transitively through failing
// dependants, after src became failing or changed while failing. t.mu is
// held.
func (t *Tracker) propagate(src *entry, now time.Time, out []Outcome) []Outcome {
	queue := slices.Clone(src.dependants)
	seen := map[string]bool{src.name: true}
	for i := 0; i < len(queue); i++ {
		d, ok := t.checks[queue[i]]
		if !ok || seen[d.name] {
			continue
		}
		seen[d.name] = true
		st := &d.st
		if st.State != check.StateMaintenance && st.Underlying == check.StateDown {
			if rc := t.rootCause(d); rc != "" && (st.State != check.StateUnreachable || st.RootCause != rc) {
				from := st.State
				st.State, st.RootCause = check.StateUnreachable, rc
				if from != check.StateUnreachable {
					st.Since = now
				}
				o := Outcome{
					Check:     d.name,
					State:     st.State,
					Changed:   from != st.State,
					From:      from,
					To:        st.State,
					RootCause: rc,
					Reason:    t.rootReason(rc),
				}
				if st.Alerting {
					o.Alert = AlertResolve
					st.Alerting = false
				}
				out = append(out, o)
			}
		}
		if t.failing(d) {
			queue = append(queue, d.dependants...)
		}
	}
	return out
}

// failing reports whether e counts as a failing parent. t.mu is held.
func (t *Tracker) failing(e *entry) bool {
	return (e.st.LastResult != nil && !e.st.LastResult.OK) ||
		e.st.Underlying == check.StateDown ||
		e.st.State == check.StateUnreachable
}

// rootCause returns the top-most failing ancestor of e, following the first
// failing parent at each level, or "" when no parent is failing. t.mu is
// held.
func (t *Tracker) rootCause(e *entry) string {
	rc := ""
	cur := e
	// The step limit guards against a dependency cycle in unvalidated specs.
	for range len(t.checks) {
		var next *entry
		for _, p := range cur.deps {
			if pe, ok := t.checks[p]; ok && pe != e && t.failing(pe) {
				next = pe
				break
			}
		}
		if next == nil {
			break
		}
		rc, cur = next.name, next
	}
	return rc
}

// reason describes the change of e's own state after a result. t.mu is held.
func (t *Tracker) reason(e *entry, prev check.State, action AlertAction) string {
	st := &e.st
	var s string
	switch st.State {
	case check.StateDown:
		s = failReason(st.ConsecutiveFailures, st.LastResult.Error)
	case check.StateUp:
		s = "recovered"
		if prev == check.StateUnknown {
			s = "ok"
		}
	case check.StateUnreachable:
		s = t.rootReason(st.RootCause)
	case check.StateFlapping:
		s = fmt.Sprintf("flapping: %d state changes within %s", len(st.Changes), t.flapWindow)
	case check.StateMaintenance:
		s = fmt.Sprintf("in maintenance window %q", st.Maintenance)
		if action == AlertResolve {
			s = fmt.Sprintf("recovered during maintenance window %q", st.Maintenance)
		}
	case check.StateUnknown:
		return ""
	}
	if prev == check.StateFlapping && st.State != check.StateFlapping {
		s = "stopped flapping; " + s
	}
	return s
}

// rootReason says which parent a check's failure is attributed to. t.mu is
// held.
func (t *Tracker) rootReason(rc string) string {
	what := "failing"
	if p, ok := t.checks[rc]; ok && p.st.Underlying == check.StateDown {
		what = "down"
	}
	return fmt.Sprintf("root cause: parent %s is %s", rc, what)
}

func failReason(n int, msg string) string {
	s := fmt.Sprintf("%d consecutive failures", n)
	if n == 1 {
		s = "1 failure"
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// Status returns the status of one check.
func (t *Tracker) Status(name string) (Status, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.checks[name]
	if !ok {
		return Status{}, false
	}
	return cloneStatus(e.st), true
}

// All returns the status of every check, sorted by name.
func (t *Tracker) All() []Status {
	t.mu.Lock()
	out := make([]Status, 0, len(t.checks))
	for _, e := range t.checks {
		out = append(out, cloneStatus(e.st))
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Check, b.Check) })
	return out
}

// Counts returns how many checks are in each state; every state is present,
// with zero when no check is in it.
func (t *Tracker) Counts() map[check.State]int {
	out := make(map[check.State]int, len(check.States))
	for _, s := range check.States {
		out[s] = 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.checks {
		out[e.st.State]++
	}
	return out
}

// cloneStatus copies s so that the caller and the tracker share nothing
// mutable.
func cloneStatus(s Status) Status {
	if s.LastResult != nil {
		r := *s.LastResult
		s.LastResult = &r
	}
	s.Changes = slices.Clone(s.Changes)
	return s
}
