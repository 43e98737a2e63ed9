package runbook

import (
	"slices"
	"testing"
)

func TestSelect(t *testing.T) {
	rbs := []Runbook{
		{Name: "z-db", Checks: []string{"db"}},
		{Name: "a-db", Checks: []string{"db", "web"}},
		{Name: "ssh", Rules: []string{"rule-ssh"}},
		{Name: "ssh-b", Rules: []string{"rule-ssh"}, Checks: []string{"bastion"}},
		{Name: "disk", Matchers: []string{`alertname="DiskFull"`}},
		{Name: "disk-prod", Matchers: []string{`alertname="DiskFull"`, `env="prod"`}},
		{Name: "disk-prod-2", Matchers: []string{`alertname=~"Disk.*"`, `env="prod"`}},
		{Name: "broken", Matchers: []string{`alertname=~"("`}},
		{Name: "catch-high", Matchers: []string{`severity=~"high|critical"`}},
		{Name: "braced", Matchers: []string{`{alertname="Backup", env="prod", site=~"par|ams"}`}},
		{Name: "backup", Matchers: []string{`alertname="Backup"`, `env="prod"`}},
	}
	tests := []struct {
		name        string
		check, rule string
		labels      map[string]string
		want        string // "" for no match
	}{
		{"check wins over everything, smallest name", "db", "rule-ssh", map[string]string{"alertname": "DiskFull"}, "a-db"},
		{"check only on one", "web", "", nil, "a-db"},
		{"rule when check has none", "unknown", "rule-ssh", map[string]string{"alertname": "DiskFull"}, "ssh"},
		{"check before rule", "bastion", "rule-ssh", nil, "ssh-b"},
		{"most matchers wins, tie by name", "", "", map[string]string{"alertname": "DiskFull", "env": "prod"}, "disk-prod"},
		{"fewer matchers when more do not match", "", "", map[string]string{"alertname": "DiskFull", "env": "dev"}, "disk"},
		{"single matcher", "", "", map[string]string{"severity": "high"}, "catch-high"},
		{"braced list counts each matcher", "", "", map[string]string{"alertname": "Backup", "env": "prod", "site": "par"}, "braced"},
		{"anchored regex", "", "", map[string]string{"severity": "highest"}, ""},
		{"no match", "nope", "nope", map[string]string{"alertname": "Other"}, ""},
		{"nothing given", "", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The answer must not depend on the order of the runbooks.
			for _, order := range [][]Runbook{rbs, reversed(rbs)} {
				got, ok := Select(order, tc.check, tc.rule, tc.labels)
				if tc.want == "" {
					if ok {
						t.Errorf("Select = %q; want no match", got.Name)
					}
					continue
				}
				if !ok || got.Name != tc.want {
					t.Errorf("Select = %q, %v; want %q", got.Name, ok, tc.want)
				}
			}
		})
	}
}

func reversed(rbs []Runbook) []Runbook {
	out := slices.Clone(rbs)
	slices.Reverse(out)
	return out
}
