package autoresponse

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/config"
	"github.com/nocsoc/nocsoc/internal/decision"
	"github.com/nocsoc/nocsoc/internal/sigma"
	"github.com/nocsoc/nocsoc/internal/store"
)

// ruleResponse is what a detection rule's alert triggers.
type ruleResponse struct {
	Action   string
	Field    string
	Duration time.Duration
	Scope    string // host or fleet
}

// ruleMeta is the part of a Sigma rule this package reads: the custom
// top-level key nocsoc.response (Sigma allows custom fields; the engine
// ignores it).
//
//	nocsoc:
//	  response:
//	    action: block_ip   # or isolate_host, lock_user, kill_process
//	    duration: 4h
//	    scope: host        # the attacked host; or fleet
//	    field: source.ip   # the alert field to act on
type ruleMeta struct {
	Nocsoc struct {
		Response *struct {
			Action   string `yaml:"action"`
			Duration string `yaml:"duration"`
			Scope    string `yaml:"scope"`
			Field    string `yaml:"field"`
		} `yaml:"response"`
	} `yaml:"nocsoc"`
}

// RuleResponse reads a rule's nocsoc.response metadata; ok is false when
// it has none. A malformed one is an error naming the rule.
func RuleResponse(r *sigma.Rule) (ruleResponse, bool, error) {
	var m ruleMeta
	if err := yaml.Unmarshal(r.Raw, &m); err != nil || m.Nocsoc.Response == nil {
		return ruleResponse{}, false, nil
	}
	x := m.Nocsoc.Response
	rr := ruleResponse{Action: x.Action, Field: x.Field, Scope: x.Scope}
	if x.Duration != "" {
		d, err := time.ParseDuration(x.Duration)
		if err != nil || d <= 0 {
			return rr, false, fmt.Errorf("rule %s: nocsoc.response.duration: %q is not a positive duration", r.ID, x.Duration)
		}
		rr.Duration = d
	}
	rr, err := rr.normalize()
	if err != nil {
		return rr, false, fmt.Errorf("rule %s: nocsoc.response: %w", r.ID, err)
	}
	return rr, true, nil
}

func (rr ruleResponse) normalize() (ruleResponse, error) {
	switch rr.Action {
	case KindBlockIP:
		if rr.Field == "" {
			rr.Field = "source.ip"
		}
	case KindLockUser:
		if rr.Field == "" {
			rr.Field = "user.name"
		}
	case KindIsolateHost:
	case KindKillProcess:
		if rr.Field == "" {
			rr.Field = "process.pid"
		}
	default:
		return rr, fmt.Errorf("action %q is not block_ip, isolate_host, lock_user or kill_process", rr.Action)
	}
	switch rr.Scope {
	case "":
		rr.Scope = "host"
	case "host", "fleet":
	default:
		return rr, fmt.Errorf("scope %q is not host or fleet", rr.Scope)
	}
	if rr.Duration == 0 {
		rr.Duration = decision.DefaultDuration
	}
	return rr, nil
}

// ruleResponses maps rule ids (and names) to responses: the configured
// response.rules over the rules' own metadata, which is read once per
// rule set (the engine is swapped whole on reload).
type ruleResponses struct {
	configured map[string]ruleResponse
	mu         sync.Mutex
	seen       *sigma.Rule // first rule of the cached set
	seenN      int
	fromRules  map[string]ruleResponse
}

func newRuleResponses(rules []config.ResponseRule) (*ruleResponses, error) {
	r := &ruleResponses{configured: map[string]ruleResponse{}}
	for i, c := range rules {
		rr, err := ruleResponse{Action: c.Action, Field: c.Field, Duration: c.Duration.D(), Scope: c.Scope}.normalize()
		if err != nil {
			return nil, fmt.Errorf("autoresponse: response.rules[%d]: %w", i, err)
		}
		r.configured[c.Rule] = rr
	}
	return r, nil
}

// lookup finds the response for the rule with id (or name) among rules.
func (r *ruleResponses) lookup(rules []*sigma.Rule, id string) (ruleResponse, *sigma.Rule, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(rules) > 0 && (r.seen != rules[0] || r.seenN != len(rules)) {
		r.fromRules = map[string]ruleResponse{}
		for _, rule := range rules {
			rr, ok, err := RuleResponse(rule)
			if err != nil || !ok {
				continue
			}
			r.fromRules[rule.ID] = rr
			if rule.Name != "" {
				r.fromRules[rule.Name] = rr
			}
		}
		r.seen, r.seenN = rules[0], len(rules)
	}
	var rule *sigma.Rule
	for _, x := range rules {
		if x.ID == id {
			rule = x
			break
		}
	}
	keys := []string{id}
	if rule != nil && rule.Name != "" {
		keys = append(keys, rule.Name)
	}
	for _, k := range keys {
		if rr, ok := r.configured[k]; ok {
			return rr, rule, true
		}
	}
	for _, k := range keys {
		if rr, ok := r.fromRules[k]; ok {
			return rr, rule, true
		}
	}
	return ruleResponse{}, rule, false
}

// AlertSink is where detection alerts go (the incident workflow).
type AlertSink interface {
	Fire(ctx context.Context, a alert.Alert) error
}

// BatchSink is an AlertSink that also takes a detection batch at once.
type BatchSink interface {
	AlertSink
	FireAll(ctx context.Context, as []alert.Alert) error
}

type alertJob struct {
	a     alert.Alert
	rules []*sigma.Rule
}

// sink passes alerts on and queues the detection ones for automatic
// response.
type sink struct {
	next  AlertSink
	s     *Service
	rules func() []*sigma.Rule
}

// Sink wraps next: every alert goes on to next unchanged; alerts of
// detection rules with a response are then queued for Run, never
// blocking detection (a full queue drops and counts). rules returns the
// loaded detection rules (the detector's engine).
func (s *Service) Sink(next AlertSink, rules func() []*sigma.Rule) BatchSink {
	return &sink{next: next, s: s, rules: rules}
}

func (k *sink) Fire(ctx context.Context, a alert.Alert) error {
	err := k.next.Fire(ctx, a)
	k.respond(a, nil)
	return err
}

// FireAll is Fire for one detection batch: next gets the whole batch in
// one call when it takes batches (one commit in the incident workflow).
func (k *sink) FireAll(ctx context.Context, as []alert.Alert) error {
	var err error
	if b, ok := k.next.(interface {
		FireAll(context.Context, []alert.Alert) error
	}); ok {
		err = b.FireAll(ctx, as)
	} else {
		for _, a := range as {
			if err = k.next.Fire(ctx, a); err != nil {
				break
			}
		}
	}
	var rules []*sigma.Rule
	if k.rules != nil {
		rules = k.rules()
	}
	for _, a := range as {
		k.respond(a, rules)
	}
	return err
}

// respond queues a detection alert for its rule's automatic response;
// rules nil means read them now.
func (k *sink) respond(a alert.Alert, rules []*sigma.Rule) {
	if !strings.HasPrefix(a.Source, "sigma:") {
		return
	}
	if rules == nil && k.rules != nil {
		rules = k.rules()
	}
	// Only alerts of rules that have a response are queued: under a flood
	// of detections the queue then holds what can act, not every alert.
	if _, _, ok := k.s.conf().rules.lookup(rules, strings.TrimPrefix(a.Source, "sigma:")); !ok {
		return
	}
	select {
	case k.s.alerts <- alertJob{a: a, rules: rules}:
	default:
		k.s.dropped.Add(1)
		if k.s.warnOnce("queue-full:" + a.Labels["rule_id"]) {
			k.s.log.Warn("automatic response queue full; alert dropped (logged once an hour per rule; counted in every drop)", "rule", a.Labels["rule_id"])
		}
	}
}

// HandleAlert runs the automatic response of a's rule, if it has one
// (Run calls it for queued alerts; tests call it directly).
func (s *Service) HandleAlert(ctx context.Context, a alert.Alert, rules []*sigma.Rule) {
	s.handleAlert(ctx, alertJob{a: a, rules: rules})
}

func field(a alert.Alert, name string) string {
	if v := a.Labels[name]; v != "" {
		return v
	}
	return a.Annotations[name]
}

func (s *Service) handleAlert(ctx context.Context, aj alertJob) {
	a := aj.a
	id := strings.TrimPrefix(a.Source, "sigma:")
	rr, rule, ok := s.conf().rules.lookup(aj.rules, id)
	if !ok {
		return
	}
	title := id
	if rule != nil {
		title = rule.Title
	}
	log := s.log.With("rule", id, "action", rr.Action)
	var eps []string
	if rr.Scope == "host" {
		host := field(a, "host.name")
		if host == "" {
			s.refusedNoTarget.Add(1)
			log.Warn("automatic response skipped: the alert names no host.name")
			return
		}
		all, err := s.st.Endpoints(ctx)
		if err != nil {
			log.Error("automatic response: list endpoints", "err", err)
			return
		}
		for _, e := range all {
			if e.RevokedAt == nil && strings.EqualFold(e.Hostname, host) {
				eps = append(eps, e.ID)
			}
		}
		if len(eps) == 0 {
			s.refusedNoTarget.Add(1)
			if s.warnOnce("no-endpoint:" + id + ":" + strings.ToLower(host)) {
				log.Warn("automatic response skipped: no enrolled endpoint has this hostname (logged once an hour per rule and host)", "host", host)
			}
			return
		}
	}
	act := store.ResponseAction{Kind: rr.Action, Params: map[string]string{}, Endpoints: eps, Origin: decision.OriginRule,
		OriginRef: "rule:" + id, RequestedBy: systemActor.Name, RequestedAt: s.now().UTC(),
		Reason: truncate(fmt.Sprintf("%s: %s", title, a.Title), 1024), AlertFingerprint: alertFingerprint(a)}
	// The incident workflow has normally committed the alert (and its
	// incident) before the sink queues it here, so the incident is found
	// now and the request, execution and result all go on its timeline.
	// When it is not there yet (the alert was grouped later, or came
	// through a sink that does not wait for the commit), Reconcile links
	// the action when the incident appears (linkIncidents).
	if act.AlertFingerprint != "" {
		if inc, err := s.st.IncidentForAlert(ctx, act.AlertFingerprint); err == nil {
			act.IncidentID = inc
		}
	}
	switch rr.Action {
	case KindBlockIP:
		v := field(a, rr.Field)
		addr, err := netip.ParseAddr(v)
		if err != nil {
			s.refusedNoTarget.Add(1)
			log.Warn("automatic response skipped: the alert field is not an address", "field", rr.Field, "value", v)
			return
		}
		v = addr.Unmap().String()
		if _, err := s.conf().policy.Validate(decision.Request{Value: v}, systemActor.Name, s.now()); err != nil {
			s.refusedGuard.Add(1)
			log.Warn("automatic block refused", "value", v, "err", err)
			return
		}
		if s.alreadyBlocked(ctx, v, eps) {
			return
		}
		act.Params["value"] = v
		act.Params["duration"] = s.repeatDuration(ctx, v, rr.Duration).String()
	case KindLockUser:
		u := field(a, rr.Field)
		if u == "" || u == "root" {
			s.refusedNoTarget.Add(1)
			log.Warn("automatic lock skipped: no lockable user in the alert", "field", rr.Field, "value", u)
			return
		}
		act.Params["user"] = u
	case KindKillProcess:
		pid, name := field(a, rr.Field), field(a, "process.name")
		if pid == "" || name == "" || len(eps) != 1 {
			s.refusedNoTarget.Add(1)
			log.Warn("automatic kill skipped: needs process.pid, process.name and exactly one host")
			return
		}
		act.Params["pid"], act.Params["name"] = pid, name
	}
	if ok, why := s.limits.allow(rr.Action, s.now()); !ok {
		s.refusedRate.Add(1)
		log.Warn("automatic response refused by rate limit", "limit", why)
		return
	}
	act.NeedsApproval = s.needsApproval(act.Kind, act.Endpoints == nil && act.Labels == nil)
	act.Status = StatusApproved
	msg := fmt.Sprintf("rule %q requested %s", title, describe(act))
	if act.NeedsApproval {
		act.Status = StatusPending
		msg += " (waiting for approval)"
	}
	stored, err := s.st.CreateResponseAction(ctx, systemActor, act, msg)
	if err != nil {
		log.Error("automatic response: store", "err", err)
		return
	}
	log.Info("automatic response", "id", stored.ID, "status", stored.Status, "params", stored.Params)
	if stored.Status != StatusApproved {
		return
	}
	if _, err := s.execute(ctx, systemActor, stored, false); err != nil {
		log.Error("automatic response: execute", "id", stored.ID, "err", err)
	}
}

// alertFingerprint is the fingerprint the incident workflow files a under
// (as internal/response derives it when the alert carries none).
func alertFingerprint(a alert.Alert) string {
	switch {
	case a.Fingerprint != "":
		return a.Fingerprint
	case a.DedupKey != "":
		return alert.Fingerprint(map[string]string{"dedup_key": a.DedupKey, "integration": a.Integration})
	case len(a.Labels) > 0:
		return alert.Fingerprint(a.Labels)
	}
	return ""
}

// linkWindow is how long after its request an automatic response is
// still linked to its alert's incident when that appears late.
const linkWindow = 15 * time.Minute

// linkIncidents attaches automatic responses whose alert had no incident
// yet to the incident it has now, noting on its timeline what the action
// did so far. Actions older than linkWindow are left alone: an alert that
// found no incident by then was suppressed or never grouped.
func (s *Service) linkIncidents(ctx context.Context) error {
	as, err := s.st.UnlinkedResponseActions(ctx, s.now().Add(-linkWindow))
	if err != nil {
		return err
	}
	for _, a := range as {
		inc, err := s.st.IncidentForAlert(ctx, a.AlertFingerprint)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("automatic response #%d (%s), requested by %s at %s, linked to this incident; status %s",
			a.ID, describe(a), a.OriginRef, a.RequestedAt.UTC().Format(time.RFC3339), a.Status)
		if a.DecisionID != 0 {
			msg += fmt.Sprintf(", decision #%d", a.DecisionID)
		}
		if a.Result != "" {
			msg += ": " + truncate(a.Result, 500)
		}
		if _, err := s.st.LinkResponseIncident(ctx, systemActor, a.ID, inc, msg); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// alreadyBlocked reports whether an active decision for value covers all
// of eps (nil: the fleet), so a correlation that keeps firing during one
// attack does not stack blocks.
func (s *Service) alreadyBlocked(ctx context.Context, value string, eps []string) bool {
	ds, err := s.st.ListDecisions(ctx, s.now(), false, 0)
	if err != nil {
		return false
	}
	var labels map[string]map[string]string // endpoint id → labels, read once if needed
	for _, d := range ds {
		if d.Value != value || d.Type != decision.TypeBan {
			continue
		}
		if d.FleetWide() {
			return true
		}
		if eps == nil {
			continue
		}
		if d.Labels != nil && labels == nil {
			labels = map[string]map[string]string{}
			all, err := s.st.Endpoints(ctx)
			if err != nil {
				return false
			}
			for _, e := range all {
				if e.RevokedAt == nil {
					labels[e.ID] = e.Labels
				}
			}
		}
		all := true
		for _, e := range eps {
			if !d.AppliesToEndpoint(e, labels[e]) {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}
