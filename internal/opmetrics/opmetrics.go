// Package opmetrics computes operation metrics over incidents: mean time to
// acknowledge and to resolve with percentiles, alert volume and noise,
// escalations and hand-offs, per team, tier, severity and service. It is
// pure computation; callers load the incidents.
package opmetrics

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"
)

// Teams.
const (
	TeamNOC = "noc"
	TeamSOC = "soc"
)

// None is the breakdown key for incidents with no severity or service.
const None = "(none)"

// Filter selects incidents. Zero From or To leaves that end of the period
// open. Team (noc or soc) keeps incidents owned by the team and joint
// incidents; Severity and Service keep exact matches. Empty fields keep
// everything.
type Filter struct {
	From, To time.Time
	Team     string
	Severity string
	Service  string
}

// Stat summarises durations. Percentiles use the nearest-rank method; the
// mean is truncated to the nanosecond. With Count 0 all durations are 0.
type Stat struct {
	Count int
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
}

type statJSON struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_seconds"`
	P50   float64 `json:"p50_seconds"`
	P90   float64 `json:"p90_seconds"`
}

// MarshalJSON writes durations as seconds (floats).
func (s Stat) MarshalJSON() ([]byte, error) {
	return json.Marshal(statJSON{Count: s.Count, Mean: s.Mean.Seconds(), P50: s.P50.Seconds(), P90: s.P90.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Stat) UnmarshalJSON(b []byte) error {
	var v statJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("opmetrics stat: %w", err)
	}
	sec := func(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }
	*s = Stat{Count: v.Count, Mean: sec(v.Mean), P50: sec(v.P50), P90: sec(v.P90)}
	return nil
}

// Breakdown is the slice of a report for one team, severity, service or
// tier.
type Breakdown struct {
	Incidents   int  `json:"incidents"`
	MTTA        Stat `json:"mtta"`
	MTTR        Stat `json:"mttr"`
	Escalations int  `json:"escalations"`
	Handoffs    int  `json:"handoffs"`
}

// Report holds the operation metrics for a period. See docs/metrics.md for
// the exact definitions.
type Report struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Team     string    `json:"team,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Service  string    `json:"service,omitempty"`
	// MTTA is over incidents first acknowledged in [From, To): ack − trigger.
	MTTA Stat `json:"mtta"`
	// MTTR is over incidents resolved in [From, To): resolve − trigger.
	MTTR Stat `json:"mttr"`
	// Incidents counts incidents triggered in [From, To).
	Incidents int `json:"incidents"`
	// Alerts is the alert volume of the period; AlertsPerIncident is
	// Alerts / Incidents (0 without incidents), the noise ratio.
	Alerts            int     `json:"alerts"`
	AlertsPerIncident float64 `json:"alerts_per_incident"`
	// Escalations and Handoffs sum the counters of the incidents triggered
	// in [From, To).
	Escalations int `json:"escalations"`
	Handoffs    int `json:"handoffs"`

	ByTeam     map[string]Breakdown `json:"by_team"`
	BySeverity map[string]Breakdown `json:"by_severity"`
	ByService  map[string]Breakdown `json:"by_service"`
	ByTier     map[string]Breakdown `json:"by_tier"`
}

// TierName names an escalation tier index: 0 is "L1".
func TierName(tier int) string { return fmt.Sprintf("L%d", tier+1) }

// Compute builds the report for the incidents that pass f. alerts is the
// alert volume of the period as counted by the caller with the same
// filter; a negative value means "not known", and the alert counts of the
// incidents triggered in the period are summed instead. Incidents merged
// into another (MergedInto != 0) are skipped: their alerts and history
// live on in the incident they were merged into.
func Compute(incs []incident.Incident, alerts int, f Filter) Report {
	r := Report{
		From: f.From, To: f.To, Team: f.Team, Severity: f.Severity, Service: f.Service,
		ByTeam: map[string]Breakdown{}, BySeverity: map[string]Breakdown{},
		ByService: map[string]Breakdown{}, ByTier: map[string]Breakdown{},
	}
	total := newAcc()
	groups := map[[2]string]*acc{} // {dimension, key}
	add := func(dim, key string, fn func(a *acc)) {
		k := [2]string{dim, key}
		a := groups[k]
		if a == nil {
			a = newAcc()
			groups[k] = a
		}
		fn(a)
	}
	alertSum := 0
	for i := range incs {
		inc := &incs[i]
		if inc.MergedInto != 0 || !keep(inc, f) {
			continue
		}
		var teams []string
		switch {
		case inc.Joint && f.Team == "":
			teams = []string{TeamNOC, TeamSOC}
		case inc.Joint:
			teams = []string{f.Team}
		case inc.Team != "":
			teams = []string{inc.Team}
		default:
			teams = []string{None}
		}
		sev, svc := orNone(inc.Severity), orNone(inc.Service)
		tier := TierName(inc.Tier)
		each := func(fn func(a *acc)) {
			fn(total)
			for _, t := range teams {
				add("team", t, fn)
			}
			add("severity", sev, fn)
			add("service", svc, fn)
			add("tier", tier, fn)
		}
		if in(inc.TriggeredAt, f) {
			alertSum += inc.AlertCount
			each(func(a *acc) {
				a.incidents++
				a.escalations += inc.Escalations
				a.handoffs += inc.Handoffs
			})
		}
		if inc.AcknowledgedAt != nil && in(*inc.AcknowledgedAt, f) {
			d := nonNeg(inc.AcknowledgedAt.Sub(inc.TriggeredAt))
			each(func(a *acc) { a.tta = append(a.tta, d) })
		}
		if inc.ResolvedAt != nil && in(*inc.ResolvedAt, f) {
			d := nonNeg(inc.ResolvedAt.Sub(inc.TriggeredAt))
			each(func(a *acc) { a.ttr = append(a.ttr, d) })
		}
	}
	r.Incidents, r.Escalations, r.Handoffs = total.incidents, total.escalations, total.handoffs
	r.MTTA, r.MTTR = stat(total.tta), stat(total.ttr)
	r.Alerts = alerts
	if alerts < 0 {
		r.Alerts = alertSum
	}
	if r.Incidents > 0 {
		r.AlertsPerIncident = float64(r.Alerts) / float64(r.Incidents)
	}
	for k, a := range groups {
		b := a.breakdown()
		switch k[0] {
		case "team":
			r.ByTeam[k[1]] = b
		case "severity":
			r.BySeverity[k[1]] = b
		case "service":
			r.ByService[k[1]] = b
		case "tier":
			r.ByTier[k[1]] = b
		}
	}
	return r
}

// acc accumulates one group.
type acc struct {
	incidents, escalations, handoffs int
	tta, ttr                         []time.Duration
}

func newAcc() *acc { return &acc{} }

func (a *acc) breakdown() Breakdown {
	return Breakdown{Incidents: a.incidents, MTTA: stat(a.tta), MTTR: stat(a.ttr), Escalations: a.escalations, Handoffs: a.handoffs}
}

// keep applies the team, severity and service parts of the filter.
func keep(inc *incident.Incident, f Filter) bool {
	if f.Team != "" && inc.Team != f.Team && !inc.Joint {
		return false
	}
	if f.Severity != "" && inc.Severity != f.Severity {
		return false
	}
	if f.Service != "" && inc.Service != f.Service {
		return false
	}
	return true
}

// in reports whether t is in [From, To), a zero bound being open.
func in(t time.Time, f Filter) bool {
	if !f.From.IsZero() && t.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !t.Before(f.To) {
		return false
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}

// nonNeg clamps a negative duration (an acknowledgement stamped before the
// trigger by a skewed external clock) to zero, so it cannot pull the mean
// below what is possible.
func nonNeg(d time.Duration) time.Duration { return max(d, 0) }

// stat computes count, mean and nearest-rank p50/p90. It sorts ds.
func stat(ds []time.Duration) Stat {
	n := len(ds)
	if n == 0 {
		return Stat{}
	}
	slices.Sort(ds)
	// Sum whole seconds and the nanosecond remainders apart so that a long
	// period of long incidents cannot overflow int64 nanoseconds.
	var secs, nanos int64
	for _, d := range ds {
		secs += int64(d / time.Second)
		nanos += int64(d % time.Second)
	}
	n64 := int64(n)
	mean := (secs/n64)*int64(time.Second) + ((secs%n64)*int64(time.Second)+nanos)/n64
	return Stat{Count: n, Mean: time.Duration(mean), P50: nearestRank(ds, 50), P90: nearestRank(ds, 90)}
}

// nearestRank returns the p-th percentile of sorted ds by the nearest-rank
// method: the value at rank ceil(p/100 × n), 1-based.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	rank := (p*n + 99) / 100
	rank = max(rank, 1)
	return sorted[rank-1]
}
