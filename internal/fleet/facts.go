package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/compliance"
	"github.com/nocsoc/nocsoc/internal/store"
	"github.com/nocsoc/nocsoc/policies"
)

// ComplianceOptions configures compliance checks on endpoints.
type ComplianceOptions struct {
	// PolicyDir is a directory of policy YAML files, provisioned read-only
	// (the API can neither change nor delete them); "" for none.
	PolicyDir string
	// NoBuiltin leaves out the built-in Linux baseline pack.
	NoBuiltin bool
	// ServiceLevel supplies a report's operations evidence (MTTA, MTTR,
	// uptime); nil leaves it out of reports.
	ServiceLevel func(ctx context.Context, from, to time.Time) (*compliance.ServiceLevel, error)
}

// complianceState is the loaded policy set. evalMu serialises
// evaluations, so each sees the state the previous one recorded.
type complianceState struct {
	mu     sync.RWMutex
	loaded bool
	set    *compliance.Set
	spec   agentproto.FactSpec
	errs   []string
	evalMu sync.Mutex
	// src is where policies come from and the directory's loader
	// (compliance_reload.go).
	src policySources
}

// Compliance errors the HTTP layer maps to statuses.
var (
	// ErrPolicyReadOnly: the policy is built in or provisioned from the
	// policy directory (409).
	ErrPolicyReadOnly = errors.New("policy is read-only")
)

// PolicyError is a refused policy upload: every reason, file:line.
type PolicyError struct{ Errs []error }

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadPolicies (re)loads the built-in pack, the policy directory and the
// policies uploaded through the API. A refused policy is reported (and
// logged) with file:line; the others load.
func (s *Service) LoadPolicies(ctx context.Context) []error {
	_, errs := s.loadPolicies(ctx)
	return errs
}

// readPolicies parses the built-in pack and the uploaded policies around
// the directory's policies in force (dir, dirErrs); replace, when set,
// stands in for the uploaded policy with its id (an upload being
// validated).
func (s *Service) readPolicies(ctx context.Context, replace *compliance.Policy, noBuiltin bool, dir []*compliance.Policy, dirErrs []error) ([]*compliance.Policy, []error) {
	var all []*compliance.Policy
	var errs []error
	if !noBuiltin {
		p, e := compliance.LoadDir(policies.Builtin, "builtin", "builtin", "builtin")
		all, errs = append(all, p...), append(errs, e...)
	}
	all, errs = append(all, dir...), append(errs, dirErrs...)
	stored, err := s.o.Store.CompliancePolicies(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, sp := range stored {
		if replace != nil && sp.ID == replace.ID {
			continue
		}
		p, err := compliance.ParsePolicy("api:"+sp.ID, []byte(sp.YAML), "api")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, p)
	}
	if replace != nil {
		all = append(all, replace)
	}
	return all, errs
}

// PolicySet returns the loaded policies, loading them on first use.
func (s *Service) PolicySet(ctx context.Context) (*compliance.Set, []string) {
	st := &s.comp
	st.mu.RLock()
	if st.loaded {
		defer st.mu.RUnlock()
		return st.set, st.errs
	}
	st.mu.RUnlock()
	s.LoadPolicies(ctx)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.set, st.errs
}

// FactSpec is what agents collect for the loaded policies.
func (s *Service) FactSpec(ctx context.Context) agentproto.FactSpec {
	s.PolicySet(ctx)
	s.comp.mu.RLock()
	defer s.comp.mu.RUnlock()
	return s.comp.spec
}

// UploadPolicy validates and stores a policy through the API (audited)
// and reloads the set. A policy that does not parse, or whose id or check
// ids clash with another policy, is refused with file:line reasons and
// nothing changes.
func (s *Service) UploadPolicy(ctx context.Context, actor store.Actor, src []byte) (*compliance.Policy, bool, error) {
	p, err := compliance.ParsePolicy("upload", src, "api")
	if err != nil {
		return nil, false, &PolicyError{Errs: unjoin(err)}
	}
	if set, _ := s.PolicySet(ctx); set != nil {
		if old, ok := set.Policy(p.ID); ok && old.Source != "api" {
			return nil, false, fmt.Errorf("policy %q is %s (%s): %w", p.ID, old.Source, old.File, ErrPolicyReadOnly)
		}
	}
	p.File = "api:" + p.ID
	noBuiltin, dir := s.policySources()
	var dirPols []*compliance.Policy
	if dir != nil {
		dirPols, _ = dir.Current()
	}
	pols, _ := s.readPolicies(ctx, p, noBuiltin, dirPols, nil)
	if _, errs := compliance.NewSet(pols); len(errs) > 0 {
		var mine []error
		for _, e := range errs {
			if strings.HasPrefix(e.Error(), p.File+":") {
				mine = append(mine, e)
			}
		}
		if len(mine) > 0 {
			return nil, false, &PolicyError{Errs: mine}
		}
	}
	created, err := s.o.Store.PutCompliancePolicy(ctx, actor, store.CompliancePolicy{ID: p.ID, YAML: string(src)})
	if err != nil {
		return nil, false, err
	}
	s.LoadPolicies(ctx)
	return p, created, nil
}

// DeletePolicy removes an uploaded policy (audited) and reloads.
func (s *Service) DeletePolicy(ctx context.Context, actor store.Actor, id string) error {
	if set, _ := s.PolicySet(ctx); set != nil {
		if old, ok := set.Policy(id); ok && old.Source != "api" {
			return fmt.Errorf("policy %q is %s (%s): %w", id, old.Source, old.File, ErrPolicyReadOnly)
		}
	}
	if err := s.o.Store.DeleteCompliancePolicy(ctx, actor, id); err != nil {
		return err
	}
	s.LoadPolicies(ctx)
	return nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// applyFacts stores a batch's compliance facts and evaluates the
// endpoint's checks whenever a batch carries facts or an inventory.
func (s *Service) applyFacts(ctx context.Context, e store.Endpoint, b agentproto.Batch) error {
	if b.Facts == nil && b.Inventory == nil {
		return nil
	}
	if b.Facts != nil {
		if err := validateFacts(b.Facts); err != nil {
			return err
		}
		raw, err := json.Marshal(b.Facts)
		if err != nil {
			return fmt.Errorf("encode facts: %w", err)
		}
		at := b.Facts.CollectedAt
		if at.IsZero() {
			at = b.SentAt
		}
		if err := s.o.Store.PutComplianceFacts(ctx, e.ID, at, raw); err != nil {
			return err
		}
	}
	_, err := s.evaluateEndpoint(ctx, e, b.Inventory, b.Facts)
	return err
}

func validateFacts(f *agentproto.Facts) error {
	switch {
	case len(f.Files) > agentproto.MaxFactFiles:
		return &store.FieldError{Field: "facts.files", Reason: fmt.Sprintf("at most %d files", agentproto.MaxFactFiles)}
	case len(f.Sysctls) > agentproto.MaxFactSysctls:
		return &store.FieldError{Field: "facts.sysctls", Reason: fmt.Sprintf("at most %d sysctls", agentproto.MaxFactSysctls)}
	case len(f.ServicesEnabled) > agentproto.MaxServices:
		return &store.FieldError{Field: "facts.services_enabled", Reason: fmt.Sprintf("at most %d services", agentproto.MaxServices)}
	}
	for i, ff := range f.Files {
		if len(ff.Content) > agentproto.MaxFileContent {
			return &store.FieldError{Field: fmt.Sprintf("facts.files[%d].content", i), Reason: fmt.Sprintf("at most %d bytes", agentproto.MaxFileContent)}
		}
		if ff.Content != "" && !agentproto.ContentAllowed(ff.Path) {
			return &store.FieldError{Field: fmt.Sprintf("facts.files[%d].content", i), Reason: "content of " + ff.Path + " is never accepted"}
		}
	}
	for i, c := range f.Commands {
		if _, ok := agentproto.AllowedCommand(c.Name); !ok {
			return &store.FieldError{Field: fmt.Sprintf("facts.commands[%d].name", i), Reason: fmt.Sprintf("%q is not on the allow-list", c.Name)}
		}
		if len(c.Output) > agentproto.MaxCommandOutput {
			return &store.FieldError{Field: fmt.Sprintf("facts.commands[%d].output", i), Reason: fmt.Sprintf("at most %d bytes", agentproto.MaxCommandOutput)}
		}
	}
	return nil
}

// Evaluate evaluates one endpoint (id) or every live endpoint (id "")
// now, from their stored inventory and facts. It returns the number of
// endpoints evaluated.
func (s *Service) Evaluate(ctx context.Context, id string) (int, error) {
	var eps []store.Endpoint
	if id != "" {
		e, err := s.o.Store.Endpoint(ctx, id)
		if err != nil {
			return 0, err
		}
		eps = []store.Endpoint{e}
	} else {
		all, err := s.o.Store.Endpoints(ctx)
		if err != nil {
			return 0, err
		}
		eps = all
	}
	n := 0
	for _, e := range eps {
		if e.RevokedAt != nil {
			continue
		}
		ok, err := s.evaluateEndpoint(ctx, e, nil, nil)
		if err != nil {
			return n, fmt.Errorf("evaluate endpoint %s: %w", e.ID, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// evaluateEndpoint runs the checks over the given (or stored) inventory
// and facts, records the results, and raises or resolves drift alerts. It
// reports false when the endpoint has reported nothing to evaluate yet.
func (s *Service) evaluateEndpoint(ctx context.Context, e store.Endpoint, inv *agentproto.Inventory, facts *agentproto.Facts) (bool, error) {
	set, _ := s.PolicySet(ctx)
	if set == nil || len(set.Policies) == 0 {
		return false, nil
	}
	if inv == nil {
		raw, err := s.o.Store.EndpointInventory(ctx, e.ID)
		if err != nil {
			return false, err
		}
		if raw != nil {
			inv = new(agentproto.Inventory)
			if err := json.Unmarshal(raw, inv); err != nil {
				return false, fmt.Errorf("endpoint %s inventory: %w", e.ID, err)
			}
		}
	}
	if facts == nil {
		raw, err := s.o.Store.ComplianceFacts(ctx, e.ID)
		if err != nil {
			return false, err
		}
		if raw != nil {
			facts = new(agentproto.Facts)
			if err := json.Unmarshal(raw, facts); err != nil {
				return false, fmt.Errorf("endpoint %s facts: %w", e.ID, err)
			}
		}
	}
	if inv == nil && facts == nil {
		return false, nil
	}
	exc, err := s.activeExceptions(ctx)
	if err != nil {
		return false, err
	}
	s.comp.evalMu.Lock()
	defer s.comp.evalMu.Unlock()
	now := s.o.Now().UTC()
	results := set.Evaluate(compliance.NewFacts(e.ID, e.Hostname, inv, facts), exc, now)
	rows := make([]store.ComplianceResult, len(results))
	for i, r := range results {
		ev, err := json.Marshal(r.Evidence)
		if err != nil {
			return false, fmt.Errorf("encode evidence: %w", err)
		}
		rows[i] = store.ComplianceResult{Check: r.Check, Policy: r.Policy, Status: r.Status, Evidence: ev,
			ExceptionID: r.ExceptionID, CollectedAt: r.CollectedAt}
	}
	changes, err := s.o.Store.RecordComplianceResults(ctx, e.ID, rows, now)
	if err != nil {
		return false, err
	}
	return true, s.driftAlerts(ctx, set, e, changes, now)
}

// DriftFingerprint identifies the drift alert of a check on an endpoint.
func DriftFingerprint(endpointID, checkID string) string {
	return alert.Fingerprint(map[string]string{"alertname": "ComplianceDrift", "endpoint": endpointID, "check": checkID})
}

// driftAlerts raises a SOC alert for each check that went from pass (or
// from an accepted risk whose exception ended) to fail, and resolves it
// when the check passes again or an exception accepts the risk. A first evaluation that fails is a finding shown on
// the compliance pages, not drift: it raises nothing.
func (s *Service) driftAlerts(ctx context.Context, set *compliance.Set, e store.Endpoint, changes []store.ComplianceChange, now time.Time) error {
	if s.o.Alerts == nil {
		return nil
	}
	var errs []error
	for _, ch := range changes {
		r := ch.Result
		fp := DriftFingerprint(e.ID, r.Check)
		switch {
		case r.Status == compliance.StatusFail && (ch.Previous == compliance.StatusPass || ch.Previous == compliance.StatusExcepted):
			c, _ := set.Check(r.Check)
			title, sev := r.Check, "warning"
			var controls []string
			if c != nil {
				title = c.Title
				sev = map[string]string{"low": "info", "medium": "warning", "high": "high", "critical": "critical"}[c.Severity]
				for _, fw := range compliance.Frameworks() {
					for _, id := range c.Controls[fw] {
						controls = append(controls, fw+" "+id)
					}
				}
			}
			var ev []compliance.Evidence
			_ = json.Unmarshal(r.Evidence, &ev)
			desc := fmt.Sprintf("Compliance check %s (%s) started failing on %s (%s).", r.Check, title, e.Hostname, e.ID)
			if len(ev) > 0 {
				desc += "\nEvidence: " + evidenceLine(ev)
			}
			if len(controls) > 0 {
				desc += "\nControls: " + strings.Join(controls, ", ")
			}
			if c != nil && c.Remediation != "" {
				desc += "\nRemediation: " + c.Remediation
			}
			a := alert.Alert{
				Fingerprint: fp, Status: alert.StatusFiring, Team: alert.TeamSOC, Origin: alert.OriginHuman, Severity: sev,
				Title:       fmt.Sprintf("Compliance drift: %s on %s", title, e.Hostname),
				Description: desc,
				Labels:      map[string]string{"alertname": "ComplianceDrift", "endpoint": e.ID, "host": e.Hostname, "check": r.Check, "policy": r.Policy},
				Source:      "compliance", StartedAt: now, LastSeenAt: now, Occurrences: 1,
			}
			s.log.Warn("compliance drift", "endpoint", e.ID, "check", r.Check)
			if err := s.o.Alerts.Fire(ctx, a); err != nil {
				errs = append(errs, fmt.Errorf("fire drift alert %s/%s: %w", e.ID, r.Check, err))
			}
		case ch.Previous == compliance.StatusFail && (r.Status == compliance.StatusPass || r.Status == compliance.StatusExcepted):
			if err := s.o.Alerts.Resolve(ctx, fp, now); err != nil {
				errs = append(errs, fmt.Errorf("resolve drift alert %s/%s: %w", e.ID, r.Check, err))
			}
		}
	}
	return errors.Join(errs...)
}

func evidenceLine(ev []compliance.Evidence) string {
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = e.Test + " " + e.Subject + ": " + e.Observed
	}
	return strings.Join(parts, "; ")
}

func (s *Service) activeExceptions(ctx context.Context) ([]compliance.Exception, error) {
	rows, err := s.o.Store.ComplianceExceptions(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Exception, len(rows))
	for i, r := range rows {
		out[i] = exceptionOf(r)
	}
	return out, nil
}

func exceptionOf(r store.ComplianceException) compliance.Exception {
	return compliance.Exception{ID: r.ID, Endpoint: r.Endpoint, Check: r.Check, Owner: r.Owner, Reason: r.Reason,
		Expires: r.ExpiresAt, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}
}

// MaxExceptionTTL bounds how long an exception may run: risk acceptance
// is reviewed at least yearly.
const MaxExceptionTTL = 366 * 24 * time.Hour

// ExceptionInput is the changeable part of an exception.
type ExceptionInput struct {
	Endpoint string    `json:"endpoint"`
	Check    string    `json:"check"`
	Owner    string    `json:"owner"`
	Reason   string    `json:"reason"`
	Expires  time.Time `json:"expires"`
}

func (s *Service) validateException(ctx context.Context, in ExceptionInput, update bool) error {
	now := s.o.Now()
	if !update {
		set, _ := s.PolicySet(ctx)
		if _, ok := set.Check(in.Check); !ok {
			return &store.FieldError{Field: "check", Reason: fmt.Sprintf("no loaded check has id %q", in.Check)}
		}
		if in.Endpoint == "" {
			return &store.FieldError{Field: "endpoint", Reason: `is required: an endpoint id, or "*" for all endpoints`}
		}
		if in.Endpoint != "*" {
			if _, err := s.o.Store.Endpoint(ctx, in.Endpoint); errors.Is(err, store.ErrNotFound) {
				return &store.FieldError{Field: "endpoint", Reason: fmt.Sprintf("no endpoint has id %q", in.Endpoint)}
			} else if err != nil {
				return err
			}
		}
	}
	switch {
	case strings.TrimSpace(in.Owner) == "" || len(in.Owner) > 200:
		return &store.FieldError{Field: "owner", Reason: "must be 1-200 characters (who accepts the risk)"}
	case strings.TrimSpace(in.Reason) == "" || len(in.Reason) > 2000:
		return &store.FieldError{Field: "reason", Reason: "must be 1-2000 characters"}
	case !in.Expires.After(now):
		return &store.FieldError{Field: "expires", Reason: "must be in the future"}
	case in.Expires.Sub(now) > MaxExceptionTTL:
		return &store.FieldError{Field: "expires", Reason: "must be within 366 days: review accepted risk at least yearly"}
	}
	return nil
}

// CreateException records an accepted risk (audited) and re-evaluates
// the endpoints it covers, so results and drift alerts reflect it.
func (s *Service) CreateException(ctx context.Context, actor store.Actor, in ExceptionInput) (store.ComplianceException, error) {
	if err := s.validateException(ctx, in, false); err != nil {
		return store.ComplianceException{}, err
	}
	e, err := s.o.Store.CreateComplianceException(ctx, actor, store.ComplianceException{Endpoint: in.Endpoint, Check: in.Check,
		Owner: strings.TrimSpace(in.Owner), Reason: strings.TrimSpace(in.Reason), ExpiresAt: in.Expires.UTC()})
	if err != nil {
		return e, err
	}
	s.reevaluate(ctx, e.Endpoint)
	return e, nil
}

// UpdateException changes owner, reason and expiry (audited).
func (s *Service) UpdateException(ctx context.Context, actor store.Actor, id int64, in ExceptionInput) (store.ComplianceException, error) {
	if err := s.validateException(ctx, in, true); err != nil {
		return store.ComplianceException{}, err
	}
	e, err := s.o.Store.UpdateComplianceException(ctx, actor, store.ComplianceException{ID: id, Owner: strings.TrimSpace(in.Owner),
		Reason: strings.TrimSpace(in.Reason), ExpiresAt: in.Expires.UTC()})
	if err != nil {
		return e, err
	}
	s.reevaluate(ctx, e.Endpoint)
	return e, nil
}

// RevokeException ends an exception (audited); the check counts as
// failing again where it fails.
func (s *Service) RevokeException(ctx context.Context, actor store.Actor, id int64) (store.ComplianceException, error) {
	e, err := s.o.Store.RevokeComplianceException(ctx, actor, id)
	if err != nil {
		return e, err
	}
	s.reevaluate(ctx, e.Endpoint)
	return e, nil
}

// Exceptions lists exceptions; all includes revoked ones.
func (s *Service) Exceptions(ctx context.Context, all bool) ([]store.ComplianceException, error) {
	return s.o.Store.ComplianceExceptions(ctx, all)
}

// reevaluate re-runs the checks of the endpoints an exception covers; a
// failure is logged (the next report corrects it).
func (s *Service) reevaluate(ctx context.Context, endpoint string) {
	if endpoint == "*" {
		endpoint = ""
	}
	if _, err := s.Evaluate(ctx, endpoint); err != nil {
		s.log.Warn("re-evaluate after exception change", "endpoint", endpoint, "err", err)
	}
}

// ResultView is a current result with the check's title and controls.
type ResultView struct {
	compliance.Result
	Title    string              `json:"title"`
	Severity string              `json:"severity"`
	Controls map[string][]string `json:"controls"`
	Since    time.Time           `json:"since"`
}

// Results returns current results, filtered by endpoint ("" all) and
// framework ("" all; else only checks citing it).
func (s *Service) Results(ctx context.Context, endpoint, framework string) ([]ResultView, error) {
	if framework != "" {
		if err := compliance.ValidateFramework(framework); err != nil {
			return nil, &store.FieldError{Field: "framework", Reason: err.Error()}
		}
	}
	set, _ := s.PolicySet(ctx)
	rows, err := s.o.Store.ComplianceState(ctx, store.ComplianceFilter{Endpoint: endpoint})
	if err != nil {
		return nil, err
	}
	hosts, err := s.hostnames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ResultView, 0, len(rows))
	for _, r := range rows {
		c, ok := set.Check(r.Check)
		if !ok || (framework != "" && len(c.Controls[framework]) == 0) {
			continue
		}
		v := ResultView{Result: resultOf(r, hosts), Title: c.Title, Severity: c.Severity, Controls: c.Controls, Since: r.Since}
		if framework != "" {
			v.Controls = map[string][]string{framework: c.Controls[framework]}
		}
		out = append(out, v)
	}
	return out, nil
}

func resultOf(r store.ComplianceResult, hosts map[string]string) compliance.Result {
	res := compliance.Result{Endpoint: r.Endpoint, Hostname: hosts[r.Endpoint], Policy: r.Policy, Check: r.Check, Status: r.Status,
		CollectedAt: r.CollectedAt, EvaluatedAt: r.EvaluatedAt, ExceptionID: r.ExceptionID}
	if err := json.Unmarshal(r.Evidence, &res.Evidence); err != nil || res.Evidence == nil {
		res.Evidence = []compliance.Evidence{}
	}
	return res
}

func (s *Service) hostnames(ctx context.Context) (map[string]string, error) {
	eps, err := s.o.Store.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(eps))
	for _, e := range eps {
		m[e.ID] = e.Hostname
	}
	return m, nil
}

// ScoreView is the compliance summary: scores and the daily trend.
type ScoreView struct {
	compliance.Scores
	Trend []store.ComplianceTrendPoint `json:"trend"`
}

// Scores summarises current results; the trend covers the last days
// days (per endpoint and day).
func (s *Service) Scores(ctx context.Context, endpoint string, days int) (ScoreView, error) {
	set, _ := s.PolicySet(ctx)
	rows, err := s.o.Store.ComplianceState(ctx, store.ComplianceFilter{Endpoint: endpoint})
	if err != nil {
		return ScoreView{}, err
	}
	rs := make([]compliance.Result, len(rows))
	for i, r := range rows {
		rs[i] = compliance.Result{Endpoint: r.Endpoint, Policy: r.Policy, Check: r.Check, Status: r.Status}
	}
	now := s.o.Now().UTC()
	trend, err := s.o.Store.ComplianceTrend(ctx, endpoint, now.AddDate(0, 0, -days), now)
	if err != nil {
		return ScoreView{}, err
	}
	if trend == nil {
		trend = []store.ComplianceTrendPoint{}
	}
	return ScoreView{Scores: set.Score(rs), Trend: trend}, nil
}

// Report builds the evidence report of framework for [from, to): results
// as of to, the exceptions in force at any time in the period, the
// compliance operator actions from the audit log, and service levels.
func (s *Service) Report(ctx context.Context, framework string, from, to time.Time) (*compliance.Report, error) {
	if err := compliance.ValidateFramework(framework); err != nil {
		return nil, &store.FieldError{Field: "framework", Reason: err.Error()}
	}
	if !to.After(from) {
		return nil, &store.FieldError{Field: "to", Reason: "must be after from"}
	}
	set, _ := s.PolicySet(ctx)
	var ids []string
	for _, c := range set.Checks() {
		if len(c.Controls[framework]) > 0 {
			ids = append(ids, c.ID)
		}
	}
	var rows []store.ComplianceResult
	var err error
	if len(ids) > 0 {
		if rows, err = s.o.Store.ComplianceAsOf(ctx, store.ComplianceFilter{Checks: ids}, to); err != nil {
			return nil, err
		}
	}
	hosts, err := s.hostnames(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]compliance.Result, len(rows))
	for i, r := range rows {
		results[i] = resultOf(r, hosts)
	}
	all, err := s.o.Store.ComplianceExceptions(ctx, true)
	if err != nil {
		return nil, err
	}
	var exc []compliance.Exception
	for _, e := range all {
		// In force at some time in [from, to).
		end := e.ExpiresAt
		if e.RevokedAt != nil && e.RevokedAt.Before(end) {
			end = *e.RevokedAt
		}
		if e.CreatedAt.Before(to) && end.After(from) {
			if c, ok := set.Check(e.Check); ok && len(c.Controls[framework]) > 0 {
				exc = append(exc, exceptionOf(e))
			}
		}
	}
	audit, err := s.complianceAudit(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var sl *compliance.ServiceLevel
	if f := s.o.Compliance.ServiceLevel; f != nil {
		if sl, err = f(ctx, from, to); err != nil {
			s.log.Warn("compliance report: service levels unavailable", "err", err)
			sl = nil
		}
	}
	return compliance.BuildReport(compliance.ReportInput{Framework: framework, From: from, To: to, GeneratedAt: s.o.Now(),
		Set: set, Results: results, Exceptions: exc, Audit: audit, ServiceLevel: sl})
}

// complianceAudit returns the audit entries of [from, to) that touched
// compliance (policies, exceptions, reports) or endpoints.
func (s *Service) complianceAudit(ctx context.Context, from, to time.Time) ([]compliance.AuditAction, error) {
	var out []compliance.AuditAction
	var before int64
	for page := 0; page < 100; page++ {
		es, err := s.o.Store.ListAudit(ctx, store.AuditFilter{From: from, To: to, Limit: 1000, BeforeID: before})
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if strings.HasPrefix(e.Action, "compliance.") || strings.HasPrefix(e.Target, "endpoint:") ||
				strings.HasPrefix(e.Target, "compliance_") {
				out = append(out, compliance.AuditAction{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Hash: e.Hash})
			}
			before = e.ID
		}
		if len(es) < 1000 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
