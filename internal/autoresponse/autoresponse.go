// Package autoresponse carries active response from the server to the
// agents: it turns decisions into firewall.block/unblock jobs on the
// endpoints in scope (and withdraws them when a decision is revoked or
// expires), runs automatic responses of detection rules with per-action
// rate limits and longer blocks for repeat offenders, and holds requested
// actions (block, isolate, lock, kill) for approval where policy says so.
// Incidents and their timeline live in internal/response; this package
// only writes to them through the store.
//
// The console (internal/ui) reads the same API as /api/v1/responses:
// Request, List, Get, Approve, Deny and DecisionJobs are its entry points.
package autoresponse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/fleet"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Action kinds.
const (
	KindBlockIP     = "block_ip"
	KindUnblockIP   = "unblock_ip"
	KindIsolateHost = "isolate_host"
	KindReleaseHost = "release_host"
	KindLockUser    = "lock_user"
	KindUnlockUser  = "unlock_user"
	KindKillProcess = "kill_process"
)

// Action statuses: pending (waiting for an approver) → approved →
// running (jobs sent) → succeeded or failed; or denied, or refused (rate
// limit, nothing to act on).
const (
	StatusPending   = "pending"
	StatusApproved  = "approved"
	StatusDenied    = "denied"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusRefused   = "refused"
)

// Agent job actions (internal/agent/respond.go).
const (
	jobBlock   = "firewall.block"
	jobUnblock = "firewall.unblock"
	jobIsolate = "firewall.isolate"
	jobRelease = "firewall.release"
	jobLock    = "user.lock"
	jobUnlock  = "user.unlock"
	jobKill    = "process.kill"
)

// origin of the jobs this package creates (store.Job.Origin).
const jobOrigin = "response"

// systemActor acts for automatic responses and the reconciler.
var systemActor = store.Actor{Name: "system:autoresponse"}

// ErrForbidden: the user may not approve or deny (not admin, not an
// approver of tier L2+, or their own request under four-eyes).
var ErrForbidden = errors.New("forbidden")

// JobCreator queues agent jobs (fleet.Service).
type JobCreator interface {
	CreateJobs(ctx context.Context, actor store.Actor, spec fleet.JobSpec) ([]store.Job, error)
}

// Options configures the Service.
type Options struct {
	Store *store.Store
	Jobs  JobCreator
	// Config is the response section; Policy the self-lockout guard the
	// decisions API uses (its Allow gains Config.Allow).
	Config config.Response
	Policy decision.Policy
	// Servers are the server addresses isolated hosts keep reaching
	// (Config.Servers wins when set).
	Servers []netip.Addr
	Logger  *slog.Logger
	// Now is the clock of decisions and rate limits; nil means time.Now.
	Now func() time.Time
}

// Service is the active-response service. Safe for concurrent use.
type Service struct {
	st   *store.Store
	jobs JobCreator
	// set is the policy from the response section, swapped whole by
	// Apply (config reload); basePolicy and baseServers are what New was
	// given, the start of every rebuild.
	set         atomic.Pointer[settings]
	basePolicy  decision.Policy
	baseServers []netip.Addr
	log         *slog.Logger
	now         func() time.Time
	// limits keeps its counters across reloads (setLimits).
	limits *limiter

	mu sync.Mutex // serialises reconcile passes

	kick chan struct{}
	// applied tells Run that Apply changed the reconcile interval.
	applied chan struct{}

	// Counters, shown by Stats.
	refusedRate, refusedGuard, refusedNoTarget, dispatchErrors, dropped atomic.Uint64

	// warned rate-limits repeated "skipped" warnings (one per key and
	// hour); the counters above still count every one.
	warnMu sync.Mutex
	warned map[string]time.Time

	// alerts feeds automatic responses to one worker, so detection never
	// waits for SQLite.
	alerts chan alertJob
}

// settings is everything derived from the response section.
type settings struct {
	cfg    config.Response
	policy decision.Policy
	// servers and isoAllow go into every isolation job.
	servers  []netip.Addr
	isoAllow []netip.Prefix
	rules    *ruleResponses
}

// New returns a Service; Run starts its reconciler and alert worker.
func New(o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{st: o.Store, jobs: o.Jobs, basePolicy: o.Policy, baseServers: o.Servers, log: o.Logger.With("component", "autoresponse"),
		now: o.Now, kick: make(chan struct{}, 1), applied: make(chan struct{}, 1), alerts: make(chan alertJob, 1024)}
	set, err := s.build(o.Config)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	s.limits = newLimiter(o.Config.RateLimits)
	return s, nil
}

// build derives the settings of a response section, or says what is
// wrong with it.
func (s *Service) build(c config.Response) (*settings, error) {
	set := &settings{cfg: c, policy: s.basePolicy}
	for _, a := range c.Allow {
		p, err := config.ParseAddrOrPrefix(a)
		if err != nil {
			return nil, fmt.Errorf("autoresponse: response.allow: %w", err)
		}
		set.policy.Allow = append(slices.Clone(set.policy.Allow), p)
	}
	set.servers = s.baseServers
	if len(c.Servers) > 0 {
		set.servers = nil
		for _, v := range c.Servers {
			a, err := netip.ParseAddr(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("autoresponse: response.servers: %q: %w", v, err)
			}
			set.servers = append(set.servers, a)
		}
	}
	for _, v := range c.IsolationAllow {
		p, err := config.ParseAddrOrPrefix(v)
		if err != nil {
			return nil, fmt.Errorf("autoresponse: response.isolation_allow: %w", err)
		}
		set.isoAllow = append(set.isoAllow, p)
	}
	for k, l := range c.RateLimits {
		if l.Count < 0 || l.Per <= 0 {
			return nil, fmt.Errorf("autoresponse: response.rate_limits.%s: count must not be negative and per must be positive", k)
		}
	}
	rr, err := newRuleResponses(c.Rules)
	if err != nil {
		return nil, err
	}
	set.rules = rr
	return set, nil
}

// Apply installs a new response section on the running service (config
// reload): allow-list, servers, approval, rate limits, repeat offenders,
// automatic rule responses and the reconcile interval. An invalid section
// is refused with its reason and the running policy stays in force. Rate
// limit counters carry over, so a reload cannot reset a storm guard.
// Decisions and actions already made are not touched.
func (s *Service) Apply(c config.Response) error {
	set, err := s.build(c)
	if err != nil {
		return err
	}
	s.limits.setLimits(c.RateLimits)
	s.set.Store(set)
	select {
	case s.applied <- struct{}{}:
	default:
	}
	s.log.Info("response policy applied", "allow", len(set.policy.Allow), "servers", len(set.servers), "rules", len(c.Rules))
	return nil
}

func (s *Service) conf() *settings { return s.set.Load() }

// Policy returns the self-lockout guard with the configured allow-list,
// for the decisions API.
func (s *Service) Policy() decision.Policy { return s.conf().policy }

// Stats are the service's counters.
type Stats struct {
	// RefusedRateLimit counts actions refused by a rate limit;
	// RefusedAllowList blocks of allow-listed addresses asked for by rules;
	// RefusedNoTarget automatic responses with nothing to act on (no
	// address in the alert, no endpoint with the host's name).
	RefusedRateLimit uint64 `json:"refused_rate_limit"`
	RefusedAllowList uint64 `json:"refused_allow_list"`
	RefusedNoTarget  uint64 `json:"refused_no_target"`
	DispatchErrors   uint64 `json:"dispatch_errors"`
	DroppedAlerts    uint64 `json:"dropped_alerts"`
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{RefusedRateLimit: s.refusedRate.Load(), RefusedAllowList: s.refusedGuard.Load(), RefusedNoTarget: s.refusedNoTarget.Load(),
		DispatchErrors: s.dispatchErrors.Load(), DroppedAlerts: s.dropped.Load()}
}

// Run reconciles decisions with the agents every interval (and whenever
// Kick is called) and works off automatic responses until ctx ends.
func (s *Service) Run(ctx context.Context) {
	interval := func() time.Duration {
		if every := s.conf().cfg.Reconcile.D(); every > 0 {
			return every
		}
		return time.Second
	}
	t := time.NewTicker(interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.applied:
			t.Reset(interval())
		case aj := <-s.alerts:
			s.handleAlert(ctx, aj)
		case <-t.C:
			s.reconcileLogged(ctx)
		case <-s.kick:
			s.reconcileLogged(ctx)
		}
	}
}

// Kick asks Run for a reconcile pass now (a decision was created or
// revoked through the API).
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) reconcileLogged(ctx context.Context) {
	if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("reconcile decisions", "err", err)
	}
}

// Reconcile sends firewall.block for every active decision not yet sent
// and firewall.unblock for every sent one that was revoked or has expired
// on the service's clock. Tests call it directly after moving the clock.
func (s *Service) Reconcile(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	todo, err := s.st.DecisionsToEnforce(ctx, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range todo {
		d, err := s.st.GetDecision(ctx, ref.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.enforce(ctx, d, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.relabel(ctx, now); err != nil {
		errs = append(errs, err)
	}
	rel, err := s.st.DecisionsToRelease(ctx, now)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range rel {
		d, err := s.st.GetDecision(ctx, e.DecisionID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.release(ctx, d, e.Endpoints); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.linkIncidents(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// relabel re-resolves the selectors of label-scoped blocks in force:
// endpoints that gained the labels get the block (for the time the
// decision has left), endpoints that lost them (or were revoked) get the
// unblock. The enforcement record is updated only once the jobs are
// queued, so a failed dispatch is retried on the next pass.
func (s *Service) relabel(ctx context.Context, now time.Time) error {
	enf, err := s.st.EnforcedLabelDecisions(ctx, now)
	if err != nil || len(enf) == 0 {
		return err
	}
	// One read of the endpoints serves every decision of the pass.
	all, err := s.st.Endpoints(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range enf {
		d, err := s.st.GetDecision(ctx, e.DecisionID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d.Type != decision.TypeBan {
			continue
		}
		want := []string{}
		for _, ep := range all {
			if ep.RevokedAt == nil && decision.MatchLabels(d.Labels, ep.Labels) {
				want = append(want, ep.ID)
			}
		}
		var added, removed []string
		for _, id := range want {
			if !slices.Contains(e.Endpoints, id) {
				added = append(added, id)
			}
		}
		for _, id := range e.Endpoints {
			if !slices.Contains(want, id) {
				removed = append(removed, id)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		ref := fmt.Sprintf("decision:%d", d.ID)
		if len(added) > 0 {
			left := max(d.Until.Sub(now), time.Second)
			args := map[string]string{"value": d.Value, "duration": left.Round(time.Second).String()}
			if err := s.dispatch(ctx, systemActor, added, jobBlock, args, 0, d.ID,
				fmt.Sprintf("decision %d: %s (endpoint gained labels %s)", d.ID, d.Reason, agentproto.FormatLabels(d.Labels)), ref, left); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if len(removed) > 0 {
			if err := s.dispatch(ctx, systemActor, removed, jobUnblock, map[string]string{"value": d.Value}, 0, d.ID,
				fmt.Sprintf("decision %d: endpoint no longer labelled %s", d.ID, agentproto.FormatLabels(d.Labels)), ref, 0); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		s.log.Info("label-scoped decision moved", "decision", d.ID, "blocked", added, "unblocked", removed)
		if err := s.st.SetDecisionEnforcement(ctx, d.ID, want); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enforce sends d's block to the endpoints in its scope (every enrolled
// endpoint for a fleet-wide decision) and records where it went, so the
// unblock reaches the same agents. actionID links the jobs to a response
// action.
func (s *Service) enforce(ctx context.Context, d decision.Decision, actionID int64) error {
	if d.Type != decision.TypeBan {
		// Captcha decisions are for web bouncers, not host firewalls.
		_, err := s.st.MarkDecisionEnforced(ctx, d.ID, nil, s.now())
		return err
	}
	eps, err := s.scope(ctx, d.Endpoints, d.Labels)
	if err != nil {
		return err
	}
	won, err := s.st.MarkDecisionEnforced(ctx, d.ID, eps, s.now())
	if err != nil || !won {
		return err
	}
	if len(eps) == 0 {
		return nil
	}
	left := d.Until.Sub(s.now())
	if left < time.Second {
		left = time.Second
	}
	args := map[string]string{"value": d.Value, "duration": left.Round(time.Second).String()}
	return s.dispatch(ctx, systemActor, eps, jobBlock, args, actionID, d.ID,
		fmt.Sprintf("decision %d: %s", d.ID, d.Reason), fmt.Sprintf("decision:%d", d.ID), left)
}

func (s *Service) release(ctx context.Context, d decision.Decision, eps []string) error {
	if d.Type == decision.TypeBan && len(eps) > 0 {
		args := map[string]string{"value": d.Value}
		why := "expired"
		if d.RevokedAt != nil {
			why = "revoked by " + d.RevokedBy
		}
		if err := s.dispatch(ctx, systemActor, eps, jobUnblock, args, 0, d.ID,
			fmt.Sprintf("decision %d %s", d.ID, why), fmt.Sprintf("decision:%d", d.ID), 0); err != nil {
			return err
		}
	}
	return s.st.MarkDecisionReleased(ctx, d.ID, s.now())
}

// scope resolves a decision's or action's endpoints: a label selector
// means every enrolled, unrevoked endpoint carrying all its labels (as
// they are now); no endpoints and no labels mean every enrolled,
// unrevoked endpoint.
func (s *Service) scope(ctx context.Context, eps []string, labels map[string]string) ([]string, error) {
	if eps != nil && labels == nil {
		return eps, nil
	}
	all, err := s.st.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, e := range all {
		if e.RevokedAt == nil && (labels == nil || decision.MatchLabels(labels, e.Labels)) {
			out = append(out, e.ID)
		}
	}
	return out, nil
}

// ResolveCount says how many endpoints a selector (endpoint ids, labels,
// or neither: the fleet) reaches now, shown when a label-scoped decision
// or action is requested.
func (s *Service) ResolveCount(ctx context.Context, eps []string, labels map[string]string) (int, error) {
	out, err := s.scope(ctx, eps, labels)
	return len(out), err
}

// dispatch queues one job per endpoint and remembers them for results.
// window bounds how long a job may wait for its agent (0: the default).
func (s *Service) dispatch(ctx context.Context, actor store.Actor, eps []string, action string, args map[string]string,
	actionID, decisionID int64, reason, originRef string, window time.Duration) error {
	if s.jobs == nil {
		s.dispatchErrors.Add(1)
		return errors.New("no agent job service: cannot reach endpoints")
	}
	now := s.now().UTC()
	spec := fleet.JobSpec{Endpoints: eps, Action: action, Args: args, Reason: truncate(reason, 1000), Origin: jobOrigin, OriginRef: originRef,
		Timeout: time.Minute}
	if window > 0 {
		// A block that would start after its decision ended is useless.
		spec.NotBefore, spec.NotAfter = now, now.Add(window)
	}
	jobs, err := s.jobs.CreateJobs(ctx, actor, spec)
	if err != nil {
		s.dispatchErrors.Add(1)
		return fmt.Errorf("dispatch %s to %d endpoints: %w", action, len(eps), err)
	}
	rj := make([]store.ResponseJob, len(jobs))
	for i, j := range jobs {
		rj[i] = store.ResponseJob{JobID: j.ID, ActionID: actionID, DecisionID: decisionID, EndpointID: j.EndpointID,
			JobAction: action, Status: j.Status, CreatedAt: now}
	}
	return s.st.RecordResponseJobs(ctx, rj)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// OnJobResult is fleet.Options.OnJobResult: it records the outcome of the
// jobs this service sent and settles their action when all are done.
func (s *Service) OnJobResult(ctx context.Context, j store.Job) {
	if j.Origin != jobOrigin {
		return
	}
	rj, err := s.st.FinishResponseJob(ctx, j.ID, j.Status, j.Error, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.Error("record response job result", "job", j.ID, "err", err)
		return
	}
	if rj.Status != "succeeded" {
		s.log.Warn("response job did not succeed", "job", j.ID, "action", rj.JobAction, "endpoint", j.EndpointID, "status", j.Status, "error", j.Error)
	}
	if rj.ActionID == 0 {
		return
	}
	if err := s.settle(ctx, rj.ActionID); err != nil {
		s.log.Error("settle response action", "id", rj.ActionID, "err", err)
	}
}

// settle marks an action succeeded or failed once all its jobs are done.
func (s *Service) settle(ctx context.Context, id int64) error {
	jobs, err := s.st.ResponseJobs(ctx, id, 0)
	if err != nil {
		return err
	}
	ok, failed, per := 0, 0, []string{}
	for _, j := range jobs {
		if j.FinishedAt == nil {
			return nil // still waiting
		}
		name := j.EndpointID
		if e, err := s.st.Endpoint(ctx, j.EndpointID); err == nil {
			name = fmt.Sprintf("%s (%s)", e.Hostname, j.EndpointID)
		}
		if j.Status == "succeeded" {
			ok++
			per = append(per, name+": succeeded")
		} else {
			failed++
			per = append(per, strings.TrimSpace(fmt.Sprintf("%s: %s %s", name, j.Status, j.Error)))
		}
	}
	status, result := StatusSucceeded, fmt.Sprintf("%d of %d endpoints succeeded", ok, len(jobs))
	if failed > 0 {
		status = StatusFailed
	}
	a, err := s.st.GetResponseAction(ctx, id)
	if err != nil {
		return err
	}
	if a.Status != StatusRunning {
		return nil
	}
	if a.DecisionID != 0 {
		if d, err := s.st.GetDecision(ctx, a.DecisionID); err == nil {
			result += fmt.Sprintf("; decision #%d until %s", d.ID, d.Until.UTC().Format(time.RFC3339))
		}
	}
	result += "; " + strings.Join(per, "; ")
	_, err = s.st.UpdateResponseAction(ctx, systemActor, id, status, truncate(result, 4000), 0, "response.result",
		fmt.Sprintf("response #%d (%s) %s: %s", id, a.Kind, status, truncate(result, 500)))
	return err
}

// Request is an action as asked for (POST /api/v1/responses).
type Request struct {
	Kind string `json:"kind"`
	// Value is the address or range of block_ip/unblock_ip.
	Value string `json:"value,omitempty"`
	// Duration of a block ("4h"); default decision.DefaultDuration.
	Duration string `json:"duration,omitempty"`
	// Endpoints is "all" or an array of endpoint ids; absent means all
	// for block_ip and is required for the host actions.
	Endpoints json.RawMessage `json:"endpoints,omitempty"`
	// Labels selects the endpoints by label instead ({"role": "web"}),
	// resolved when the action runs.
	Labels json.RawMessage `json:"labels,omitempty"`
	User   string          `json:"user,omitempty"`
	PID    int             `json:"pid,omitempty"`
	// Name is the expected process name of kill_process.
	Name       string `json:"name,omitempty"`
	Reason     string `json:"reason,omitempty"`
	IncidentID int64  `json:"incident_id,omitempty"`
}

// Requester is who asks, approves or denies.
type Requester struct {
	User   store.User
	Remote string
}

func (r Requester) actor() store.Actor { return store.Actor{Name: r.User.Name, Remote: r.Remote} }

// CanApprove reports whether u may approve: admins always, operators when
// listed in response.approval.approvers (the L2+ tier).
func (s *Service) CanApprove(u store.User) bool {
	if u.Disabled {
		return false
	}
	if u.Role == auth.RoleAdmin {
		return true
	}
	return u.Role == auth.RoleOperator && slices.Contains(s.conf().cfg.Approval.Approvers, u.Name)
}

// needsApproval applies response.approval.required.
func (s *Service) needsApproval(kind string, fleetWide bool) bool {
	req := []string{KindIsolateHost, KindLockUser, "fleet_wide"}
	if s.conf().cfg.Approval.Required != nil {
		req = *s.conf().cfg.Approval.Required
	}
	return slices.Contains(req, kind) || (fleetWide && slices.Contains(req, "fleet_wide"))
}

// validate turns a request into an action (not stored). Errors are
// *store.FieldError naming the field.
func (s *Service) validate(req Request, now time.Time) (store.ResponseAction, error) {
	bad := func(field, format string, args ...any) error {
		return &store.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	a := store.ResponseAction{Kind: req.Kind, Params: map[string]string{}, Reason: strings.TrimSpace(req.Reason), IncidentID: req.IncidentID}
	if len(a.Reason) > 1024 {
		return a, bad("reason", "is longer than 1024 bytes")
	}
	if req.IncidentID < 0 {
		return a, bad("incident_id", "must be positive")
	}
	eps, labels, err := decision.ParseSelector(req.Endpoints, req.Labels)
	if err != nil {
		var fe *decision.FieldError
		if errors.As(err, &fe) {
			return a, bad(fe.Field, "%s", fe.Reason)
		}
		return a, err
	}
	a.Endpoints, a.Labels = eps, labels
	hostAction := func() error {
		if len(req.Endpoints) == 0 && labels == nil {
			return bad("endpoints", "is required for %s (an array of endpoint ids, or \"all\"; or labels)", req.Kind)
		}
		return nil
	}
	switch req.Kind {
	case KindBlockIP:
		d, err := s.conf().policy.Validate(decision.Request{Type: decision.TypeBan, Value: req.Value, Duration: req.Duration, Endpoints: req.Endpoints,
			Labels: req.Labels}, "x", now)
		if err != nil {
			var fe *decision.FieldError
			if errors.As(err, &fe) {
				return a, bad(fe.Field, "%s", fe.Reason)
			}
			return a, err
		}
		a.Params["value"], a.Params["duration"] = d.Value, d.Until.Sub(d.CreatedAt).String()
	case KindUnblockIP:
		if strings.TrimSpace(req.Value) == "" {
			return a, bad("value", "is required (the blocked address or range)")
		}
		a.Params["value"] = strings.TrimSpace(req.Value)
	case KindIsolateHost, KindReleaseHost:
		if err := hostAction(); err != nil {
			return a, err
		}
		if req.Kind == KindIsolateHost && len(s.conf().servers) == 0 {
			return a, bad("kind", "isolation needs the server's address: set response.servers in the configuration")
		}
	case KindLockUser, KindUnlockUser:
		if err := hostAction(); err != nil {
			return a, err
		}
		u := strings.TrimSpace(req.User)
		if u == "" {
			return a, bad("user", "is required")
		}
		if u == "root" {
			return a, bad("user", "root is never locked: it would lock out the host's administrators")
		}
		a.Params["user"] = u
	case KindKillProcess:
		if err := hostAction(); err != nil {
			return a, err
		}
		if len(a.Endpoints) != 1 {
			return a, bad("endpoints", "kill_process names exactly one endpoint (a pid is per host)")
		}
		if req.PID < 2 {
			return a, bad("pid", "must be a process id above 1")
		}
		if strings.TrimSpace(req.Name) == "" {
			return a, bad("name", "is required: the expected process name guards against a reused pid")
		}
		a.Params["pid"], a.Params["name"] = strconv.Itoa(req.PID), strings.TrimSpace(req.Name)
	case "":
		return a, bad("kind", "is required (%s)", strings.Join(config.ResponseKinds, ", "))
	default:
		return a, bad("kind", "%q is not an action (%s)", req.Kind, strings.Join(config.ResponseKinds, ", "))
	}
	return a, nil
}

// Request validates and stores an action asked for by a person; it runs
// at once unless it needs approval (then it waits as pending). A
// requester who is an approver approves their own request unless
// four-eyes is on.
func (s *Service) Request(ctx context.Context, who Requester, req Request) (store.ResponseAction, error) {
	now := s.now().UTC()
	a, err := s.validate(req, now)
	if err != nil {
		return store.ResponseAction{}, err
	}
	a.Origin, a.OriginRef, a.RequestedBy, a.RequestedAt = decision.OriginPerson, who.User.Name, who.User.Name, now
	if a.IncidentID > 0 {
		a.Origin, a.OriginRef = decision.OriginIncident, fmt.Sprintf("incident:%d", a.IncidentID)
	}
	// A label selector is not fleet-wide for approval, however many
	// endpoints it matches today.
	a.NeedsApproval = s.needsApproval(a.Kind, a.Endpoints == nil && a.Labels == nil)
	a.Status = StatusApproved
	selfApproved := false
	if a.NeedsApproval {
		a.Status = StatusPending
		if s.CanApprove(who.User) && !s.conf().cfg.Approval.FourEyes {
			a.Status, selfApproved = StatusApproved, true
		}
	}
	msg := fmt.Sprintf("%s requested %s", who.User.Name, describe(a))
	if a.Labels != nil {
		if n, err := s.ResolveCount(ctx, nil, a.Labels); err == nil {
			msg += fmt.Sprintf(" (%d endpoints match now)", n)
		}
	}
	if a.Status == StatusPending {
		msg += " (waiting for approval)"
	}
	a, err = s.st.CreateResponseAction(ctx, who.actor(), a, msg)
	if err != nil {
		return store.ResponseAction{}, err
	}
	if selfApproved {
		a, err = s.st.UpdateResponseAction(ctx, who.actor(), a.ID, StatusApproved, "approved by the requester (tier L2+)", 0,
			"response.approve", fmt.Sprintf("%s approved their own request #%d (tier L2+)", who.User.Name, a.ID))
		if err != nil {
			return store.ResponseAction{}, err
		}
	}
	if a.Status != StatusApproved {
		return a, nil
	}
	return s.execute(ctx, who.actor(), a, true)
}

func describe(a store.ResponseAction) string {
	scope := decision.Decision{Endpoints: a.Endpoints, Labels: a.Labels}.DescribeScope()
	switch a.Kind {
	case KindBlockIP:
		return fmt.Sprintf("block of %s for %s on %s", a.Params["value"], a.Params["duration"], scope)
	case KindUnblockIP:
		return fmt.Sprintf("unblock of %s", a.Params["value"])
	case KindLockUser, KindUnlockUser:
		return fmt.Sprintf("%s of user %s on %s", a.Kind, a.Params["user"], scope)
	case KindKillProcess:
		return fmt.Sprintf("kill of pid %s (%s) on %s", a.Params["pid"], a.Params["name"], scope)
	}
	return fmt.Sprintf("%s on %s", a.Kind, scope)
}

// Approve approves a pending action and runs it.
func (s *Service) Approve(ctx context.Context, who Requester, id int64, note string) (store.ResponseAction, error) {
	if err := s.mayDecide(ctx, who, id); err != nil {
		return store.ResponseAction{}, err
	}
	a, err := s.st.DecideResponseAction(ctx, who.actor(), id, true, note, s.now())
	if err != nil {
		return store.ResponseAction{}, err
	}
	// A person approved: the rate limit, which guards against storms of
	// automatic actions, does not second-guess them, but the action
	// counts against it.
	s.limits.record(a.Kind, s.now())
	return s.execute(ctx, who.actor(), a, false)
}

// Deny refuses a pending action.
func (s *Service) Deny(ctx context.Context, who Requester, id int64, note string) (store.ResponseAction, error) {
	if err := s.mayDecide(ctx, who, id); err != nil {
		return store.ResponseAction{}, err
	}
	return s.st.DecideResponseAction(ctx, who.actor(), id, false, note, s.now())
}

func (s *Service) mayDecide(ctx context.Context, who Requester, id int64) error {
	if !s.CanApprove(who.User) {
		return fmt.Errorf("%s may not approve or deny responses: approvers are admins and operators of tier L2+ (response.approval.approvers): %w", who.User.Name, ErrForbidden)
	}
	if s.conf().cfg.Approval.FourEyes {
		a, err := s.st.GetResponseAction(ctx, id)
		if err != nil {
			return err
		}
		if a.RequestedBy == who.User.Name {
			return fmt.Errorf("response %d: four-eyes policy: the requester cannot decide their own request: %w", id, ErrForbidden)
		}
	}
	return nil
}

// execute carries out an approved action: blocks become decisions (so
// bouncers enforce them too) pushed to agents at once; the host actions
// become jobs. limit applies the rate limit of the action's kind.
func (s *Service) execute(ctx context.Context, actor store.Actor, a store.ResponseAction, limit bool) (store.ResponseAction, error) {
	if limit {
		if ok, why := s.limits.allow(a.Kind, s.now()); !ok {
			s.refusedRate.Add(1)
			s.log.Warn("response refused by rate limit", "id", a.ID, "kind", a.Kind, "limit", why)
			return s.st.UpdateResponseAction(ctx, actor, a.ID, StatusRefused, "rate limit: "+why, 0, "response.refuse",
				fmt.Sprintf("response #%d (%s) refused: rate limit %s", a.ID, a.Kind, why))
		}
	}
	ref := fmt.Sprintf("response:%d", a.ID)
	why := a.Reason
	if why == "" {
		why = fmt.Sprintf("response #%d requested by %s", a.ID, a.RequestedBy)
	}
	var err error
	var decisionID int64
	switch a.Kind {
	case KindBlockIP:
		// Held from the decision's creation to its enforcement, so the
		// reconciler cannot send it first without linking the jobs to
		// this action.
		s.mu.Lock()
		var d decision.Decision
		d, err = s.createDecision(ctx, actor, a)
		if err == nil {
			decisionID = d.ID
			var upd store.ResponseAction
			if upd, err = s.st.UpdateResponseAction(ctx, actor, a.ID, StatusRunning, fmt.Sprintf("decision %d", d.ID), d.ID,
				"response.execute", fmt.Sprintf("response #%d: %s: decision #%d in force until %s", a.ID, describe(a), d.ID,
					d.Until.UTC().Format(time.RFC3339))); err == nil {
				a = upd
				err = s.enforce(ctx, d, a.ID)
			}
		}
		s.mu.Unlock()
		if err == nil {
			jobs, _ := s.st.ResponseJobs(ctx, a.ID, 0)
			if len(jobs) == 0 {
				return s.st.UpdateResponseAction(ctx, actor, a.ID, StatusSucceeded, fmt.Sprintf("decision %d (no agents in scope; bouncers enforce it)", d.ID), 0,
					"response.result", fmt.Sprintf("response #%d: decision %d made, no agents in scope", a.ID, d.ID))
			}
			return s.st.GetResponseAction(ctx, a.ID)
		}
	case KindUnblockIP:
		var n int
		n, err = s.revokeFor(ctx, actor, a.Params["value"])
		if err == nil {
			s.Kick()
			status, res := StatusSucceeded, fmt.Sprintf("revoked %d decisions; agents get the unblock", n)
			if n == 0 {
				status, res = StatusRefused, "no active decision for "+a.Params["value"]
			}
			return s.st.UpdateResponseAction(ctx, actor, a.ID, status, res, 0, "response.result", fmt.Sprintf("response #%d: %s", a.ID, res))
		}
	default:
		var eps []string
		eps, err = s.scope(ctx, a.Endpoints, a.Labels)
		if err == nil && len(eps) == 0 {
			return s.st.UpdateResponseAction(ctx, actor, a.ID, StatusRefused, "no endpoints in scope", 0, "response.result",
				fmt.Sprintf("response #%d: no endpoints in scope", a.ID))
		}
		if err == nil {
			if a, err = s.st.UpdateResponseAction(ctx, actor, a.ID, StatusRunning, "", 0, "response.execute",
				fmt.Sprintf("response #%d: %s sent to %d endpoints", a.ID, describe(a), len(eps))); err != nil {
				return a, err
			}
			job, args := s.jobFor(a)
			err = s.dispatch(ctx, actor, eps, job, args, a.ID, 0, why, ref, 0)
			if err == nil {
				return s.st.GetResponseAction(ctx, a.ID)
			}
		}
	}
	s.log.Error("response failed", "id", a.ID, "kind", a.Kind, "err", err)
	res := err.Error()
	var fe *store.FieldError
	if errors.As(err, &fe) {
		res = fe.Field + ": " + fe.Reason
	}
	a2, uerr := s.st.UpdateResponseAction(ctx, actor, a.ID, StatusFailed, truncate(res, 4000), decisionID, "response.result",
		fmt.Sprintf("response #%d (%s) failed: %s", a.ID, a.Kind, truncate(res, 500)))
	if uerr != nil {
		return a2, errors.Join(err, uerr)
	}
	return a2, nil
}

func (s *Service) jobFor(a store.ResponseAction) (string, map[string]string) {
	switch a.Kind {
	case KindIsolateHost:
		var srv, allow []string
		for _, x := range s.conf().servers {
			srv = append(srv, x.String())
		}
		for _, p := range s.conf().isoAllow {
			allow = append(allow, p.String())
		}
		args := map[string]string{"servers": strings.Join(srv, ",")}
		if len(allow) > 0 {
			args["allow"] = strings.Join(allow, ",")
		}
		return jobIsolate, args
	case KindReleaseHost:
		return jobRelease, nil
	case KindLockUser:
		return jobLock, map[string]string{"user": a.Params["user"]}
	case KindUnlockUser:
		return jobUnlock, map[string]string{"user": a.Params["user"]}
	case KindKillProcess:
		return jobKill, map[string]string{"pid": a.Params["pid"], "name": a.Params["name"]}
	}
	return "", nil
}

// createDecision makes the decision a block_ip action stands for.
func (s *Service) createDecision(ctx context.Context, actor store.Actor, a store.ResponseAction) (decision.Decision, error) {
	var eps, labels json.RawMessage
	if a.Endpoints != nil {
		eps, _ = json.Marshal(a.Endpoints)
	}
	if a.Labels != nil {
		labels, _ = json.Marshal(a.Labels)
	}
	reason := a.Reason
	if reason == "" {
		reason = fmt.Sprintf("response #%d", a.ID)
	}
	d, err := s.conf().policy.Validate(decision.Request{Type: decision.TypeBan, Value: a.Params["value"], Duration: a.Params["duration"], Endpoints: eps,
		Labels: labels, Reason: reason}, a.RequestedBy, s.now().UTC())
	if err != nil {
		return d, err
	}
	d.Origin, d.OriginRef = a.Origin, a.OriginRef
	return s.st.CreateDecision(ctx, actor, d)
}

// revokeFor revokes every active decision whose value is value.
func (s *Service) revokeFor(ctx context.Context, actor store.Actor, value string) (int, error) {
	now := s.now().UTC()
	ds, err := s.st.ListDecisions(ctx, now, false, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		if d.Value != value {
			continue
		}
		if _, err := s.st.RevokeDecision(ctx, actor, d.ID, now); err != nil && !errors.Is(err, store.ErrConflict) {
			return n, err
		}
		n++
	}
	return n, nil
}

// List returns actions (newest first).
func (s *Service) List(ctx context.Context, f store.ResponseFilter) ([]store.ResponseAction, error) {
	return s.st.ListResponseActions(ctx, f)
}

// Get returns one action and its jobs.
func (s *Service) Get(ctx context.Context, id int64) (store.ResponseAction, []store.ResponseJob, error) {
	a, err := s.st.GetResponseAction(ctx, id)
	if err != nil {
		return a, nil, err
	}
	jobs, err := s.st.ResponseJobs(ctx, id, 0)
	return a, jobs, err
}

// DecisionJobs returns the block and unblock jobs sent for a decision,
// with their results.
func (s *Service) DecisionJobs(ctx context.Context, id int64) ([]store.ResponseJob, error) {
	if _, err := s.st.GetDecision(ctx, id); err != nil {
		return nil, err
	}
	return s.st.ResponseJobs(ctx, 0, id)
}

// repeatDuration lengthens base for an address blocked automatically
// before: base × factor^(earlier blocks within the window), capped.
func (s *Service) repeatDuration(ctx context.Context, value string, base time.Duration) time.Duration {
	window, factor, maxD := 30*24*time.Hour, 2.0, 7*24*time.Hour
	if s.conf().cfg.Repeat.Window > 0 {
		window = s.conf().cfg.Repeat.Window.D()
	}
	if s.conf().cfg.Repeat.Factor >= 1 {
		factor = s.conf().cfg.Repeat.Factor
	}
	if s.conf().cfg.Repeat.Max > 0 {
		maxD = s.conf().cfg.Repeat.Max.D()
	}
	n, err := s.st.CountDecisionsFor(ctx, value, decision.OriginRule, s.now().Add(-window))
	if err != nil {
		s.log.Error("count earlier blocks", "value", value, "err", err)
		return base
	}
	d := float64(base) * math.Pow(factor, float64(n))
	if d > float64(maxD) || math.IsInf(d, 0) {
		return max(base, maxD)
	}
	return time.Duration(d)
}

// warnOnce says whether a warning under key should be logged now: at most
// once an hour per key, so an attack on a host without an agent does not
// write one line per alert. The map is bounded: past 10,000 keys it
// starts over.
func (s *Service) warnOnce(key string) bool {
	s.warnMu.Lock()
	defer s.warnMu.Unlock()
	now := s.now()
	if last, ok := s.warned[key]; ok && now.Sub(last) < time.Hour {
		return false
	}
	if s.warned == nil || len(s.warned) >= 10000 {
		s.warned = map[string]time.Time{}
	}
	s.warned[key] = now
	return true
}
