package opmetrics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"
)

var t0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

// inc builds an incident triggered at t0+trig, acknowledged ack after the
// trigger and resolved res after the trigger (negative: never).
func inc(team string, trig, ack, res time.Duration) incident.Incident {
	i := incident.Incident{Team: team, Severity: "high", Service: "web", TriggeredAt: t0.Add(trig), AlertCount: 1}
	if ack >= 0 {
		i.AcknowledgedAt = at(trig + ack)
	}
	if res >= 0 {
		i.ResolvedAt = at(trig + res)
	}
	return i
}

const never = -1

func TestStatNearestRank(t *testing.T) {
	s := func(secs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range secs {
			ds = append(ds, time.Duration(x)*time.Second)
		}
		return ds
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Stat
	}{
		{"empty", nil, Stat{}},
		{"one", s(42), Stat{1, 42 * time.Second, 42 * time.Second, 42 * time.Second}},
		{"two", s(10, 20), Stat{2, 15 * time.Second, 10 * time.Second, 20 * time.Second}},
		// Ten values 1..10: p50 rank ceil(5)=5 → 5, p90 rank 9 → 9.
		{"ten unsorted", s(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), Stat{10, 5500 * time.Millisecond, 5 * time.Second, 9 * time.Second}},
		// Eleven values: p50 rank ceil(5.5)=6, p90 rank ceil(9.9)=10.
		{"eleven", s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), Stat{11, 6 * time.Second, 6 * time.Second, 10 * time.Second}},
		{"three mean truncates", []time.Duration{1, 1, 2}, Stat{3, 1, 1, 2}},
		{"zeros", s(0, 0), Stat{2, 0, 0, 0}},
	}
	for _, tc := range tests {
		if got := stat(tc.in); got != tc.want {
			t.Errorf("%s: stat = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

func TestStatNoOverflow(t *testing.T) {
	// 100,000 incidents of 100 days each: the nanosecond sum overflows
	// int64, the mean must not.
	ds := make([]time.Duration, 100_000)
	for i := range ds {
		ds[i] = 100*24*time.Hour + 1
	}
	if got, want := stat(ds).Mean, 100*24*time.Hour+1; got != want {
		t.Errorf("mean = %v; want %v", got, want)
	}
}

func TestCompute(t *testing.T) {
	from, to := t0, t0.Add(24*time.Hour)
	f := Filter{From: from, To: to}
	tests := []struct {
		name   string
		incs   []incident.Incident
		alerts int
		f      Filter
		check  func(t *testing.T, r Report)
	}{
		{
			name: "empty period",
			incs: nil, alerts: 0, f: f,
			check: func(t *testing.T, r Report) {
				if r.MTTA != (Stat{}) || r.MTTR != (Stat{}) || r.Incidents != 0 || r.AlertsPerIncident != 0 {
					t.Errorf("report = %+v; want zeros", r)
				}
				if r.ByTeam == nil || r.BySeverity == nil || r.ByService == nil || r.ByTier == nil {
					t.Error("breakdown maps must be non-nil (JSON {} not null)")
				}
			},
		},
		{
			name: "means and percentiles",
			incs: []incident.Incident{
				inc("noc", time.Hour, 1*time.Minute, 10*time.Minute),
				inc("noc", 2*time.Hour, 2*time.Minute, 20*time.Minute),
				inc("noc", 3*time.Hour, 3*time.Minute, 30*time.Minute),
				inc("noc", 4*time.Hour, 10*time.Minute, never),
			},
			alerts: 10, f: f,
			check: func(t *testing.T, r Report) {
				// TTA 1,2,3,10 min: mean 4m, p50 rank 2 → 2m, p90 rank 4 → 10m.
				wantA := Stat{4, 4 * time.Minute, 2 * time.Minute, 10 * time.Minute}
				// TTR 10,20,30 min: mean 20m, p50 rank 2 → 20m, p90 rank 3 → 30m.
				wantR := Stat{3, 20 * time.Minute, 20 * time.Minute, 30 * time.Minute}
				if r.MTTA != wantA || r.MTTR != wantR {
					t.Errorf("MTTA %+v MTTR %+v; want %+v %+v", r.MTTA, r.MTTR, wantA, wantR)
				}
				if r.Incidents != 4 || r.Alerts != 10 || r.AlertsPerIncident != 2.5 {
					t.Errorf("incidents %d alerts %d per incident %v; want 4 10 2.5", r.Incidents, r.Alerts, r.AlertsPerIncident)
				}
			},
		},
		{
			name: "boundaries: ack at From counts, at To does not",
			incs: []incident.Incident{
				// Triggered before the period, acked exactly at From: in MTTA.
				{Team: "noc", TriggeredAt: from.Add(-time.Minute), AcknowledgedAt: at(0)},
				// Acked exactly at To: not in MTTA; resolved at To-1ns: in MTTR.
				{Team: "noc", TriggeredAt: to.Add(-time.Hour), AcknowledgedAt: &to, ResolvedAt: ptr(to.Add(-1))},
				// Triggered exactly at To: not counted.
				{Team: "noc", TriggeredAt: to},
				// Resolved before From: not in MTTR.
				{Team: "noc", TriggeredAt: from.Add(-2 * time.Hour), ResolvedAt: ptr(from.Add(-time.Nanosecond))},
			},
			alerts: 0, f: f,
			check: func(t *testing.T, r Report) {
				if want := (Stat{1, time.Minute, time.Minute, time.Minute}); r.MTTA != want {
					t.Errorf("MTTA = %+v; want %+v", r.MTTA, want)
				}
				d := time.Hour - 1
				if want := (Stat{1, d, d, d}); r.MTTR != want {
					t.Errorf("MTTR = %+v; want %+v", r.MTTR, want)
				}
				if r.Incidents != 1 {
					t.Errorf("incidents = %d; want 1 (triggered at To is outside)", r.Incidents)
				}
			},
		},
		{
			name: "joint incidents count for both teams, once in totals",
			incs: []incident.Incident{
				withJoint(inc("noc", time.Hour, 4*time.Minute, never)),
				inc("soc", time.Hour, 8*time.Minute, never),
				inc("noc", time.Hour, 2*time.Minute, never),
			},
			alerts: -1, f: f,
			check: func(t *testing.T, r Report) {
				if r.Incidents != 3 || r.MTTA.Count != 3 {
					t.Errorf("totals: incidents %d MTTA count %d; want 3 3", r.Incidents, r.MTTA.Count)
				}
				noc, soc := r.ByTeam["noc"], r.ByTeam["soc"]
				if noc.Incidents != 2 || noc.MTTA != (Stat{2, 3 * time.Minute, 2 * time.Minute, 4 * time.Minute}) {
					t.Errorf("noc = %+v", noc)
				}
				if soc.Incidents != 2 || soc.MTTA != (Stat{2, 6 * time.Minute, 4 * time.Minute, 8 * time.Minute}) {
					t.Errorf("soc = %+v", soc)
				}
				if r.Alerts != 3 {
					t.Errorf("alerts = %d; want 3 summed from incidents when the caller passes -1", r.Alerts)
				}
			},
		},
		{
			name: "team filter keeps joint incidents",
			incs: []incident.Incident{
				withJoint(inc("noc", time.Hour, 4*time.Minute, never)),
				inc("soc", time.Hour, 8*time.Minute, never),
				inc("noc", time.Hour, 2*time.Minute, never),
			},
			alerts: 7, f: Filter{From: from, To: to, Team: "soc"},
			check: func(t *testing.T, r Report) {
				if r.Incidents != 2 || r.MTTA != (Stat{2, 6 * time.Minute, 4 * time.Minute, 8 * time.Minute}) {
					t.Errorf("soc report = %+v", r)
				}
				if len(r.ByTeam) != 1 || r.ByTeam["soc"].Incidents != 2 {
					t.Errorf("ByTeam = %+v; want only soc", r.ByTeam)
				}
				if r.Team != "soc" {
					t.Errorf("Team = %q", r.Team)
				}
			},
		},
		{
			name: "breakdowns by severity, service and tier",
			incs: []incident.Incident{
				{Team: "noc", Severity: "critical", Service: "db", Tier: 0, TriggeredAt: t0, AcknowledgedAt: at(time.Minute), Escalations: 0},
				{Team: "noc", Severity: "critical", Service: "db", Tier: 1, TriggeredAt: t0, AcknowledgedAt: at(20 * time.Minute), Escalations: 1, Handoffs: 1},
				{Team: "soc", Severity: "low", Tier: 2, TriggeredAt: t0, Escalations: 2},
			},
			alerts: 3, f: f,
			check: func(t *testing.T, r Report) {
				if r.Escalations != 3 || r.Handoffs != 1 {
					t.Errorf("escalations %d handoffs %d; want 3 1", r.Escalations, r.Handoffs)
				}
				if b := r.BySeverity["critical"]; b.Incidents != 2 || b.MTTA.Mean != 10*time.Minute+30*time.Second || b.Escalations != 1 {
					t.Errorf("critical = %+v", b)
				}
				if b := r.ByService[None]; b.Incidents != 1 || b.Escalations != 2 {
					t.Errorf("service none = %+v", b)
				}
				if b := r.ByService["db"]; b.Incidents != 2 || b.Handoffs != 1 {
					t.Errorf("service db = %+v", b)
				}
				if b := r.ByTier["L1"]; b.Incidents != 1 || b.MTTA.Mean != time.Minute {
					t.Errorf("L1 = %+v", b)
				}
				if b := r.ByTier["L2"]; b.Incidents != 1 || b.MTTA.Mean != 20*time.Minute {
					t.Errorf("L2 = %+v", b)
				}
				if b := r.ByTier["L3"]; b.Incidents != 1 || b.MTTA.Count != 0 {
					t.Errorf("L3 = %+v", b)
				}
			},
		},
		{
			name: "severity and service filters, merged incidents skipped",
			incs: []incident.Incident{
				{Team: "noc", Severity: "critical", Service: "db", TriggeredAt: t0},
				{Team: "noc", Severity: "critical", Service: "web", TriggeredAt: t0},
				{Team: "noc", Severity: "low", Service: "db", TriggeredAt: t0},
				{Team: "noc", Severity: "critical", Service: "db", TriggeredAt: t0, MergedInto: 1},
			},
			alerts: -1, f: Filter{From: from, To: to, Severity: "critical", Service: "db"},
			check: func(t *testing.T, r Report) {
				if r.Incidents != 1 {
					t.Errorf("incidents = %d; want 1", r.Incidents)
				}
			},
		},
		{
			name: "open-ended filter and negative durations clamp",
			incs: []incident.Incident{
				{Team: "noc", TriggeredAt: t0, AcknowledgedAt: at(-time.Minute)},
				{Team: "noc", TriggeredAt: t0.AddDate(-5, 0, 0), ResolvedAt: at(0)},
			},
			alerts: 0, f: Filter{},
			check: func(t *testing.T, r Report) {
				if r.Incidents != 2 || r.MTTA != (Stat{1, 0, 0, 0}) || r.MTTR.Count != 1 {
					t.Errorf("report = %+v", r)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Compute(tc.incs, tc.alerts, tc.f)
			tc.check(t, r)
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "NaN") || strings.Contains(string(b), "null") {
				t.Errorf("JSON has NaN or null: %s", b)
			}
		})
	}
}

func ptr(t time.Time) *time.Time { return &t }

func withJoint(i incident.Incident) incident.Incident { i.Joint = true; return i }

func TestStatJSON(t *testing.T) {
	s := Stat{Count: 3, Mean: 90 * time.Second, P50: 1500 * time.Millisecond, P90: 2 * time.Hour}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"count":3,"mean_seconds":90,"p50_seconds":1.5,"p90_seconds":7200}`; string(b) != want {
		t.Errorf("json = %s; want %s", b, want)
	}
	var back Stat
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, s)
	}
	if err := json.Unmarshal([]byte(`{"count":"x"}`), &back); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestReportJSONShape(t *testing.T) {
	r := Compute([]incident.Incident{inc("noc", 0, time.Minute, time.Hour)}, 2, Filter{From: t0, To: t0.Add(time.Hour * 48), Team: "noc"})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"from", "to", "team", "mtta", "mttr", "incidents", "alerts", "alerts_per_incident",
		"escalations", "handoffs", "by_team", "by_severity", "by_service", "by_tier"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if got := m["mttr"].(map[string]any)["mean_seconds"]; got != 3600.0 {
		t.Errorf("mttr.mean_seconds = %v; want 3600", got)
	}
}
