package config

import (
	"testing"

	"github.com/nocsoc/nocsoc/internal/alert"
)

func TestLoadAlertingErrors(t *testing.T) {
	ch := "  channels:\n    - {name: ops, type: webhook, url: http://127.0.0.1:9/x}"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown key", lines("alerting:", "  rout: {}"), `nocsoc.yaml:2: alerting: field "rout" not found in alerting (did you mean "route"?)`},
		{"route unknown key", lines("alerting:", "  route:", "    group_wiat: 1m"), `nocsoc.yaml:3: alerting.route: field "group_wiat" not found in route (did you mean "group_wait"?)`},
		{"bad nested matcher", lines("alerting:", "  route:", "    routes:", "      - matchers: ['team=\"soc\"']", "      - matchers:", "          - 'a=b'", `          - 'sev=~"("'`),
			"nocsoc.yaml:7: alerting.route.routes[1].matchers[1]: matcher \"sev=~\\\"(\\\"\": invalid regex: error parsing regexp: missing closing ): `(` (value at offset 5)"},
		{"root matchers", lines("alerting:", "  route:", "    matchers: [a=b]"), "nocsoc.yaml:3: alerting.route.matchers: the root route matches every alert and cannot have matchers"},
		{"bad team", lines("alerting:", "  route:", "    routes:", "      - team: ops"), `nocsoc.yaml:4: alerting.route.routes[0].team: unknown team "ops" (noc or soc)`},
		{"bad group_wait", lines("alerting:", "  route:", "    group_wait: soon"), `nocsoc.yaml:3: alerting.route.group_wait: must be a duration like "30s" or "1h30m", got "soon"`},
		{"unknown policy", lines("alerting:", "  route:", "    routes:", "      - matchers: [a=b]", "        policy: nope"), `nocsoc.yaml:5: alerting.route.routes[0].policy: unknown policy "nope" (define it under alerting.policies)`},
		{"unknown channel", lines("alerting:", ch, "  route:", "    channels: [ops, pager]"), `nocsoc.yaml:5: alerting.route.channels[1]: unknown channel "pager" (define it under alerting.channels)`},
		{"inhibit bad matcher", lines("alerting:", "  inhibit_rules:", "    - name: r", "      source_matchers: [a=b]", "      target_matchers:", "        - 'x'"), `nocsoc.yaml:6: alerting.inhibit_rules[0].target_matchers[0]: matcher "x": missing operator after "x" at offset 1 (one of =, !=, =~, !~)`},
		{"inhibit no name", lines("alerting:", "  inhibit_rules:", "    - source_matchers: [a=b]", "      target_matchers: [c=d]"), "nocsoc.yaml:3: alerting.inhibit_rules[0].name: is required (it names the rule on suppressed alerts)"},
		{"duplicate channel", lines("alerting:", ch, "    - {name: ops, type: slack, url: http://127.0.0.1:9/y}"), `nocsoc.yaml:4: alerting.channels[1].name: duplicate channel name "ops" (also channels[0])`},
		{"channel validate", lines("alerting:", "  channels:", "    - name: ops", "      type: webhook", "      url: ftp://x"), "nocsoc.yaml:5: alerting.channels[0].url: must be an http:// or https:// URL"},
		{"channel unknown key", lines("alerting:", "  channels:", "    - name: ops", "      kind: webhook"), `nocsoc.yaml:4: alerting.channels[0]: field "kind" not found in channel`},
		{"policy unknown schedule", lines("alerting:", "  policies:", "    - name: p", "      tiers:", "        - name: L1", "          timeout: 5m", "          targets:", "            - {type: schedule, name: ghost}"),
			`nocsoc.yaml:8: alerting.policies[0].tiers[0].targets[0].name: unknown schedule "ghost"`},
		{"duplicate policy", lines("alerting:", "  policies:", "    - {name: p, tiers: [{name: L1, timeout: 5m, targets: [{type: user, name: a}]}]}", "    - {name: p, tiers: [{name: L1, timeout: 5m, targets: [{type: user, name: a}]}]}"),
			`nocsoc.yaml:4: alerting.policies[1].name: duplicate policy name "p" (also policies[0])`},
		{"schedule validate", lines("alerting:", "  schedules:", "    - name: s", "      team: noc", "      tier: L1", "      users: [a]", "      rotation: hourly"),
			`nocsoc.yaml:7: alerting.schedules[0].rotation: "hourly" must be daily, weekly or custom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("nocsoc.yaml", tt.src)
			if err == nil {
				t.Fatalf("loaded: %+v", c.Alerting)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLoadAlertingErrorsTogether(t *testing.T) {
	src := lines("alerting:",
		"  channels:",
		"    - {name: ops, type: webhook, url: ftp://x}",
		"  route:",
		"    team: ops",
		"  inhibit_rules:",
		"    - {source_matchers: [a=b], target_matchers: [c=d]}")
	_, err := Load("nocsoc.yaml", src)
	errs, ok := err.(Errors)
	if !ok || len(errs) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i, line := range []int{3, 5, 7} {
		if errs[i].Line != line {
			t.Errorf("error %d on line %d, want %d: %v", i, errs[i].Line, line, errs[i])
		}
	}
}

func TestLoadAlertingFull(t *testing.T) {
	c, err := LoadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alerting
	if len(a.Channels) != 4 || len(a.Policies) != 2 || len(a.Schedules) != 2 || len(a.InhibitRules) != 1 || a.RunbooksDir != "./runbooks" {
		t.Fatalf("alerting section: %+v", a)
	}
	if !a.Channels[0].Provisioned || !a.Policies[0].Provisioned || !a.Schedules[0].Provisioned {
		t.Error("provisioned flags not set")
	}
	r, err := alert.CompileRoute(a.Route)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Match(map[string]string{"team": "soc", "severity": "critical", "env": "prod"})
	if len(d) != 1 || d[0].RouteID != "0.0.0" || d[0].Team != "soc" || d[0].Policy != "soc-default" || d[0].GroupWait != 0 {
		t.Errorf("soc critical routed to %+v", d)
	}
	if _, err := alert.NewInhibitor(a.InhibitRules); err != nil {
		t.Error(err)
	}
}

func TestLoadAlertingDefault(t *testing.T) {
	c, err := Load("nocsoc.yaml", lines("server: {}"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := alert.CompileRoute(c.Alerting.Route)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Match(nil); len(d) != 1 || d[0].RouteID != "0" || d[0].GroupWait != alert.DefaultGroupWait {
		t.Errorf("default route decides %+v", d)
	}
}
