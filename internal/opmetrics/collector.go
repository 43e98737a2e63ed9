package opmetrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// descs are the metrics the collector exports.
type descs struct {
	mtta, mttaP50, mttaP90, mttaCount *prometheus.Desc
	mttr, mttrP50, mttrP90, mttrCount *prometheus.Desc
	incidents, escalations, handoffs  *prometheus.Desc
	alerts, window                    *prometheus.Desc
}

type collector struct {
	source func() Report
	d      descs
}

// Collector exports a report as Prometheus gauges, calling source on every
// scrape (typically a report over the last 30 days; the window is exported
// as nocsoc_ops_window_seconds). Per-team series carry team="noc" and
// team="soc", always present, plus team="all" for the whole report, since
// means cannot be summed across teams. See docs/metrics.md for the list.
func Collector(source func() Report) prometheus.Collector {
	team := []string{"team"}
	g := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{source: source, d: descs{
		mtta:        g("nocsoc_mtta_seconds", "Mean time to acknowledge over incidents first acknowledged in the window.", team),
		mttaP50:     g("nocsoc_mtta_p50_seconds", "Median (nearest-rank) time to acknowledge in the window.", team),
		mttaP90:     g("nocsoc_mtta_p90_seconds", "90th percentile (nearest-rank) time to acknowledge in the window.", team),
		mttaCount:   g("nocsoc_mtta_incidents", "Incidents first acknowledged in the window (the MTTA sample size).", team),
		mttr:        g("nocsoc_mttr_seconds", "Mean time to resolve over incidents resolved in the window.", team),
		mttrP50:     g("nocsoc_mttr_p50_seconds", "Median (nearest-rank) time to resolve in the window.", team),
		mttrP90:     g("nocsoc_mttr_p90_seconds", "90th percentile (nearest-rank) time to resolve in the window.", team),
		mttrCount:   g("nocsoc_mttr_incidents", "Incidents resolved in the window (the MTTR sample size).", team),
		incidents:   g("nocsoc_ops_incidents", "Incidents triggered in the window.", team),
		escalations: g("nocsoc_ops_escalations", "Escalations of incidents triggered in the window.", team),
		handoffs:    g("nocsoc_ops_handoffs", "Hand-offs of incidents triggered in the window.", team),
		alerts:      g("nocsoc_ops_alerts", "Alerts received in the window.", nil),
		window:      g("nocsoc_ops_window_seconds", "Length of the window the operation metrics cover.", nil),
	}}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	d := c.d
	for _, x := range []*prometheus.Desc{d.mtta, d.mttaP50, d.mttaP90, d.mttaCount, d.mttr, d.mttrP50, d.mttrP90,
		d.mttrCount, d.incidents, d.escalations, d.handoffs, d.alerts, d.window} {
		ch <- x
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.source()
	d := c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	emit := func(team string, b Breakdown) {
		gauge(d.mtta, b.MTTA.Mean.Seconds(), team)
		gauge(d.mttaP50, b.MTTA.P50.Seconds(), team)
		gauge(d.mttaP90, b.MTTA.P90.Seconds(), team)
		gauge(d.mttaCount, float64(b.MTTA.Count), team)
		gauge(d.mttr, b.MTTR.Mean.Seconds(), team)
		gauge(d.mttrP50, b.MTTR.P50.Seconds(), team)
		gauge(d.mttrP90, b.MTTR.P90.Seconds(), team)
		gauge(d.mttrCount, float64(b.MTTR.Count), team)
		gauge(d.incidents, float64(b.Incidents), team)
		gauge(d.escalations, float64(b.Escalations), team)
		gauge(d.handoffs, float64(b.Handoffs), team)
	}
	teams := []string{TeamNOC, TeamSOC}
	for t := range r.ByTeam {
		if !slices.Contains(teams, t) {
			teams = append(teams, t)
		}
	}
	slices.Sort(teams)
	for _, t := range teams {
		emit(t, r.ByTeam[t]) // a missing team reads as zeros
	}
	emit("all", Breakdown{Incidents: r.Incidents, MTTA: r.MTTA, MTTR: r.MTTR, Escalations: r.Escalations, Handoffs: r.Handoffs})
	gauge(d.alerts, float64(r.Alerts))
	window := 0.0
	if !r.From.IsZero() && !r.To.IsZero() && r.To.After(r.From) {
		window = r.To.Sub(r.From).Seconds()
	}
	gauge(d.window, window)
}
