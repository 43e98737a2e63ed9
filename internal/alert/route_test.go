package alert

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

func testTree() RouteConfig {
	return RouteConfig{
		Team: TeamNOC, Policy: "default", Channels: []string{"ops"},
		GroupBy: []string{"alertname", "check"}, GroupWait: new(check.Duration(30 * time.Second)),
		Routes: []RouteConfig{
			{Matchers: []string{`team="soc"`}, Team: TeamSOC, Origin: OriginHuman, Policy: "soc-default",
				Routes: []RouteConfig{
					{Matchers: []string{`severity="critical"`}, Channels: []string{"soc-pager"}, GroupWait: new(check.Duration(time.Second))},
				}},
			{Matchers: []string{`{service=~"db|cache", env="prod"}`}, Policy: "dba", Continue: true},
			{Matchers: []string{`env="prod"`}, Channels: []string{"prod-chat"}, GroupBy: []string{"..."}},
		},
	}
}

func TestRouteMatch(t *testing.T) {
	r, err := CompileRoute(testTree())
	if err != nil {
		t.Fatal(err)
	}
	root := Decision{RouteID: "0", Team: TeamNOC, Policy: "default", Channels: []string{"ops"}, GroupBy: []string{"alertname", "check"}, GroupWait: 30 * time.Second}
	soc := Decision{RouteID: "0.0", Team: TeamSOC, Origin: OriginHuman, Policy: "soc-default", Channels: []string{"ops"}, GroupBy: []string{"alertname", "check"}, GroupWait: 30 * time.Second}
	socCrit := soc
	socCrit.RouteID, socCrit.Channels, socCrit.GroupWait = "0.0.0", []string{"soc-pager"}, time.Second
	dba := root
	dba.RouteID, dba.Policy = "0.1", "dba"
	prod := root
	prod.RouteID, prod.Channels, prod.GroupBy = "0.2", []string{"prod-chat"}, []string{"..."}

	tests := []struct {
		name   string
		labels map[string]string
		want   []Decision
	}{
		{"nothing matches: root", map[string]string{"alertname": "x"}, []Decision{root}},
		{"nil labels: root", nil, []Decision{root}},
		{"child without matching grandchild", map[string]string{"team": "soc"}, []Decision{soc}},
		{"grandchild inherits", map[string]string{"team": "soc", "severity": "critical", "env": "prod"}, []Decision{socCrit}},
		{"continue: both siblings", map[string]string{"service": "db", "env": "prod"}, []Decision{dba, prod}},
		{"continue route not matching", map[string]string{"service": "web", "env": "prod"}, []Decision{prod}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Match(tt.labels); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match(%v) =\n%+v\nwant\n%+v", tt.labels, got, tt.want)
			}
		})
	}
	if n := len(r.Routes()); n != 5 {
		t.Errorf("Routes() has %d entries, want 5", n)
	}
}

func TestRouteDefaults(t *testing.T) {
	r, err := CompileRoute(RouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Match(map[string]string{"a": "b"})
	want := []Decision{{RouteID: "0", GroupWait: DefaultGroupWait}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("empty tree: %+v, want %+v", got, want)
	}
}

// TestRouteZeroGroupWait: an explicit "group_wait: 0s" notifies at once,
// also below a parent with a longer wait; unset inherits.
func TestRouteZeroGroupWait(t *testing.T) {
	r, err := CompileRoute(RouteConfig{
		GroupWait: new(check.Duration(0)),
		Routes: []RouteConfig{
			{Matchers: []string{`team="soc"`}, GroupWait: new(check.Duration(time.Minute)),
				Routes: []RouteConfig{{Matchers: []string{`fast="yes"`}, GroupWait: new(check.Duration(0))}, {Matchers: []string{`fast="no"`}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   time.Duration
	}{
		{map[string]string{"team": "noc"}, 0},
		{map[string]string{"team": "soc", "fast": "yes"}, 0},
		{map[string]string{"team": "soc", "fast": "no"}, time.Minute},
		{map[string]string{"team": "soc"}, time.Minute},
	} {
		d := r.Match(tc.labels)
		if len(d) != 1 || d[0].GroupWait != tc.want {
			t.Errorf("%v: %+v, want group wait %v", tc.labels, d, tc.want)
		}
	}
}

func TestCompileRouteErrors(t *testing.T) {
	tests := []struct {
		name string
		rc   RouteConfig
		want string
	}{
		{"root matchers", RouteConfig{Matchers: []string{"a=b"}}, "route.matchers: the root route matches every alert and cannot have matchers"},
		{"root continue", RouteConfig{Continue: true}, "route.continue: the root route cannot have continue set"},
		{"bad nested matcher", RouteConfig{Routes: []RouteConfig{{}, {}, {Matchers: []string{`a="b"`, `sev=~"("`}}}},
			"route.routes[2].matchers[1]: matcher \"sev=~\\\"(\\\"\": invalid regex: error parsing regexp: missing closing ): `(` (value at offset 5)"},
		{"deep matcher", RouteConfig{Routes: []RouteConfig{{Routes: []RouteConfig{{Matchers: []string{"x"}}}}}}, `route.routes[0].routes[0].matchers[0]: matcher "x": missing operator after "x" at offset 1 (one of =, !=, =~, !~)`},
		{"team", RouteConfig{Team: "ops"}, `route.team: unknown team "ops" (noc or soc)`},
		{"origin", RouteConfig{Routes: []RouteConfig{{Origin: "alien"}}}, `route.routes[0].origin: unknown origin "alien" (natural or human)`},
		{"group_by all with others", RouteConfig{GroupBy: []string{"a", "..."}}, `route.group_by[1]: "..." (group by every label) must be the only entry`},
		{"group_by dup", RouteConfig{GroupBy: []string{"a", "a"}}, `route.group_by[1]: duplicate label "a"`},
		{"group_by bad", RouteConfig{GroupBy: []string{"a b"}}, `route.group_by[0]: invalid label name "a b"`},
		{"group_wait", RouteConfig{GroupWait: new(check.Duration(-1))}, `route.group_wait: must not be negative`},
		{"channel empty", RouteConfig{Channels: []string{""}}, `route.channels[0]: must not be empty`},
		{"channel dup", RouteConfig{Channels: []string{"a", "a"}}, `route.channels[1]: duplicate channel "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileRoute(tt.rc)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v\nwant    %s", err, tt.want)
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is %T, want *check.FieldError", err)
			}
		})
	}
}

func TestGroupKey(t *testing.T) {
	labels := map[string]string{"alertname": "Down", "check": "web", "env": "prod"}
	tests := []struct {
		d    Decision
		l    map[string]string
		want string
	}{
		{Decision{RouteID: "0.1", GroupBy: []string{"alertname", "check"}}, labels, `0.1{alertname="Down",check="web"}`},
		{Decision{RouteID: "0.1", GroupBy: []string{"alertname", "missing"}}, labels, `0.1{alertname="Down",missing=""}`},
		{Decision{RouteID: "0", GroupBy: []string{"..."}}, labels, `0{alertname="Down",check="web",env="prod"}`},
		{Decision{RouteID: "0"}, labels, `0{}`},
		// Quoting keeps values containing separators unambiguous.
		{Decision{RouteID: "0", GroupBy: []string{"a", "b"}}, map[string]string{"a": `x",b="y`}, `0{a="x\",b=\"y",b=""}`},
	}
	for _, tt := range tests {
		if got := tt.d.GroupKey(tt.l); got != tt.want {
			t.Errorf("GroupKey(%v) with %v = %s, want %s", tt.l, tt.d.GroupBy, got, tt.want)
		}
	}
}

func BenchmarkRouteMatch(b *testing.B) {
	rc := testTree()
	for i := range 50 {
		rc.Routes = append(rc.Routes, RouteConfig{Matchers: []string{fmt.Sprintf(`service="svc-%d"`, i), `env=~"prod|staging"`}, Policy: "p"})
	}
	r, err := CompileRoute(rc)
	if err != nil {
		b.Fatal(err)
	}
	labels := map[string]string{"alertname": "Down", "service": "svc-49", "env": "prod", "check": "web"}
	b.ReportAllocs()
	for b.Loop() {
		ds := r.Match(labels)
		_ = ds[0].GroupKey(labels)
	}
}
