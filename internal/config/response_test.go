package config

import (
	"strings"
	"testing"
	"time"
)

func TestResponseSection(t *testing.T) {
	c, err := Load("nocsoc.yaml", `response:
  allow: [192.0.2.0/24]
  servers: [192.0.2.10]
  approval:
    required: []
    approvers: [alice]
  rate_limits:
    isolate_host: {count: 2, per: 5m}
  rules:
    - {rule: nocsoc_ssh_brute_force, action: block_ip, duration: 1h}
`)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Response
	if r.Approval.Required == nil || len(*r.Approval.Required) != 0 || r.Approval.Approvers[0] != "alice" {
		t.Errorf("approval = %+v", r.Approval)
	}
	if l := r.RateLimits["isolate_host"]; l.Count != 2 || l.Per.D() != 5*time.Minute {
		t.Errorf("rate limit = %+v", l)
	}
	if len(r.Rules) != 1 || r.Rules[0].Duration.D() != time.Hour {
		t.Errorf("rules = %+v", r.Rules)
	}
	for _, c := range []struct{ yaml, want string }{
		{"response:\n  allow: [nope]\n", "nocsoc.yaml:2: response.allow[0]"},
		{"response:\n  rate_limits:\n    shell: {count: 1, per: 1m}\n", "response.rate_limits.shell"},
		{"response:\n  approval:\n    required: [reboot]\n", "response.approval.required[0]"},
		{"response:\n  rules:\n    - {rule: x, action: format}\n", "response.rules[0].action"},
		{"response:\n  servers: [0.0.0.0]\n", "response.servers[0]"},
		{"response:\n  bogus: 1\n", "bogus"},
	} {
		_, err := Load("nocsoc.yaml", c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want it to name %s", c.yaml, err, c.want)
		}
	}
}
