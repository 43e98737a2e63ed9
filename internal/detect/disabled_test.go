package detect

import (
	"context"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

func TestDisabledRulesRaiseNothing(t *testing.T) {
	const bruteForce = "6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04"
	eng := builtinEngine(t)
	t0 := time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC)
	burst := func(base uint64, at time.Time) []event.Event {
		var evs []event.Event
		for i := range 12 {
			evs = append(evs, sshFailure(base+uint64(i), at.Add(time.Duration(i)*5*time.Second), "203.0.113.7", "root"))
		}
		return evs
	}
	count := func(s *sink) int {
		n := 0
		for _, a := range s.alerts {
			if a.Labels["rule_id"] == bruteForce {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name     string
		disabled map[string]bool
		want     bool
	}{
		{"enabled", nil, true},
		{"disabled", map[string]bool{bruteForce: true}, false},
		{"listed but false", map[string]bool{bruteForce: false}, true},
		{"another rule disabled", map[string]bool{"some-other-rule": true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{}
			d := New(Options{Engine: eng, Alerts: s})
			d.SetDisabled(tc.disabled)
			if err := d.Process(context.Background(), burst(1, t0)); err != nil {
				t.Fatal(err)
			}
			if got := count(s) > 0; got != tc.want {
				t.Errorf("alerts raised = %v, want %v", got, tc.want)
			}
			if got := d.Hits()[bruteForce] > 0; got != tc.want {
				t.Errorf("hits counted = %v, want %v", got, tc.want)
			}
			if d.Disabled(bruteForce) == tc.want {
				t.Errorf("Disabled = %v", d.Disabled(bruteForce))
			}
		})
	}
	// Enabling again takes effect on the next batch.
	s := &sink{}
	d := New(Options{Engine: eng, Alerts: s})
	d.SetDisabled(map[string]bool{bruteForce: true})
	d.SetDisabled(nil)
	if err := d.Process(context.Background(), burst(100, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if count(s) == 0 {
		t.Error("re-enabled rule raised no alert")
	}
}
