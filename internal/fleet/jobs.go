package fleet

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Job actions the server lets operators queue. The agent runs only
// actions it knows too; anything else it refuses.
const (
	ActionPatchSecurity    = "patch.security"
	ActionPackageInstall   = "package.install"
	ActionPackageRemove    = "package.remove"
	ActionPackageUpgrade   = "package.upgrade"
	ActionInventoryCollect = "inventory.collect"
	// ActionShell runs Args["command"] with /bin/sh, only on endpoints an
	// admin enabled it for (and whose agent runs with --allow-shell).
	ActionShell = "shell"
)

// allowedActions is the server's allow-list; the value says whether the
// action takes packages: "required", "optional" or "" (none).
var allowedActions = map[string]string{
	ActionPatchSecurity:    "",
	ActionPackageInstall:   "required",
	ActionPackageRemove:    "required",
	ActionPackageUpgrade:   "optional",
	ActionInventoryCollect: "",
	ActionShell:            "",
	"firewall.block":       "",
	"firewall.unblock":     "",
	"firewall.isolate":     "",
	"firewall.release":     "",
	"user.lock":            "",
	"user.unlock":          "",
	"process.kill":         "",
}

// AllowedActions lists the job actions the server accepts, sorted.
func AllowedActions() []string {
	out := make([]string, 0, len(allowedActions))
	for a := range allowedActions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Job limits and defaults.
const (
	maxJobEndpoints   = 1000
	maxJobPackages    = 200
	maxJobArgs        = 32
	maxJobArgLen      = 4096
	maxJobWindow      = 30 * 24 * time.Hour
	defaultJobWindow  = 24 * time.Hour
	minJobTimeout     = time.Second
	maxJobTimeout     = 6 * time.Hour
	defaultPkgTimeout = 30 * time.Minute
	defaultJobTimeout = 2 * time.Minute
	// jobResultGrace is how long after its window and timeout a sent job
	// waits for its result before it is expired.
	jobResultGrace = 10 * time.Minute
)

// PackageNameRe is what a package name in a job must look like: dpkg and
// rpm names, optionally with an ":arch" qualifier. Its first character
// cannot be "-", so a name is never taken for an option.
var PackageNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._-]{0,127}(:[a-z0-9_]{1,16})?$`)

var argKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// JobSpec asks for one job per endpoint.
type JobSpec struct {
	Endpoints           []string
	Action              string
	Args                map[string]string
	Packages            []string
	NotBefore, NotAfter time.Time
	// Timeout bounds the job's run on the agent; 0 means 30m for package
	// actions and 2m for others.
	Timeout                   time.Duration
	Reason, Origin, OriginRef string
}

// jobWaiters wakes the polls of agents when jobs are queued for them.
type jobWaiters struct {
	mu      sync.Mutex
	ch      map[string]chan struct{}
	parked  map[string]int
	closing chan struct{}
	closed  bool
}

func (w *jobWaiters) init() {
	if w.ch == nil {
		w.ch = map[string]chan struct{}{}
		w.parked = map[string]int{}
		w.closing = make(chan struct{})
	}
}

// waitChan returns a channel closed at the endpoint's next wake-up, and
// the channel closed when the service stops.
func (w *jobWaiters) waitChan(id string) (wake, closing <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	c := w.ch[id]
	if c == nil {
		c = make(chan struct{})
		w.ch[id] = c
	}
	return c, w.closing
}

func (w *jobWaiters) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	if c := w.ch[id]; c != nil {
		close(c)
		delete(w.ch, id)
	}
}

func (w *jobWaiters) park(id string, d int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	w.parked[id] += d
	if w.parked[id] <= 0 {
		delete(w.parked, id)
	}
}

// WaitingPolls is how many polls of the endpoint are waiting for jobs.
func (s *Service) WaitingPolls(endpointID string) int {
	s.waiters.mu.Lock()
	defer s.waiters.mu.Unlock()
	return s.waiters.parked[endpointID]
}

func (w *jobWaiters) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
}

// StopPolls answers every waiting and future agent poll at once, so that
// an HTTP server shutting down is not held by long polls.
func (s *Service) StopPolls() { s.waiters.close() }

func (s *Service) validateJobSpec(ctx context.Context, spec *JobSpec, now time.Time) error {
	pk, ok := allowedActions[spec.Action]
	if !ok {
		return &store.FieldError{Field: "action", Reason: fmt.Sprintf("%q is not on the allow-list (%s)", spec.Action, strings.Join(AllowedActions(), ", "))}
	}
	if len(spec.Endpoints) == 0 || len(spec.Endpoints) > maxJobEndpoints {
		return &store.FieldError{Field: "endpoints", Reason: fmt.Sprintf("must name 1-%d endpoints (got %d)", maxJobEndpoints, len(spec.Endpoints))}
	}
	seen := map[string]bool{}
	for i, e := range spec.Endpoints {
		if !uuidRe.MatchString(e) {
			return &store.FieldError{Field: fmt.Sprintf("endpoints[%d]", i), Reason: fmt.Sprintf("%q is not an endpoint id", e)}
		}
		if seen[e] {
			return &store.FieldError{Field: fmt.Sprintf("endpoints[%d]", i), Reason: fmt.Sprintf("endpoint %s is named twice", e)}
		}
		seen[e] = true
	}
	switch {
	case pk == "required" && len(spec.Packages) == 0:
		return &store.FieldError{Field: "packages", Reason: fmt.Sprintf("%s needs at least one package", spec.Action)}
	case pk == "" && len(spec.Packages) > 0:
		return &store.FieldError{Field: "packages", Reason: fmt.Sprintf("%s takes no packages", spec.Action)}
	case len(spec.Packages) > maxJobPackages:
		return &store.FieldError{Field: "packages", Reason: fmt.Sprintf("at most %d packages (got %d)", maxJobPackages, len(spec.Packages))}
	}
	for i, p := range spec.Packages {
		if !PackageNameRe.MatchString(p) {
			return &store.FieldError{Field: fmt.Sprintf("packages[%d]", i), Reason: fmt.Sprintf("%q is not a package name (letters, digits, + . _ -, optional :arch)", p)}
		}
	}
	if len(spec.Args) > maxJobArgs {
		return &store.FieldError{Field: "args", Reason: fmt.Sprintf("at most %d arguments", maxJobArgs)}
	}
	for k, v := range spec.Args {
		if !argKeyRe.MatchString(k) {
			return &store.FieldError{Field: "args", Reason: fmt.Sprintf("%q is not an argument name (lowercase letters, digits, _ . -)", k)}
		}
		if len(v) > maxJobArgLen || strings.ContainsRune(v, 0) {
			return &store.FieldError{Field: "args." + k, Reason: fmt.Sprintf("must be at most %d bytes without NUL", maxJobArgLen)}
		}
	}
	if spec.Action == ActionShell {
		if strings.TrimSpace(spec.Args["command"]) == "" {
			return &store.FieldError{Field: "args.command", Reason: "shell needs a command"}
		}
		for i, e := range spec.Endpoints {
			st, err := s.o.Store.EndpointSettings(ctx, e)
			if errors.Is(err, store.ErrNotFound) {
				return &store.FieldError{Field: fmt.Sprintf("endpoints[%d]", i), Reason: fmt.Sprintf("endpoint %q not found", e)}
			}
			if err != nil {
				return err
			}
			if !st.AllowShell {
				return &store.FieldError{Field: "action", Reason: fmt.Sprintf("shell is not enabled for endpoint %s (an admin enables it with PUT /api/v1/endpoints/%s/settings)", e, e)}
			}
		}
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = spec.NotBefore.Add(defaultJobWindow)
	}
	switch {
	case !spec.NotAfter.After(spec.NotBefore):
		return &store.FieldError{Field: "not_after", Reason: "must be after not_before"}
	case !spec.NotAfter.After(now):
		return &store.FieldError{Field: "not_after", Reason: "is in the past"}
	case spec.NotAfter.Sub(spec.NotBefore) > maxJobWindow:
		return &store.FieldError{Field: "not_after", Reason: fmt.Sprintf("the window may be at most %s", maxJobWindow)}
	case spec.NotBefore.After(now.Add(365 * 24 * time.Hour)):
		return &store.FieldError{Field: "not_before", Reason: "is more than a year ahead"}
	}
	if spec.Timeout == 0 {
		spec.Timeout = defaultJobTimeout
		if strings.HasPrefix(spec.Action, "package.") || strings.HasPrefix(spec.Action, "patch.") {
			spec.Timeout = defaultPkgTimeout
		}
	}
	if spec.Timeout < minJobTimeout || spec.Timeout > maxJobTimeout {
		return &store.FieldError{Field: "timeout", Reason: fmt.Sprintf("must be between %s and %s (got %s)", minJobTimeout, maxJobTimeout, spec.Timeout)}
	}
	if len(spec.Reason) > 1000 || len(spec.Origin) > 64 || len(spec.OriginRef) > 200 {
		return &store.FieldError{Field: "reason", Reason: "reason at most 1000, origin 64, origin_ref 200 characters"}
	}
	return nil
}

// CreateJobs validates spec and queues one job per endpoint, all or none,
// audited; agents polling for jobs get them at once.
func (s *Service) CreateJobs(ctx context.Context, actor store.Actor, spec JobSpec) ([]store.Job, error) {
	now := s.o.Now().UTC()
	if err := s.validateJobSpec(ctx, &spec, now); err != nil {
		return nil, err
	}
	if spec.Origin == "" {
		spec.Origin = "manual"
	}
	jobs := make([]store.Job, len(spec.Endpoints))
	for i, e := range spec.Endpoints {
		jobs[i] = store.Job{ID: newID(), EndpointID: e, Action: spec.Action, Args: spec.Args, Packages: spec.Packages,
			NotBefore: spec.NotBefore.UTC(), NotAfter: spec.NotAfter.UTC(), TimeoutMS: spec.Timeout.Milliseconds(),
			Reason: spec.Reason, Origin: spec.Origin, OriginRef: spec.OriginRef, CreatedAt: now}
	}
	out, err := s.o.Store.CreateJobs(ctx, actor, jobs)
	if err != nil {
		return nil, err
	}
	for _, j := range out {
		s.waiters.wake(j.EndpointID)
	}
	s.jobEvents(ctx, "job.created", out, now)
	s.log.Info("jobs queued", "action", spec.Action, "endpoints", len(out), "by", actor.Name)
	return out, nil
}

// Job returns one job.
func (s *Service) Job(ctx context.Context, id string) (store.Job, error) {
	return s.o.Store.Job(ctx, id)
}

// Jobs lists jobs, newest first.
func (s *Service) Jobs(ctx context.Context, f store.JobFilter) ([]store.Job, error) {
	return s.o.Store.Jobs(ctx, f)
}

// CancelJob cancels a job not yet delivered to its agent.
func (s *Service) CancelJob(ctx context.Context, actor store.Actor, id string) (store.Job, error) {
	now := s.o.Now().UTC()
	j, err := s.o.Store.CancelJob(ctx, actor, id, now)
	if err != nil {
		return store.Job{}, err
	}
	s.jobEvents(ctx, "job.canceled", []store.Job{j}, now)
	s.jobDone(ctx, j)
	return j, nil
}

// EndpointSettings returns an endpoint's settings.
func (s *Service) EndpointSettings(ctx context.Context, id string) (store.EndpointSettings, error) {
	return s.o.Store.EndpointSettings(ctx, id)
}

// SetEndpointSettings changes an endpoint's settings (audited).
func (s *Service) SetEndpointSettings(ctx context.Context, actor store.Actor, st store.EndpointSettings) (store.EndpointSettings, error) {
	return s.o.Store.SetEndpointSettings(ctx, actor, st)
}

// WaitJobs is an agent's poll: it returns the jobs queued for e whose
// window is open, waiting up to wait (capped at MaxJobWait) for one to be
// queued. The jobs returned are marked sent.
func (s *Service) WaitJobs(ctx context.Context, e store.Endpoint, wait time.Duration) ([]agentproto.Job, error) {
	wait = min(max(wait, 0), agentproto.MaxJobWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		// Take the wake channel before looking, so a job queued between
		// the look and the wait still wakes this poll.
		wake, closing := s.waiters.waitChan(e.ID)
		now := s.o.Now().UTC()
		jobs, err := s.o.Store.ClaimJobs(ctx, e.ID, now)
		if err != nil {
			return nil, err
		}
		if len(jobs) > 0 {
			s.jobEvents(ctx, "job.sent", jobs, now)
			out := make([]agentproto.Job, len(jobs))
			for i, j := range jobs {
				out[i] = agentproto.Job{ID: j.ID, Action: j.Action, Args: j.Args, Packages: j.Packages,
					NotBefore: j.NotBefore, NotAfter: j.NotAfter, TimeoutMS: j.TimeoutMS}
			}
			return out, nil
		}
		next, err := s.o.Store.NextJobAt(ctx, e.ID, now)
		if err != nil {
			return nil, err
		}
		if !s.park(ctx, e.ID, wake, closing, deadline.C, next.Sub(now), !next.IsZero()) {
			return nil, nil
		}
	}
}

// park waits for a wake-up (true) or the end of the poll (false); due,
// when set, is how long until a queued job's window opens.
func (s *Service) park(ctx context.Context, id string, wake, closing <-chan struct{}, deadline <-chan time.Time, due time.Duration, hasDue bool) bool {
	var dueC <-chan time.Time
	if hasDue {
		t := time.NewTimer(due)
		defer t.Stop()
		dueC = t.C
	}
	s.waiters.park(id, 1)
	defer s.waiters.park(id, -1)
	select {
	case <-wake:
		return true
	case <-dueC:
		return true
	case <-deadline:
	case <-closing:
	case <-ctx.Done():
	}
	return false
}

// RecordJobResult stores an agent's result for one of its jobs. A result
// for a job that already has one is answered as a duplicate.
func (s *Service) RecordJobResult(ctx context.Context, e store.Endpoint, r agentproto.JobResult) (duplicate bool, err error) {
	switch {
	case !uuidRe.MatchString(r.JobID):
		return false, &store.FieldError{Field: "job_id", Reason: "must be a lowercase UUID"}
	case r.Status != agentproto.JobSucceeded && r.Status != agentproto.JobFailed && r.Status != agentproto.JobRefused && r.Status != agentproto.JobTimeout:
		return false, &store.FieldError{Field: "status", Reason: fmt.Sprintf("must be succeeded, failed, refused or timeout (got %q)", r.Status)}
	case len(r.Error) > maxJobArgLen:
		return false, &store.FieldError{Field: "error", Reason: fmt.Sprintf("at most %d bytes", maxJobArgLen)}
	}
	now := s.o.Now().UTC()
	if r.FinishedAt.IsZero() || r.FinishedAt.After(now.Add(time.Hour)) {
		r.FinishedAt = now
	}
	if r.StartedAt.IsZero() || r.StartedAt.After(r.FinishedAt) {
		r.StartedAt = r.FinishedAt
	}
	j, dup, err := s.o.Store.RecordJobResult(ctx, e.ID, r.JobID, store.JobOutcome{Status: r.Status, ExitCode: r.ExitCode,
		Output: agentproto.TailOutput(r.Output), Error: r.Error, StartedAt: r.StartedAt.UTC(), FinishedAt: r.FinishedAt.UTC()})
	if err != nil || dup {
		return dup, err
	}
	s.log.Info("job finished", "job", j.ID, "action", j.Action, "endpoint", e.ID, "status", j.Status)
	s.jobEvents(ctx, "job."+j.Status, []store.Job{j}, now)
	s.jobDone(ctx, j)
	return false, nil
}

// expireJobs ends jobs whose window closed unrun, or whose result never
// came.
func (s *Service) expireJobs(ctx context.Context, now time.Time) error {
	jobs, err := s.o.Store.ExpireJobs(ctx, now.UTC(), jobResultGrace)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	s.jobEvents(ctx, "job.expired", jobs, now.UTC())
	for _, j := range jobs {
		s.jobDone(ctx, j)
	}
	return nil
}

// jobDone calls the OnJobResult hook.
func (s *Service) jobDone(ctx context.Context, j store.Job) {
	if s.o.OnJobResult != nil {
		s.o.OnJobResult(ctx, j)
	}
}

// jobEvents puts job lifecycle changes on the SOC timeline. A failure to
// write them is logged: the job itself is stored.
func (s *Service) jobEvents(ctx context.Context, action string, jobs []store.Job, at time.Time) {
	if s.o.Events == nil || len(jobs) == 0 {
		return
	}
	evs := make([]event.Event, 0, len(jobs))
	for _, j := range jobs {
		msg := fmt.Sprintf("job %s %s on %s: %s", j.Action, j.ID, j.Hostname, strings.TrimPrefix(action, "job."))
		if len(j.Packages) > 0 {
			msg += " (packages " + strings.Join(j.Packages, " ") + ")"
		}
		if j.ExitCode != nil && JobStatusFromAgent(j.Status) {
			msg += fmt.Sprintf(", exit code %d", *j.ExitCode)
		}
		if j.Error != "" {
			msg += ": " + j.Error
		}
		e := event.Event{Time: at, Received: at, Host: j.Hostname, Input: "agent", Raw: msg}
		e.Set("event.action", action)
		e.Set("event.kind", "event")
		e.Set("event.category", "process")
		e.Set("event.module", "jobs")
		e.Set("agent.id", j.EndpointID)
		e.Set("job.id", j.ID)
		e.Set("job.action", j.Action)
		e.Set("job.status", j.Status)
		e.Set("job.origin", j.Origin)
		if j.OriginRef != "" {
			e.Set("job.origin_ref", j.OriginRef)
		}
		if j.Reason != "" {
			e.Set("job.reason", j.Reason)
		}
		if len(j.Packages) > 0 {
			e.Set("package.name", strings.Join(j.Packages, " "))
		}
		e.Set("user.name", j.CreatedBy)
		switch j.Status {
		case agentproto.JobSucceeded:
			e.Set("event.outcome", "success")
		case agentproto.JobFailed, agentproto.JobRefused, agentproto.JobTimeout, store.JobExpired:
			e.Set("event.outcome", "failure")
		}
		if j.ExitCode != nil {
			e.Set("process.exit_code", float64(*j.ExitCode))
		}
		e.Set("message", msg)
		evs = append(evs, e)
	}
	if err := s.o.Events.Write(ctx, evs); err != nil {
		s.log.Warn("job events", "action", action, "err", err)
	}
}

// JobStatusFromAgent reports whether status is one an agent reports.
func JobStatusFromAgent(status string) bool {
	switch status {
	case agentproto.JobSucceeded, agentproto.JobFailed, agentproto.JobRefused, agentproto.JobTimeout:
		return true
	}
	return false
}
