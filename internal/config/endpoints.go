package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Endpoints holds the server's rules over what agents report: threshold
// rules on endpoint metrics and the storage forecast.
type Endpoints struct {
	// Thresholds raise NOC alerts when a metric crosses a value for a
	// while, per endpoint and label set.
	Thresholds []ThresholdRule `yaml:"thresholds"`
	// Forecast configures the days-until-full forecast of filesystems.
	Forecast Forecast `yaml:"forecast"`
}

// ThresholdRule is e.g. {name: disk-full, metric: disk.used_percent,
// labels: {mount: "/"}, op: ">", value: 90, for: 10m, severity: critical}.
type ThresholdRule struct {
	Name   string `yaml:"name"`
	Metric string `yaml:"metric"`
	// Labels select series: every listed label must have this value
	// (the others are free). Empty selects every series of Metric.
	Labels map[string]string `yaml:"labels"`
	// Op is one of >, >=, <, <=, ==, !=.
	Op    string  `yaml:"op"`
	Value float64 `yaml:"value"`
	// For is how long the condition must hold before the alert fires
	// (pending meanwhile); 0 fires on the first sample.
	For      check.Duration `yaml:"for"`
	Severity string         `yaml:"severity"`
}

// Forecast configures storage forecasting.
type Forecast struct {
	// AlertDays raises an alert for a filesystem forecast to be full in
	// fewer days; 0 (the default) disables the alert, the forecast API
	// still answers.
	AlertDays float64 `yaml:"alert_days"`
	// MinPoints is how many hourly points of the last 7 days a forecast
	// needs; default 12.
	MinPoints int `yaml:"min_points"`
	// Severity of the forecast alert; default high.
	Severity string `yaml:"severity"`
}

// ThresholdOps are the comparison operators of threshold rules.
var ThresholdOps = []string{">", ">=", "<", "<=", "==", "!="}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

func validSeverity(s string) bool {
	for _, v := range check.Severities {
		if s == v {
			return true
		}
	}
	return false
}

func (e *Endpoints) applyDefaults() {
	for i := range e.Thresholds {
		if e.Thresholds[i].Severity == "" {
			e.Thresholds[i].Severity = "high"
		}
	}
	if e.Forecast.MinPoints == 0 {
		e.Forecast.MinPoints = 12
	}
	if e.Forecast.Severity == "" {
		e.Forecast.Severity = "high"
	}
}

// validate returns *check.FieldError values relative to the endpoints
// section, so that the loader can place each on its line.
func (e *Endpoints) validate() []error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range e.Thresholds {
		f := func(field, format string, args ...any) {
			errs = append(errs, &check.FieldError{Field: fmt.Sprintf("thresholds[%d].%s", i, field), Reason: fmt.Sprintf(format, args...)})
		}
		switch {
		case r.Name == "":
			f("name", "is required")
		case !ruleNameRE.MatchString(r.Name):
			f("name", "%q must be 1-100 letters, digits, '_', '.', ':' or '-'", r.Name)
		case seen[r.Name]:
			f("name", "duplicate threshold rule name %q", r.Name)
		}
		seen[r.Name] = true
		if r.Metric == "" || len(r.Metric) > 200 {
			f("metric", "is required (a metric name the agent sends, e.g. disk.used_percent)")
		}
		okOp := false
		for _, op := range ThresholdOps {
			okOp = okOp || r.Op == op
		}
		if !okOp {
			f("op", "%q is not one of %s", r.Op, strings.Join(ThresholdOps, " "))
		}
		if r.For < 0 {
			f("for", "must not be negative")
		}
		if r.Severity != "" && !validSeverity(r.Severity) {
			f("severity", "unknown severity %q (one of %s)", r.Severity, strings.Join(check.Severities, ", "))
		}
	}
	if e.Forecast.AlertDays < 0 {
		errs = append(errs, &check.FieldError{Field: "forecast.alert_days", Reason: "must not be negative"})
	}
	if e.Forecast.MinPoints < 0 || e.Forecast.MinPoints == 1 {
		errs = append(errs, &check.FieldError{Field: "forecast.min_points", Reason: "must be at least 2 (a line needs two points)"})
	}
	if e.Forecast.Severity != "" && !validSeverity(e.Forecast.Severity) {
		errs = append(errs, &check.FieldError{Field: "forecast.severity", Reason: fmt.Sprintf("unknown severity %q (one of %s)", e.Forecast.Severity, strings.Join(check.Severities, ", "))})
	}
	return errs
}
