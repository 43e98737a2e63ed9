package noc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Metrics are the NOC's Prometheus instruments.
type Metrics struct {
	probeDuration *prometheus.HistogramVec
	stateChanges  *prometheus.CounterVec
	alertsOpened  *prometheus.CounterVec
	checks        prometheus.Gauge
}

// NewMetrics creates the instruments and registers them with reg (nil:
// not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nocsoc_probe_duration_seconds",
			Help:    "Duration of check probes by type and result.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type", "result"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nocsoc_check_state_changes_total",
			Help: "Check state changes by the state entered.",
		}, []string{"state"}),
		alertsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nocsoc_alerts_opened_total",
			Help: "Alerts opened by team and severity.",
		}, []string{"team", "severity"}),
		checks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nocsoc_checks",
			Help: "Number of configured checks.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.probeDuration, m.stateChanges, m.alertsOpened, m.checks)
	}
	return m
}

func (m *Metrics) observeProbe(typ string, r check.Result) {
	res := "success"
	if !r.OK {
		res = "failure"
	}
	m.probeDuration.WithLabelValues(typ, res).Observe(r.Duration.Seconds())
}

func (m *Metrics) setChecks(n int) { m.checks.Set(float64(n)) }

// StateCollector exports the number of checks in each state and the
// scheduler's queue figures, read at scrape time.
type StateCollector struct {
	S *Service
}

var (
	checksByStateDesc = prometheus.NewDesc("nocsoc_checks_by_state", "Checks in each state.", []string{"state"}, nil)
	inFlightDesc      = prometheus.NewDesc("nocsoc_scheduler_in_flight", "Probes running now.", nil, nil)
	queuedDesc        = prometheus.NewDesc("nocsoc_scheduler_queued", "Due probes waiting for a worker.", nil, nil)
	skippedDesc       = prometheus.NewDesc("nocsoc_scheduler_skipped_total", "Runs skipped because the previous run of the check was still in flight.", nil, nil)
	lateDesc          = prometheus.NewDesc("nocsoc_scheduler_late_total", "Runs started more than 1s after they were due.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- checksByStateDesc
	ch <- inFlightDesc
	ch <- queuedDesc
	ch <- skippedDesc
	ch <- lateDesc
}

// Collect implements prometheus.Collector.
func (c StateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.S.Counts()
	for _, st := range check.States {
		ch <- prometheus.MustNewConstMetric(checksByStateDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	s := c.S.SchedulerStats()
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(s.Skipped))
	ch <- prometheus.MustNewConstMetric(lateDesc, prometheus.CounterValue, float64(s.Late))
}
