package store

import (
	"context"
	"errors"
	"testing"
)

func TestDisabledRules(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	actor := Actor{Name: "alice", Remote: "127.0.0.1"}
	steps := []struct {
		id       string
		disabled bool
		want     map[string]bool
		audits   int
	}{
		{"r1", true, map[string]bool{"r1": true}, 1},
		{"r1", true, map[string]bool{"r1": true}, 1}, // no change, no entry
		{"r2", true, map[string]bool{"r1": true, "r2": true}, 2},
		{"r1", false, map[string]bool{"r2": true}, 3},
		{"r3", false, map[string]bool{"r2": true}, 3},
	}
	for i, st := range steps {
		if err := s.SetRuleDisabled(ctx, actor, st.id, st.disabled); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := s.DisabledRules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(st.want) {
			t.Errorf("step %d: disabled = %v, want %v", i, got, st.want)
		}
		for id := range st.want {
			if !got[id] {
				t.Errorf("step %d: %s not disabled (%v)", i, id, got)
			}
		}
		es, err := s.ListAudit(ctx, AuditFilter{Actor: "alice", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if e.Action == "rule.disable" || e.Action == "rule.enable" {
				n++
			}
		}
		if n != st.audits {
			t.Errorf("step %d: %d audit entries, want %d", i, n, st.audits)
		}
	}
	if err := s.SetRuleDisabled(ctx, actor, " ", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty id: %v", err)
	}
}
