// Package response owns alert intake and the incident workflow: dedup,
// silences, inhibition, routing and grouping of alerts into incidents,
// operator actions, tiered escalation and paging. Its decisions are
// committed in batches (group commit) before anyone is told of them.
package response

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
	"github.com/nocsoc/nocsoc/internal/runbook"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Options configures a Service.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Escalation timing, trigger and
	// acknowledgement times all come from it, so tests control MTTA/MTTR.
	Now func() time.Time
	// PublicURL is the base of links in notifications.
	PublicURL string
	// Dispatcher delivers notifications; nil disables sending (tests of
	// the workflow alone).
	Dispatcher *notify.Dispatcher
	// MaxBatch bounds how many intake operations are committed in one
	// transaction (default 512).
	MaxBatch int
	// QueueSize bounds waiting intake operations (default 16384); a full
	// queue blocks the caller (HTTP back-pressure).
	QueueSize int
}

// Rules is the alerting configuration: routing, inhibition and the
// provisioned channels, policies, schedules and runbooks.
type Rules struct {
	Route     *alert.Route
	Inhibit   []alert.InhibitRule
	Channels  []notify.Channel
	Policies  []oncall.Policy
	Schedules []oncall.Schedule
	Runbooks  []runbook.Runbook
}

// Service runs alert intake and the incident workflow. All decisions are
// taken under one mutex by the intake loop or an operator action, and each
// is committed in one transaction before anyone is told it happened.
type Service struct {
	st        *store.Store
	log       *slog.Logger
	now       func() time.Time
	publicURL string
	disp      *notify.Dispatcher
	maxBatch  int
	queue     chan *op
	// stopped is closed once the intake loop has ended (Run returned), so
	// that Submit fails instead of waiting for a loop that is gone.
	stopped  chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	rules compiledRules
	// firing maps fingerprint → the firing alert's live facts.
	firing map[string]*liveAlert
	// open maps incident id → open incident; groups maps group key → id.
	open   map[int64]*incident.Incident
	groups map[string]int64
	// firingPer counts firing (unsuppressed) alerts per incident.
	firingPer map[int64]int
	silences  *alert.SilenceSet
	inhibitor *alert.Inhibitor
	// dyn caches what was created through the API (channels, policies,
	// schedules, runbooks), reloaded by ReloadDynamic after each change.
	dyn dynamic
	idx indexes
	// feed tells subscribers about committed intake batches (subscribe.go).
	feed commitFeed
}

// indexes are lookups derived from rules and dyn (see reindexLocked);
// callers must not modify what they point to.
type indexes struct {
	schedules map[string]*oncall.Schedule
	policies  map[string]*oncall.Policy
	runbooks  []runbook.Runbook
}

type dynamic struct {
	channels  map[string]notify.Channel
	policies  map[string]oncall.Policy
	schedules []oncall.Schedule
	runbooks  []runbook.Runbook
}

type liveAlert struct {
	Team, Origin string
	ID           int64
	IncidentID   int64
	Fingerprint  string
	Labels       map[string]string
	Severity     string
	Suppressed   string
}

type compiledRules struct {
	route     *alert.Route
	channels  map[string]notify.Channel // provisioned, by name
	policies  map[string]oncall.Policy  // provisioned, by name
	schedules []oncall.Schedule         // provisioned
	runbooks  []runbook.Runbook
	inhibit   []alert.InhibitRule
}

// New creates the service and loads its live state from the store.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 16384
	}
	s := &Service{
		st: o.Store, log: o.Logger.With("component", "incident"), now: o.Now,
		publicURL: o.PublicURL, disp: o.Dispatcher, maxBatch: o.MaxBatch,
		queue: make(chan *op, o.QueueSize), stopped: make(chan struct{}),
		firing: map[string]*liveAlert{}, open: map[int64]*incident.Incident{}, groups: map[string]int64{},
		firingPer: map[int64]int{},
	}
	root, err := alert.CompileRoute(alert.RouteConfig{})
	if err != nil {
		return nil, err
	}
	if err := s.SetRules(Rules{Route: root}); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	if err := s.ReloadDynamic(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ReloadDynamic re-reads the API-managed channels, policies, schedules and
// runbooks; the API calls it after changing any of them.
func (s *Service) ReloadDynamic(ctx context.Context) error {
	chs, err := s.st.ListChannels(ctx)
	if err != nil {
		return fmt.Errorf("incident: load channels: %w", err)
	}
	pols, err := s.st.ListPolicies(ctx)
	if err != nil {
		return fmt.Errorf("incident: load policies: %w", err)
	}
	scs, err := s.st.ListSchedules(ctx)
	if err != nil {
		return fmt.Errorf("incident: load schedules: %w", err)
	}
	rbs, err := s.st.ListRunbooks(ctx)
	if err != nil {
		return fmt.Errorf("incident: load runbooks: %w", err)
	}
	d := dynamic{channels: map[string]notify.Channel{}, policies: map[string]oncall.Policy{}}
	for _, c := range chs {
		d.channels[c.Name] = c
	}
	for _, p := range pols {
		d.policies[p.Name] = p
	}
	for i := range scs {
		_ = scs[i].Validate() // caches the parsed zone and hand-over
	}
	d.schedules, d.runbooks = scs, rbs
	s.mu.Lock()
	s.dyn = d
	s.reindexLocked()
	s.mu.Unlock()
	return nil
}

// load rebuilds the live state from the store.
func (s *Service) load(ctx context.Context) error {
	firing, err := s.st.FiringAlerts(ctx)
	if err != nil {
		return fmt.Errorf("incident: load firing alerts: %w", err)
	}
	incs, err := s.st.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("incident: load open incidents: %w", err)
	}
	s.firing = make(map[string]*liveAlert, len(firing))
	s.open = make(map[int64]*incident.Incident, len(incs))
	s.groups = map[string]int64{}
	s.firingPer = map[int64]int{}
	for i := range incs {
		inc := incs[i]
		s.open[inc.ID] = &inc
		if inc.GroupKey != "" {
			s.groups[inc.GroupKey] = inc.ID
		}
	}
	for _, a := range firing {
		la := &liveAlert{Team: a.Team, Origin: a.Origin, ID: a.ID, IncidentID: a.IncidentID, Fingerprint: a.Fingerprint, Labels: a.Labels, Severity: a.Severity, Suppressed: a.SuppressedBy}
		s.firing[a.Fingerprint] = la
		if la.IncidentID != 0 && la.Suppressed == "" {
			s.firingPer[la.IncidentID]++
		}
		if s.inhibitor != nil {
			s.inhibitor.Fire(a)
		}
	}
	return nil
}

// SetRules installs a new alerting configuration (start and reload). The
// rules were validated when the config loaded.
func (s *Service) SetRules(r Rules) error {
	if r.Route == nil {
		root, err := alert.CompileRoute(alert.RouteConfig{})
		if err != nil {
			return err
		}
		r.Route = root
	}
	inh, err := alert.NewInhibitor(r.Inhibit)
	if err != nil {
		return err
	}
	cr := compiledRules{route: r.Route, channels: map[string]notify.Channel{}, policies: map[string]oncall.Policy{},
		schedules: r.Schedules, runbooks: r.Runbooks, inhibit: r.Inhibit}
	for _, c := range r.Channels {
		c.Provisioned = true
		cr.channels[c.Name] = c
	}
	for _, p := range r.Policies {
		p.Provisioned = true
		cr.policies[p.Name] = p
	}
	for i := range cr.schedules {
		cr.schedules[i].Provisioned = true
		_ = cr.schedules[i].Validate() // caches the parsed zone and hand-over
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = cr
	s.reindexLocked()
	// Re-index the firing alerts into the new inhibitor.
	for _, la := range s.firing {
		inh.Fire(alert.Alert{Fingerprint: la.Fingerprint, Labels: la.Labels, Status: alert.StatusFiring})
	}
	s.inhibitor = inh
	return nil
}

// ReloadSilences rebuilds the silence set from the store.
func (s *Service) ReloadSilences(ctx context.Context) error {
	// The store's notion of "active" uses the wall clock; the service's
	// clock decides here, so filter the full list.
	all, err := s.st.ListSilences(ctx, true)
	if err != nil {
		return err
	}
	now := s.now()
	var ss []alert.Silence
	for _, si := range all {
		if si.ExpiredAt == nil && si.EndsAt.After(now) {
			ss = append(ss, si)
		}
	}
	set, err := alert.NewSilenceSet(ss)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.silences = set
	s.mu.Unlock()
	return nil
}

// Run processes intake and escalations until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		// From now on Submit fails fast; an op sent meanwhile is answered
		// by Submit seeing stopped, and drained so none keeps a slot.
		s.stopOnce.Do(func() { close(s.stopped) })
		s.drain(ErrStopped)
	}()
	if err := s.ReloadSilences(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	if s.disp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.disp.Run(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("escalation tick", "err", err)
				}
			}
		}
	}()
	s.intakeLoop(ctx)
	wg.Wait()
	return nil
}

// policy returns a policy by name: provisioned first, then the store.
func (s *Service) policy(ctx context.Context, name string) (oncall.Policy, bool) {
	if name == "" {
		return oncall.Policy{}, false
	}
	if p, ok := s.rules.policies[name]; ok {
		return p, true
	}
	p, ok := s.dyn.policies[name]
	return p, ok
}

// channel returns a channel by name: provisioned first, then the store.
func (s *Service) channel(ctx context.Context, name string) (notify.Channel, bool) {
	if c, ok := s.rules.channels[name]; ok {
		return c, true
	}
	c, ok := s.dyn.channels[name]
	return c, ok
}

// schedules returns every schedule by name.
func (s *Service) schedules(ctx context.Context) map[string]*oncall.Schedule {
	return s.idx.schedules
}

// Schedules lists provisioned and stored schedules.
func (s *Service) Schedules(ctx context.Context) []oncall.Schedule {
	s.mu.Lock()
	m := s.schedules(ctx)
	s.mu.Unlock()
	out := make([]oncall.Schedule, 0, len(m))
	for _, sc := range m {
		out = append(out, *sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Policies lists provisioned and stored policies.
func (s *Service) Policies(ctx context.Context) ([]oncall.Policy, error) {
	stored, err := s.st.ListPolicies(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]oncall.Policy, 0, len(s.rules.policies)+len(stored))
	for _, p := range s.rules.policies {
		out = append(out, p)
	}
	s.mu.Unlock()
	out = append(out, stored...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Channels lists provisioned and stored channels.
func (s *Service) Channels(ctx context.Context) ([]notify.Channel, error) {
	stored, err := s.st.ListChannels(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]notify.Channel, 0, len(s.rules.channels)+len(stored))
	for _, c := range s.rules.channels {
		out = append(out, c)
	}
	s.mu.Unlock()
	out = append(out, stored...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ChannelByName finds a provisioned or stored channel.
func (s *Service) ChannelByName(ctx context.Context, name string) (notify.Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channel(ctx, name)
}

// HasPolicy, HasChannel and HasSchedule tell validation what exists.
func (s *Service) HasPolicy(ctx context.Context, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.policy(ctx, name)
	return ok
}

// HasChannel reports whether a channel exists.
func (s *Service) HasChannel(ctx context.Context, name string) bool {
	_, ok := s.ChannelByName(ctx, name)
	return ok
}

// HasSchedule reports whether a schedule exists.
func (s *Service) HasSchedule(ctx context.Context, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.schedules(ctx)[name]
	return ok
}

// Runbooks returns the provisioned runbooks plus the stored ones.
func (s *Service) runbooks(ctx context.Context) []runbook.Runbook {
	return s.idx.runbooks
}

// reindexLocked rebuilds the lookups that paging and incident creation use
// on every call, from the provisioned rules and the API-managed items:
// they change only on reload or an API change, not per alert. s.mu is held.
func (s *Service) reindexLocked() {
	scheds := map[string]*oncall.Schedule{}
	for i := range s.rules.schedules {
		sc := s.rules.schedules[i]
		scheds[sc.Name] = &sc
	}
	for i := range s.dyn.schedules {
		sc := s.dyn.schedules[i]
		if _, dup := scheds[sc.Name]; !dup {
			scheds[sc.Name] = &sc
		}
	}
	pols := map[string]*oncall.Policy{}
	for name, p := range s.dyn.policies {
		p := p
		pols[name] = &p
	}
	for name, p := range s.rules.policies {
		p := p
		pols[name] = &p
	}
	rbs := append([]runbook.Runbook{}, s.rules.runbooks...)
	seen := map[string]bool{}
	for _, r := range rbs {
		seen[r.Name] = true
	}
	for _, r := range s.dyn.runbooks {
		if !seen[r.Name] {
			rbs = append(rbs, r)
		}
	}
	s.idx = indexes{schedules: scheds, policies: pols, runbooks: rbs}
}

func (s *Service) incidentURL(id int64) string {
	return s.publicURL + "/incidents/" + strconv.FormatInt(id, 10)
}

// ErrNotOpen is returned for changes that need an open incident.
var ErrNotOpen = errors.New("incident is not open")

// severityRank orders severities, most severe first.
func severityRank(s string) int {
	switch s {
	case "critical":
		return 0
	case "high":
		return 1
	case "medium":
		return 2
	case "low":
		return 3
	case "info":
		return 4
	}
	return 5
}
