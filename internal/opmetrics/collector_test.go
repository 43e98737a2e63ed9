package opmetrics

import (
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/prometheus/client_golang/prometheus"
)

// gather scrapes reg into "name{team}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType().String() != "GAUGE" {
			t.Errorf("%s is %s; want GAUGE", mf.GetName(), mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	from := t0
	to := t0.Add(30 * 24 * time.Hour)
	incs := []incident.Incident{
		inc("noc", time.Hour, 2*time.Minute, 30*time.Minute),
		inc("noc", 2*time.Hour, 4*time.Minute, never),
		withJoint(inc("soc", 3*time.Hour, 6*time.Minute, never)),
	}
	calls := 0
	c := Collector(func() Report {
		calls++
		return Compute(incs, 9, Filter{From: from, To: to})
	})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	want := map[string]float64{
		"nocsoc_mtta_seconds{team=all}":     240,
		"nocsoc_mtta_seconds{team=noc}":     240,
		"nocsoc_mtta_seconds{team=soc}":     360,
		"nocsoc_mtta_p90_seconds{team=noc}": 360,
		"nocsoc_mtta_incidents{team=all}":   3,
		"nocsoc_mttr_seconds{team=all}":     1800,
		"nocsoc_mttr_seconds{team=noc}":     1800,
		"nocsoc_mttr_seconds{team=soc}":     0,
		"nocsoc_mttr_incidents{team=soc}":   0,
		"nocsoc_ops_incidents{team=all}":    3,
		"nocsoc_ops_incidents{team=noc}":    3,
		"nocsoc_ops_incidents{team=soc}":    1,
		"nocsoc_ops_alerts":                 9,
		"nocsoc_ops_window_seconds":         30 * 24 * 3600,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v); want %v", k, g, ok, v)
		}
	}
	if len(got) != 11*3+2 {
		t.Errorf("scraped %d series; want %d: %v", len(got), 11*3+2, got)
	}
	gather(t, reg)
	if calls != 2 {
		t.Errorf("source called %d times for 2 scrapes; want 2", calls)
	}
}

func TestCollectorEmpty(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(func() Report { return Compute(nil, 0, Filter{}) }))
	got := gather(t, reg)
	for k, v := range got {
		if v != 0 {
			t.Errorf("%s = %v; want 0 for an empty report", k, v)
		}
	}
	if _, ok := got["nocsoc_mtta_seconds{team=soc}"]; !ok {
		t.Error("team=soc series missing from an empty report; want it present as 0")
	}
}
