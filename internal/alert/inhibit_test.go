package alert

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func firing(labels map[string]string) Alert {
	return Alert{Status: StatusFiring, Labels: labels, Fingerprint: Fingerprint(labels)}
}

func TestInhibitor(t *testing.T) {
	in, err := NewInhibitor([]InhibitRule{
		{Name: "site-down", SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`severity=~"high|medium"`}, Equal: []string{"service"}},
		{Name: "node-down", SourceMatchers: []string{`alertname="NodeDown"`}, TargetMatchers: []string{`alertname!="NodeDown"`}, Equal: []string{"host", "dc"}},
		{Name: "both-sides", SourceMatchers: []string{`kind="x"`}, TargetMatchers: []string{`kind=~"x|y"`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	siteDown := firing(map[string]string{"severity": "critical", "service": "shop"})
	nodeDown := firing(map[string]string{"alertname": "NodeDown", "host": "h1"})
	x1 := firing(map[string]string{"kind": "x", "n": "1"})
	x2 := firing(map[string]string{"kind": "x", "n": "2"})
	y := firing(map[string]string{"kind": "y"})

	check := func(step string, a Alert, want string) {
		t.Helper()
		rule, ok := in.Inhibited(a)
		if rule != want || ok != (want != "") {
			t.Errorf("%s: Inhibited(%v) = %q, %v; want %q", step, a.Labels, rule, ok, want)
		}
	}
	shopHigh := firing(map[string]string{"severity": "high", "service": "shop"})
	mailHigh := firing(map[string]string{"severity": "high", "service": "mail"})
	shopLow := firing(map[string]string{"severity": "low", "service": "shop"})
	h1Disk := firing(map[string]string{"alertname": "DiskFull", "host": "h1"})
	h1dc := firing(map[string]string{"alertname": "DiskFull", "host": "h1", "dc": "eu"})

	check("no sources", shopHigh, "")
	in.Fire(siteDown)
	in.Fire(nodeDown)
	check("equal service", shopHigh, "site-down")
	check("other service", mailHigh, "")
	check("not a target", shopLow, "")
	check("source is not its own target", siteDown, "")
	check("equal missing label", h1Disk, "node-down")
	check("unequal dc", h1dc, "")
	check("node down does not inhibit itself", nodeDown, "")
	resolved := shopHigh
	resolved.Status = StatusResolved
	check("resolved alerts are never inhibited", resolved, "")

	// Alerts matching both sides of a rule do not mute each other, but a
	// source matching only the source side mutes them.
	in.Fire(x1)
	in.Fire(x2)
	check("both sides x1", x1, "")
	check("both sides x2", x2, "")
	check("y under x", y, "both-sides")

	in.Resolve(siteDown.Fingerprint)
	check("after resolve", shopHigh, "")
	// A resolved status through Fire forgets the source as well.
	nd := nodeDown
	nd.Status = StatusResolved
	in.Fire(nd)
	check("after resolved fire", h1Disk, "")
	in.Resolve("unknown") // no effect, no panic
	if n := in.Sources(); n != 2 {
		t.Errorf("Sources() = %d, want 2 (x1, x2)", n)
	}
	// Firing the same fingerprint twice counts once.
	in.Fire(siteDown)
	in.Fire(siteDown)
	in.Resolve(siteDown.Fingerprint)
	check("double fire then one resolve", shopHigh, "")
}

func TestNewInhibitorErrors(t *testing.T) {
	ok := InhibitRule{Name: "r", SourceMatchers: []string{"a=b"}, TargetMatchers: []string{"c=d"}}
	tests := []struct {
		name  string
		rules []InhibitRule
		want  string
	}{
		{"no name", []InhibitRule{{SourceMatchers: []string{"a=b"}, TargetMatchers: []string{"c=d"}}}, "inhibit_rules[0].name: is required (it names the rule on suppressed alerts)"},
		{"dup name", []InhibitRule{ok, ok}, `inhibit_rules[1].name: duplicate rule name "r" (also inhibit_rules[0])`},
		{"no source", []InhibitRule{{Name: "r", TargetMatchers: []string{"c=d"}}}, "inhibit_rules[0].source_matchers: at least one matcher is required"},
		{"no target", []InhibitRule{{Name: "r", SourceMatchers: []string{"c=d"}}}, "inhibit_rules[0].target_matchers: at least one matcher is required"},
		{"bad target", []InhibitRule{{Name: "r", SourceMatchers: []string{"a=b"}, TargetMatchers: []string{"c=d", `e=~"("`}}}, `inhibit_rules[0].target_matchers[1]: matcher "e=~\"(\"": invalid regex`},
		{"bad equal", []InhibitRule{{Name: "r", SourceMatchers: []string{"a=b"}, TargetMatchers: []string{"c=d"}, Equal: []string{"ok", "not ok"}}}, `inhibit_rules[0].equal[1]: invalid label name "not ok"`},
	}
	for _, tt := range tests {
		_, err := NewInhibitor(tt.rules)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want prefix %q", tt.name, err, tt.want)
		}
	}
}

func TestInhibitorConcurrent(t *testing.T) {
	in, err := NewInhibitor([]InhibitRule{{Name: "r", SourceMatchers: []string{`sev="critical"`}, TargetMatchers: []string{`sev="high"`}, Equal: []string{"svc"}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				src := firing(map[string]string{"sev": "critical", "svc": fmt.Sprint(g, i%10)})
				in.Fire(src)
				in.Inhibited(firing(map[string]string{"sev": "high", "svc": fmt.Sprint(g, i%10)}))
				in.Resolve(src.Fingerprint)
			}
		})
	}
	wg.Wait()
	if n := in.Sources(); n != 0 {
		t.Errorf("Sources() = %d after resolving everything", n)
	}
}

// BenchmarkInhibited measures the lookup with 5,000 firing sources spread
// over 1,000 services and 10 rules.
func BenchmarkInhibited(b *testing.B) {
	var rules []InhibitRule
	for r := range 10 {
		rules = append(rules, InhibitRule{Name: fmt.Sprint("r", r), SourceMatchers: []string{fmt.Sprintf(`alertname="Src%d"`, r)}, TargetMatchers: []string{`severity=~"high|medium"`}, Equal: []string{"service", "dc"}})
	}
	in, err := NewInhibitor(rules)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 5000 {
		in.Fire(firing(map[string]string{"alertname": fmt.Sprint("Src", i%10), "service": fmt.Sprint("svc", i%1000), "dc": "eu", "n": fmt.Sprint(i)}))
	}
	targets := []Alert{
		firing(map[string]string{"alertname": "Slow", "severity": "high", "service": "svc500", "dc": "eu"}),
		firing(map[string]string{"alertname": "Slow", "severity": "high", "service": "none", "dc": "eu"}),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in.Inhibited(targets[i&1])
		i++
	}
}
