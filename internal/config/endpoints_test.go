package config

import (
	"strings"
	"testing"
	"time"
)

func TestEndpointsSection(t *testing.T) {
	c, err := Load("nocsoc.yaml", `endpoints:
  thresholds:
    - {name: disk-full, metric: disk.used_percent, labels: {mount: "/"}, op: ">", value: 90, for: 10m, severity: critical}
    - {name: load, metric: load.5, op: ">=", value: 8}
  forecast:
    alert_days: 7
`)
	if err != nil {
		t.Fatal(err)
	}
	th := c.Endpoints.Thresholds
	if len(th) != 2 || th[0].For.D() != 10*time.Minute || th[0].Labels["mount"] != "/" || th[0].Value != 90 || th[1].Severity != "high" {
		t.Errorf("thresholds = %+v", th)
	}
	if f := c.Endpoints.Forecast; f.AlertDays != 7 || f.MinPoints != 12 || f.Severity != "high" {
		t.Errorf("forecast = %+v", f)
	}
	if d := Default().Endpoints.Forecast; d.MinPoints != 12 || d.AlertDays != 0 {
		t.Errorf("default forecast = %+v", d)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"endpoints:\n  thresholds:\n    - name: a\n      metric: m\n      op: '=>'\n", `nocsoc.yaml:5: endpoints.thresholds[0].op: "=>" is not one of`},
		{"endpoints:\n  thresholds:\n    - {name: a, metric: m, op: '>'}\n    - {name: a, metric: m, op: '<'}\n", "nocsoc.yaml:4: endpoints.thresholds[1].name: duplicate"},
		{"endpoints:\n  thresholds:\n    - {name: a, op: '>'}\n", "endpoints.thresholds[0].metric: is required"},
		{"endpoints:\n  thresholds:\n    - {name: a, metric: m, op: '>', severity: huge}\n", `unknown severity "huge"`},
		{"endpoints:\n  forecast:\n    alert_days: -1\n", "nocsoc.yaml:3: endpoints.forecast.alert_days: must not be negative"},
		{"endpoints:\n  thresholds:\n    - {name: a, metric: m, op: '>', fo: 1m}\n", "fo"},
	} {
		_, err := Load("nocsoc.yaml", tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
