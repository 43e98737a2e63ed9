// Package noc owns the NOC's running monitoring: the live set of checks
// (provisioned from the config file and created through the API), their
// scheduling, state tracking, result history, push heartbeats and the
// alerts that state changes open and resolve.
package noc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/schedule"
	"github.com/nocsoc/nocsoc/internal/store"
)

// ErrProvisioned is returned when the API tries to change something that is
// provisioned from the config file.
var ErrProvisioned = errors.New("provisioned from the config file: change it there")

// Options configures a Service.
type Options struct {
	Store         *store.Store
	Events        *eventstore.Store
	Prober        *check.Prober
	Workers       int
	FlapWindow    time.Duration
	FlapThreshold int
	Logger        *slog.Logger
	Metrics       *Metrics
	// Alerts receives the alerts state changes open and resolve; nil
	// writes them straight to the store (no incident workflow).
	Alerts AlertSink
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AlertSink is where check alerts go: the incident workflow in the server.
type AlertSink interface {
	Fire(ctx context.Context, a alert.Alert) error
	Resolve(ctx context.Context, fingerprint string, at time.Time) error
}

// storeSink writes alerts to the store directly.
type storeSink struct{ st *store.Store }

func (k storeSink) Fire(ctx context.Context, a alert.Alert) error {
	_, _, err := k.st.OpenAlert(ctx, a)
	return err
}

func (k storeSink) Resolve(ctx context.Context, fp string, at time.Time) error {
	_, err := k.st.ResolveAlert(ctx, fp, at)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// Service runs the NOC's checks.
type Service struct {
	st      *store.Store
	events  *eventstore.Store
	prober  *check.Prober
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	tracker *monitor.Tracker
	sched   *schedule.Scheduler
	alerts  AlertSink

	// mu guards the fields below: the current set of checks and windows.
	mu          sync.RWMutex
	provisioned []check.Spec
	dynamic     []check.Spec
	specs       map[string]check.Spec
	provWindows []maintenance.Window
	windows     *maintenance.Set
	windowList  []maintenance.Window

	push *pushRegistry

	dirtyMu sync.Mutex
	dirty   map[string]struct{}

	// held are checks whose alert waits for a parent's first result.
	heldMu sync.Mutex
	held   map[string]time.Time

	// changes feeds state changes to Subscribe callers (subscribe.go).
	changes changeFeed

	// hostRC attributes check alerts to unresponsive endpoints
	// (hostcause.go).
	hostRC hostCause
}

// New creates the service, loads API-created checks and windows from the
// store and restores saved states. Call Apply with the config, then Run.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	s := &Service{
		st: o.Store, events: o.Events, prober: o.Prober,
		log: o.Logger.With("component", "noc"), metrics: o.Metrics, now: o.Now,
		specs: map[string]check.Spec{},
		dirty: map[string]struct{}{},
		held:  map[string]time.Time{},
	}
	s.alerts = o.Alerts
	if s.alerts == nil {
		s.alerts = storeSink{st: o.Store}
	}
	s.push = newPushRegistry(o.Now)
	s.tracker = monitor.NewTracker(monitor.Options{
		FlapWindow:    o.FlapWindow,
		FlapThreshold: o.FlapThreshold,
		InMaintenance: s.inMaintenance,
	})
	s.sched = schedule.New(schedule.Options{
		Workers: o.Workers,
		Probe:   s.probe,
		Report:  s.report,
		Logger:  o.Logger,
	})
	dyn, err := s.st.ListChecks(ctx)
	if err != nil {
		return nil, fmt.Errorf("noc: load checks: %w", err)
	}
	s.dynamic = dyn
	ws, err := s.st.ListWindows(ctx)
	if err != nil {
		return nil, fmt.Errorf("noc: load maintenance windows: %w", err)
	}
	if err := s.setWindowsLocked(nil, ws); err != nil {
		return nil, err
	}
	if err := s.applyLocked(nil, dyn); err != nil {
		return nil, fmt.Errorf("noc: stored checks: %w", err)
	}
	saved, err := s.st.LoadStatuses(ctx)
	if err != nil {
		return nil, fmt.Errorf("noc: load statuses: %w", err)
	}
	var sts []monitor.Status
	for _, sv := range saved {
		var m monitor.Status
		if len(sv.Data) > 0 && json.Unmarshal(sv.Data, &m) == nil && m.Check != "" {
			sts = append(sts, m)
		}
	}
	s.tracker.Restore(sts)
	return s, nil
}

// Apply installs the provisioned checks and windows of a (re)loaded config.
// The whole set (provisioned and API-created) is validated first; on error
// nothing changes.
func (s *Service) Apply(ctx context.Context, checks []check.Spec, windows []maintenance.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range checks {
		for _, d := range s.dynamic {
			if d.Name == c.Name {
				return fmt.Errorf("check %q is defined in the config file and was also created through the API; delete one of them", c.Name)
			}
		}
	}
	oldWindows := s.provWindows
	if err := s.setWindowsLocked(windows, s.dynamicWindowsLocked()); err != nil {
		return err
	}
	if err := s.applyLocked(checks, s.dynamic); err != nil {
		_ = s.setWindowsLocked(oldWindows, s.dynamicWindowsLocked())
		return err
	}
	// Register push tokens given in the config, so heartbeats find them.
	for _, c := range checks {
		if c.Type == check.TypePush && c.Push != nil && c.Push.Token != "" {
			if err := s.st.SetPushToken(ctx, c.Name, auth.HashToken(c.Push.Token)); err != nil {
				return fmt.Errorf("noc: register push token of %q: %w", c.Name, err)
			}
		}
	}
	return nil
}

func (s *Service) dynamicWindowsLocked() []maintenance.Window {
	var out []maintenance.Window
	for _, w := range s.windowList {
		if !w.Provisioned {
			out = append(out, w)
		}
	}
	return out
}

func (s *Service) setWindowsLocked(prov, dyn []maintenance.Window) error {
	all := make([]maintenance.Window, 0, len(prov)+len(dyn))
	for _, w := range prov {
		w.Provisioned = true
		all = append(all, w)
	}
	all = append(all, dyn...)
	set, err := maintenance.NewSet(all)
	if err != nil {
		return fmt.Errorf("noc: maintenance windows: %w", err)
	}
	s.provWindows = prov
	s.windows = set
	s.windowList = all
	return nil
}

// applyLocked validates and installs a new set of checks. s.mu must be held.
func (s *Service) applyLocked(prov, dyn []check.Spec) error {
	all := make([]check.Spec, 0, len(prov)+len(dyn))
	for _, c := range prov {
		c.Provisioned = true
		c.Normalize()
		all = append(all, c)
	}
	for _, c := range dyn {
		c.Provisioned = false
		c.Normalize()
		all = append(all, c)
	}
	for _, c := range all {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("check %q: %w", c.Name, err)
		}
	}
	if name, err := check.ValidateSet(all); err != nil {
		return fmt.Errorf("check %q: %w", name, err)
	}
	specs := make(map[string]check.Spec, len(all))
	for _, c := range all {
		specs[c.Name] = c
		s.push.register(c.Name)
	}
	s.provisioned, s.dynamic, s.specs = prov, dyn, specs
	s.tracker.SetChecks(all)
	s.sched.Set(all)
	s.metrics.setChecks(len(all))
	return nil
}

func (s *Service) inMaintenance(name string, labels map[string]string, now time.Time) (string, bool) {
	s.mu.RLock()
	set := s.windows
	s.mu.RUnlock()
	if set == nil {
		return "", false
	}
	w, ok := set.Active(name, labels, now)
	if !ok {
		return "", false
	}
	return w.Name, true
}

// Run runs the scheduler and the status saver until ctx ends, then saves
// the final statuses.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.saveStatuses(ctx)
				s.releaseHeld(ctx)
			}
		}
	}()
	err := s.sched.Run(ctx)
	wg.Wait()
	// The run context is done; save with a fresh one so the last states land.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.saveStatuses(saveCtx)
	return err
}

func (s *Service) markDirty(name string) {
	s.dirtyMu.Lock()
	s.dirty[name] = struct{}{}
	s.dirtyMu.Unlock()
}

func (s *Service) saveStatuses(ctx context.Context) {
	s.dirtyMu.Lock()
	names := make([]string, 0, len(s.dirty))
	for n := range s.dirty {
		names = append(names, n)
	}
	s.dirty = map[string]struct{}{}
	s.dirtyMu.Unlock()
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	out := make([]store.SavedStatus, 0, len(names))
	for _, n := range names {
		st, ok := s.tracker.Status(n)
		if !ok {
			continue
		}
		data, err := json.Marshal(st)
		if err != nil {
			continue
		}
		since := st.Since
		if since.IsZero() {
			since = s.now() // a check with no decided state yet
		}
		out = append(out, store.SavedStatus{Check: n, State: string(st.State), RootCause: st.RootCause, Since: since, Data: data})
	}
	if err := s.st.SaveStatuses(ctx, out); err != nil {
		s.log.Error("save check statuses", "err", err)
		for _, n := range names {
			s.markDirty(n)
		}
	}
}

// probe runs one check; push checks are answered from the heartbeat registry.
func (s *Service) probe(ctx context.Context, c check.Spec) check.Result {
	if c.Type == check.TypePush {
		return s.push.evaluate(c)
	}
	if c.Type == check.TypeMailPosture {
		return s.probeMail(ctx, c) // mail.go: also watches the records for changes
	}
	r := s.prober.Probe(ctx, c)
	s.metrics.observeProbe(c.Type, r)
	return r
}

// report receives every result: it updates state, stores the result and
// opens or resolves alerts.
func (s *Service) report(r check.Result) {
	ctx := context.Background()
	s.mu.RLock()
	spec, known := s.specs[r.Check]
	s.mu.RUnlock()
	if !known {
		return // removed while the probe ran
	}
	outs := s.tracker.Observe(r)
	for _, o := range outs {
		s.markDirty(o.Check)
		if o.Result != nil {
			row := eventstore.ResultRow{
				Time: o.Result.Time, Check: o.Check, OK: o.Result.OK, State: o.State, RootCause: o.RootCause,
				Duration: o.Result.Duration, Error: o.Result.Error, StatusCode: o.Result.StatusCode,
				Detail: o.Result.Detail, Interval: spec.Interval.D(),
			}
			if err := s.events.AppendResults(ctx, row); err != nil {
				s.log.Error("store result", "check", o.Check, "err", err)
			}
		}
		if o.Changed {
			s.log.Info("check state changed", "check", o.Check, "from", o.From, "to", o.To, "root_cause", o.RootCause, "reason", o.Reason)
			s.metrics.stateChanges.WithLabelValues(string(o.To)).Inc()
			s.changes.notify(o)
		}
		switch o.Alert {
		case monitor.AlertOpen:
			s.metrics.alertsOpened.WithLabelValues(alert.TeamNOC, spec.Severity).Inc()
			since := s.now()
			if o.Result != nil {
				since = o.Result.Time
			}
			if parent := s.staleParent(o.Check, since); parent != "" {
				// A parent has not reported since the child failed (right
				// after a start, or when both break at once and the child
				// was probed first): hold the page and probe the parent
				// now, so a child is not paged for its parent's outage.
				s.holdAlert(o.Check, parent, since)
				continue
			}
			s.openAlert(ctx, o)
		case monitor.AlertResolve:
			s.dropHeld(o.Check)
			s.resolveAlert(ctx, o.Check, o.Reason)
		case monitor.AlertNone:
			if o.State == check.StateDown && o.Result != nil && !o.Result.OK && !s.isHeld(o.Check) {
				// Still down: record the repeat on the open alert.
				s.touchAlert(ctx, o)
			}
		}
	}
	s.releaseHeld(ctx)
	s.releaseHostHeld(ctx)
}

// maxHold bounds how long a child's page waits for its parents.
const maxHold = 30 * time.Second

// staleParent returns a direct parent of name with no result taken at or
// after since.
func (s *Service) staleParent(name string, since time.Time) string {
	spec, ok := s.Spec(name)
	if !ok {
		return ""
	}
	for _, p := range spec.DependsOn {
		if st, ok := s.tracker.Status(p); ok && (st.LastResult == nil || st.LastResult.Time.Before(since)) {
			return p
		}
	}
	return ""
}

func (s *Service) holdAlert(child, parent string, since time.Time) {
	s.heldMu.Lock()
	s.held[child] = since
	s.heldMu.Unlock()
	s.log.Info("alert held until the parent reports", "check", child, "parent", parent)
	s.sched.RunNow(parent)
}

func (s *Service) isHeld(name string) bool {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	_, ok := s.held[name]
	return ok
}

func (s *Service) dropHeld(name string) {
	s.heldMu.Lock()
	delete(s.held, name)
	s.heldMu.Unlock()
}

// releaseHeld opens the held alerts whose parents have now reported and
// whose check is still down; the others are dropped.
func (s *Service) releaseHeld(ctx context.Context) {
	s.heldMu.Lock()
	if len(s.held) == 0 {
		s.heldMu.Unlock()
		return
	}
	held := make(map[string]time.Time, len(s.held))
	for n, t := range s.held {
		held[n] = t
	}
	s.heldMu.Unlock()
	for n, since := range held {
		// A parent that cannot answer within maxHold does not keep the
		// child's page back any longer.
		if s.staleParent(n, since) != "" && s.now().Sub(since) < maxHold {
			continue
		}
		s.dropHeld(n)
		st, ok := s.tracker.Status(n)
		if !ok || st.State != check.StateDown || !st.Alerting {
			continue
		}
		s.openAlert(ctx, monitor.Outcome{Check: n, Result: st.LastResult, State: st.State, Reason: "down"})
	}
}

func (s *Service) touchAlert(ctx context.Context, o monitor.Outcome) {
	st, ok := s.tracker.Status(o.Check)
	if !ok || !st.Alerting {
		return
	}
	s.openAlert(ctx, o)
}

// AlertFingerprint is the fingerprint of the alert a check raises.
func AlertFingerprint(checkName string) string {
	return alert.Fingerprint(map[string]string{"source": "check:" + checkName})
}

func (s *Service) openAlert(ctx context.Context, o monitor.Outcome) {
	s.mu.RLock()
	spec, ok := s.specs[o.Check]
	s.mu.RUnlock()
	if !ok {
		return
	}
	now := s.now()
	if o.Result != nil {
		now = o.Result.Time
	}
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels["check"] = spec.Name
	labels["check_type"] = spec.Type
	title := fmt.Sprintf("%s is down", spec.Name)
	desc := o.Reason
	if o.Result != nil && o.Result.Error != "" {
		desc = o.Result.Error
	}
	a := alert.Alert{
		Fingerprint: AlertFingerprint(spec.Name),
		Status:      alert.StatusFiring,
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    spec.Severity,
		Title:       title,
		Description: desc,
		Labels:      labels,
		Source:      "check:" + spec.Name,
		StartedAt:   now,
		LastSeenAt:  now,
		Occurrences: 1,
	}
	if !s.applyAttribution(ctx, spec, &a, now) {
		return // held until the endpoint's heartbeat verdict (hostcause.go)
	}
	if err := s.alerts.Fire(ctx, a); err != nil {
		s.log.Error("open alert", "check", spec.Name, "err", err)
	}
}

func (s *Service) resolveAlert(ctx context.Context, name, reason string) {
	if err := s.alerts.Resolve(ctx, AlertFingerprint(name), s.now()); err != nil {
		s.log.Error("resolve alert", "check", name, "err", err)
		return
	}
	s.log.Info("check alert resolved", "check", name, "reason", reason)
}
