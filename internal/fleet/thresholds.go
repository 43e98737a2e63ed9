package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/store"
)

// ThresholdRule raises a NOC alert when Metric compares to Value by Op
// for at least For, separately for each endpoint and label set (series).
// Labels select series: each listed label must have the given value.
type ThresholdRule struct {
	Name     string            `json:"name"`
	Metric   string            `json:"metric"`
	Labels   map[string]string `json:"labels,omitempty"`
	Op       string            `json:"op"`
	Value    float64           `json:"value"`
	For      time.Duration     `json:"-"`
	Severity string            `json:"severity"`
}

// Threshold states.
const (
	ThresholdPending = "pending"
	ThresholdFiring  = "firing"
)

func compare(v float64, op string, ref float64) (bool, error) {
	switch op {
	case ">":
		return v > ref, nil
	case ">=":
		return v >= ref, nil
	case "<":
		return v < ref, nil
	case "<=":
		return v <= ref, nil
	case "==":
		return v == ref, nil
	case "!=":
		return v != ref, nil
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

// thrState is one series of one rule.
type thrState struct {
	rule     string
	endpoint string
	host     string
	labels   map[string]string
	since    time.Time // condition true since (pending or firing)
	firing   bool
	last     time.Time // newest sample evaluated
	value    float64
	// known is false until the series was first evaluated in this
	// process: a firing alert left from before a restart is then resolved
	// if the first sample is fine.
	known bool
}

// thresholds evaluates the rules as samples arrive. Its state lives in
// memory: after a restart a pending series starts its "for" anew.
type thresholds struct {
	mu       sync.Mutex
	rules    map[string]ThresholdRule
	byMetric map[string][]string
	states   map[string]*thrState
}

func thresholdKey(rule, endpoint, labels string) string {
	return rule + "\x00" + endpoint + "\x00" + labels
}

// ThresholdFingerprint identifies the alert of one rule on one series.
func ThresholdFingerprint(rule, endpointID string, labels map[string]string) string {
	return alert.Fingerprint(map[string]string{"alertname": "EndpointThreshold", "rule": rule, "endpoint": endpointID, "series": labelString(labels)})
}

// ValidateThresholds checks rules the way the config loader does.
func ValidateThresholds(rules []ThresholdRule) error {
	seen := map[string]bool{}
	for i, r := range rules {
		switch {
		case r.Name == "" || seen[r.Name]:
			return &store.FieldError{Field: fmt.Sprintf("thresholds[%d].name", i), Reason: "must be set and unique"}
		case r.Metric == "":
			return &store.FieldError{Field: fmt.Sprintf("thresholds[%d].metric", i), Reason: "is required"}
		case r.For < 0:
			return &store.FieldError{Field: fmt.Sprintf("thresholds[%d].for", i), Reason: "must not be negative"}
		}
		if _, err := compare(0, r.Op, 0); err != nil {
			return &store.FieldError{Field: fmt.Sprintf("thresholds[%d].op", i), Reason: err.Error()}
		}
		seen[r.Name] = true
	}
	return nil
}

// SetThresholds replaces the threshold rules (at start and on config
// reload). Series of rules that are gone or changed lose their state; a
// firing alert of a removed rule is resolved.
func (s *Service) SetThresholds(ctx context.Context, rules []ThresholdRule) error {
	if err := ValidateThresholds(rules); err != nil {
		return err
	}
	t := &s.ops.thr
	t.mu.Lock()
	next := make(map[string]ThresholdRule, len(rules))
	byMetric := map[string][]string{}
	for _, r := range rules {
		if r.Severity == "" {
			r.Severity = "high"
		}
		next[r.Name] = r
		byMetric[r.Metric] = append(byMetric[r.Metric], r.Name)
	}
	var resolve []string
	for k, st := range t.states {
		old, had := t.rules[st.rule]
		nr, ok := next[st.rule]
		if ok && had && sameRule(old, nr) {
			continue
		}
		if st.firing && !ok {
			resolve = append(resolve, ThresholdFingerprint(st.rule, st.endpoint, st.labels))
		}
		delete(t.states, k)
	}
	t.rules, t.byMetric = next, byMetric
	if t.states == nil {
		t.states = map[string]*thrState{}
	}
	t.mu.Unlock()
	var errs []error
	if s.o.Alerts != nil {
		for _, fp := range resolve {
			errs = append(errs, s.o.Alerts.Resolve(ctx, fp, s.o.Now()))
		}
	}
	return errors.Join(errs...)
}

func sameRule(a, b ThresholdRule) bool {
	return a.Metric == b.Metric && a.Op == b.Op && a.Value == b.Value && a.For == b.For && a.Severity == b.Severity && labelString(a.Labels) == labelString(b.Labels)
}

func matchLabels(sel, l map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}

type thrAction struct {
	fire  *alert.Alert
	fp    string
	at    time.Time
	label string
}

// evaluateThresholds runs the rules over a batch's samples, in sample
// time order per series; samples older than the newest one seen for their
// series (a late replay) are ignored.
func (s *Service) evaluateThresholds(ctx context.Context, e store.Endpoint, samples []agentproto.Sample, sentAt time.Time) {
	s.loadFiring(ctx)
	t := &s.ops.thr
	t.mu.Lock()
	if len(t.byMetric) == 0 {
		t.mu.Unlock()
		return
	}
	idx := make([]int, 0, 8)
	for i, m := range samples {
		if len(t.byMetric[m.Name]) > 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return samples[idx[a]].Time.Before(samples[idx[b]].Time) })
	var acts []thrAction
	for _, i := range idx {
		m := samples[i]
		at := m.Time
		if at.IsZero() {
			at = sentAt
		}
		for _, name := range t.byMetric[m.Name] {
			r := t.rules[name]
			if !matchLabels(r.Labels, m.Labels) {
				continue
			}
			ls := labelString(m.Labels)
			k := thresholdKey(r.Name, e.ID, ls)
			st := t.states[k]
			if st == nil {
				st = &thrState{rule: r.Name, endpoint: e.ID, labels: m.Labels}
				t.states[k] = st
			}
			if st.known && at.Before(st.last) {
				continue
			}
			st.host, st.last, st.value = e.Hostname, at, m.Value
			cond, _ := compare(m.Value, r.Op, r.Value)
			fp := ThresholdFingerprint(r.Name, e.ID, m.Labels)
			switch {
			case cond:
				if st.since.IsZero() {
					st.since = at
				}
				if !st.firing && at.Sub(st.since) >= r.For {
					st.firing = true
					a := thresholdAlert(r, e, m, st.since, fp)
					acts = append(acts, thrAction{fire: &a})
				}
			case st.firing || (!st.known && s.isFiring(fp)):
				acts = append(acts, thrAction{fp: fp, at: at, label: r.Name})
				fallthrough
			default:
				st.since, st.firing = time.Time{}, false
			}
			st.known = true
		}
	}
	t.mu.Unlock()
	if s.o.Alerts == nil {
		return
	}
	for _, a := range acts {
		if a.fire != nil {
			s.log.Info("threshold alert firing", "endpoint", e.ID, "hostname", e.Hostname, "rule", a.fire.Labels["rule"], "value", a.fire.Labels["value"])
			if err := s.o.Alerts.Fire(ctx, *a.fire); err != nil {
				s.log.Error("fire threshold alert", "endpoint", e.ID, "err", err)
				continue
			}
			s.setFiring(a.fire.Fingerprint, true)
			continue
		}
		if err := s.o.Alerts.Resolve(ctx, a.fp, a.at); err != nil {
			s.log.Error("resolve threshold alert", "endpoint", e.ID, "rule", a.label, "err", err)
			continue
		}
		s.setFiring(a.fp, false)
	}
}

func thresholdAlert(r ThresholdRule, e store.Endpoint, m agentproto.Sample, since time.Time, fp string) alert.Alert {
	labels := map[string]string{}
	for k, v := range m.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{"alertname": r.Name, "rule": r.Name, "endpoint": e.ID, "host": e.Hostname, "metric": r.Metric} {
		labels[k] = v
	}
	series := r.Metric
	if ls := labelString(m.Labels); ls != "" {
		series += "{" + ls + "}"
	}
	return alert.Alert{
		Fingerprint: fp,
		Status:      alert.StatusFiring,
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    r.Severity,
		Title:       fmt.Sprintf("%s on %s: %s = %g (%s %g)", r.Name, e.Hostname, series, m.Value, r.Op, r.Value),
		Description: fmt.Sprintf("Endpoint %s (%s): %s has been %s %g since %s (rule %q, for %s).", e.Hostname, e.ID, series, r.Op, r.Value, since.UTC().Format(time.RFC3339), r.Name, r.For),
		Labels:      labels,
		Source:      "threshold:" + r.Name,
		StartedAt:   since,
		LastSeenAt:  m.Time,
		Occurrences: 1,
	}
}

// ThresholdState is one series of a threshold rule that is pending or
// firing.
type ThresholdState struct {
	Endpoint string            `json:"endpoint"`
	Host     string            `json:"host"`
	Rule     string            `json:"rule"`
	Metric   string            `json:"metric"`
	Labels   map[string]string `json:"labels,omitempty"`
	State    string            `json:"state"`
	Since    time.Time         `json:"since"`
	Value    float64           `json:"value"`
	At       time.Time         `json:"at"`
}

// ThresholdStates returns the pending and firing series of an endpoint
// (every endpoint when id is empty), by rule.
func (s *Service) ThresholdStates(ctx context.Context, id string) ([]ThresholdState, error) {
	if id != "" {
		if _, err := s.o.Store.Endpoint(ctx, id); err != nil {
			return nil, err
		}
	}
	t := &s.ops.thr
	t.mu.Lock()
	out := []ThresholdState{}
	for _, st := range t.states {
		if st.since.IsZero() || (id != "" && st.endpoint != id) {
			continue
		}
		ts := ThresholdState{Endpoint: st.endpoint, Host: st.host, Rule: st.rule, Metric: t.rules[st.rule].Metric, Labels: st.labels, State: ThresholdPending, Since: st.since, Value: st.value, At: st.last}
		if st.firing {
			ts.State = ThresholdFiring
		}
		out = append(out, ts)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return labelString(out[i].Labels) < labelString(out[j].Labels)
	})
	return out, nil
}

// Thresholds returns the configured rules by name.
func (s *Service) Thresholds() []ThresholdRule {
	t := &s.ops.thr
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ThresholdRule, 0, len(t.rules))
	for _, r := range t.rules {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// fleetOps is the state of the operations over reported data
// (thresholds, forecasts, root-cause attribution).
type fleetOps struct {
	thr  thresholds
	fc   forecaster
	rcMu sync.Mutex
	rc   RootCauseSink
	// firing holds the fingerprints of the threshold and forecast alerts
	// that are firing, loaded from the store once, so that a series found
	// fine resolves only what is open (a resolve goes through the
	// incident pipeline's commit).
	firingMu     sync.Mutex
	firingLoaded bool
	firing       map[string]bool
}

// loadFiring reads the open threshold and forecast alerts once.
func (s *Service) loadFiring(ctx context.Context) {
	o := &s.ops
	o.firingMu.Lock()
	defer o.firingMu.Unlock()
	if o.firingLoaded {
		return
	}
	o.firing = map[string]bool{}
	as, err := s.o.Store.FiringAlerts(ctx)
	if err != nil {
		s.log.Warn("load firing alerts; every series resolves once", "err", err)
		o.firing = nil // unknown: resolve everything once
	}
	for _, a := range as {
		if strings.HasPrefix(a.Source, "threshold:") || a.Source == "forecast" {
			o.firing[a.Fingerprint] = true
		}
	}
	o.firingLoaded = true
}

// isFiring says whether fp may be firing.
func (s *Service) isFiring(fp string) bool {
	s.ops.firingMu.Lock()
	defer s.ops.firingMu.Unlock()
	return s.ops.firing == nil || s.ops.firing[fp]
}

func (s *Service) setFiring(fp string, on bool) {
	s.ops.firingMu.Lock()
	defer s.ops.firingMu.Unlock()
	if s.ops.firing == nil {
		s.ops.firing = map[string]bool{}
	}
	if on {
		s.ops.firing[fp] = true
	} else {
		delete(s.ops.firing, fp)
	}
}

// afterBatch runs the operations over a freshly applied batch: threshold
// rules, the forecast's hourly points and the endpoint's addresses. They
// never fail the batch: the data is stored already.
func (s *Service) afterBatch(ctx context.Context, e store.Endpoint, b agentproto.Batch) {
	if len(b.Metrics) > 0 {
		s.evaluateThresholds(ctx, e, b.Metrics, b.SentAt)
		s.feedForecast(ctx, e, b.Metrics)
	}
	if b.Inventory != nil {
		addrs := make([]string, 0, len(b.Inventory.IPs))
		for _, ip := range b.Inventory.IPs {
			if i := strings.IndexByte(ip, '/'); i >= 0 {
				ip = ip[:i] // "10.0.0.5/24"
			}
			// Loopback is on every machine and link-local says nothing
			// about which one: neither identifies the endpoint.
			if p := net.ParseIP(ip); p != nil && !p.IsLoopback() && !p.IsLinkLocalUnicast() {
				addrs = append(addrs, p.String())
			}
		}
		if err := s.o.Store.SetEndpointAddresses(ctx, e.ID, addrs); err != nil {
			s.log.Error("record endpoint addresses", "endpoint", e.ID, "err", err)
		}
	}
}
