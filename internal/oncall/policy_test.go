package oncall

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

func threeTiers(repeat int) *Policy {
	return &Policy{Name: "noc-default", Repeat: repeat, Tiers: []Tier{
		{Name: "L1", Timeout: check.Duration(5 * time.Minute), Targets: []Target{{Type: TargetSchedule, Name: "noc-l1"}}},
		{Name: "L2", Timeout: check.Duration(10 * time.Minute), Targets: []Target{{Type: TargetSchedule, Name: "noc-l2"}}},
		{Name: "L3", Timeout: check.Duration(15 * time.Minute), Targets: []Target{{Type: TargetUser, Name: "boss"}, {Type: TargetChannel, Name: "ops"}}},
	}}
}

// step is one call in an escalation scenario.
type step struct {
	op        string // "due", "escalate", "deescalate", "ack"
	at        time.Duration
	wantTier  string // tier paged, "" for none
	wantErr   error
	wantState EscState // NextAt given as offset in wantNext
	wantNext  time.Duration
	noNext    bool
}

func TestEscalation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := time.Minute
	tests := []struct {
		name  string
		p     *Policy
		steps []step
	}{
		{"L1 to L2 to L3 at timeouts, then exhausted", threeTiers(0), []step{
			{op: "due", at: 4 * m, wantState: EscState{Tier: 0}, wantNext: 5 * m}, // not due yet
			{op: "due", at: 5 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 15 * m},
			{op: "due", at: 15 * m, wantTier: "L3", wantState: EscState{Tier: 2}, wantNext: 30 * m},
			{op: "due", at: 30 * m, wantState: EscState{Tier: 2, Exhausted: true}, noNext: true},
			{op: "due", at: 90 * m, wantState: EscState{Tier: 2, Exhausted: true}, noNext: true},
		}},
		{"repeat 1 goes back to L1 once, then exhausted", threeTiers(1), []step{
			{op: "due", at: 5 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 15 * m},
			{op: "due", at: 15 * m, wantTier: "L3", wantState: EscState{Tier: 2}, wantNext: 30 * m},
			{op: "due", at: 30 * m, wantTier: "L1", wantState: EscState{Tier: 0, Round: 1}, wantNext: 35 * m},
			{op: "due", at: 35 * m, wantTier: "L2", wantState: EscState{Tier: 1, Round: 1}, wantNext: 45 * m},
			{op: "due", at: 45 * m, wantTier: "L3", wantState: EscState{Tier: 2, Round: 1}, wantNext: 60 * m},
			{op: "due", at: 60 * m, wantState: EscState{Tier: 2, Round: 1, Exhausted: true}, noNext: true},
		}},
		{"a late tick times the next tier from when it is paged", threeTiers(0), []step{
			{op: "due", at: 7 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 17 * m},
			{op: "due", at: 7 * m, wantState: EscState{Tier: 1}, wantNext: 17 * m}, // repeated tick: no double page
		}},
		{"ack stops escalation", threeTiers(2), []step{
			{op: "ack", at: 2 * m, wantState: EscState{Tier: 0}, noNext: true},
			{op: "due", at: 60 * m, wantState: EscState{Tier: 0}, noNext: true},
		}},
		{"manual escalate and de-escalate at the bounds", threeTiers(0), []step{
			{op: "deescalate", at: 1 * m, wantErr: ErrFirstTier, wantState: EscState{Tier: 0}, wantNext: 5 * m},
			{op: "escalate", at: 2 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 12 * m},
			{op: "escalate", at: 3 * m, wantTier: "L3", wantState: EscState{Tier: 2}, wantNext: 18 * m},
			{op: "escalate", at: 4 * m, wantErr: ErrLastTier, wantState: EscState{Tier: 2}, wantNext: 18 * m},
			{op: "deescalate", at: 5 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 15 * m},
			{op: "deescalate", at: 6 * m, wantTier: "L1", wantState: EscState{Tier: 0}, wantNext: 11 * m},
			{op: "deescalate", at: 7 * m, wantErr: ErrFirstTier, wantState: EscState{Tier: 0}, wantNext: 11 * m},
		}},
		{"escalating an acknowledged incident restarts the timer", threeTiers(0), []step{
			{op: "ack", at: 1 * m, wantState: EscState{Tier: 0}, noNext: true},
			{op: "escalate", at: 2 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 12 * m},
			{op: "due", at: 12 * m, wantTier: "L3", wantState: EscState{Tier: 2}, wantNext: 27 * m},
		}},
		{"de-escalating an exhausted escalation starts it again", threeTiers(0), []step{
			{op: "due", at: 5 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 15 * m},
			{op: "due", at: 15 * m, wantTier: "L3", wantState: EscState{Tier: 2}, wantNext: 30 * m},
			{op: "due", at: 30 * m, wantState: EscState{Tier: 2, Exhausted: true}, noNext: true},
			{op: "escalate", at: 31 * m, wantErr: ErrLastTier, wantState: EscState{Tier: 2, Exhausted: true}, noNext: true},
			{op: "deescalate", at: 32 * m, wantTier: "L2", wantState: EscState{Tier: 1}, wantNext: 42 * m},
		}},
		{"single tier, repeat 2", &Policy{Name: "p", Repeat: 2, Tiers: threeTiers(0).Tiers[:1]}, []step{
			{op: "escalate", at: 1 * m, wantErr: ErrLastTier, wantState: EscState{Tier: 0}, wantNext: 5 * m},
			{op: "due", at: 5 * m, wantTier: "L1", wantState: EscState{Tier: 0, Round: 1}, wantNext: 10 * m},
			{op: "due", at: 10 * m, wantTier: "L1", wantState: EscState{Tier: 0, Round: 2}, wantNext: 15 * m},
			{op: "due", at: 15 * m, wantState: EscState{Tier: 0, Round: 2, Exhausted: true}, noNext: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, first := tt.p.Start(t0)
			if first.Name != "L1" || st.Tier != 0 || st.Round != 0 || st.Exhausted || st.NextAt == nil || !st.NextAt.Equal(t0.Add(tt.p.Tiers[0].Timeout.D())) {
				t.Fatalf("Start = %+v, %q", st, first.Name)
			}
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				var tier *Tier
				var err error
				switch s.op {
				case "due":
					st, tier = tt.p.Due(st, now)
				case "escalate":
					st, tier, err = tt.p.Escalate(st, now)
				case "deescalate":
					st, tier, err = tt.p.Deescalate(st, now)
				case "ack":
					st.NextAt = nil
				}
				if !errors.Is(err, s.wantErr) {
					t.Errorf("step %d %s: err = %v, want %v", i, s.op, err, s.wantErr)
				}
				got := ""
				if tier != nil {
					got = tier.Name
				}
				if got != s.wantTier {
					t.Errorf("step %d %s at +%v: paged %q, want %q", i, s.op, s.at, got, s.wantTier)
				}
				if st.Tier != s.wantState.Tier || st.Round != s.wantState.Round || st.Exhausted != s.wantState.Exhausted {
					t.Errorf("step %d %s at +%v: state %+v, want %+v", i, s.op, s.at, st, s.wantState)
				}
				switch {
				case s.noNext && st.NextAt != nil:
					t.Errorf("step %d %s: NextAt = %v, want nil", i, s.op, *st.NextAt)
				case !s.noNext && (st.NextAt == nil || !st.NextAt.Equal(t0.Add(s.wantNext))):
					t.Errorf("step %d %s: NextAt = %v, want +%v", i, s.op, st.NextAt, s.wantNext)
				}
			}
		})
	}
}

func TestEscalationEdges(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	p := threeTiers(0)

	// A state saved before the policy lost tiers keeps working.
	next := t0
	st, tier := p.Due(EscState{Tier: 7, NextAt: &next}, t0)
	if tier != nil || !st.Exhausted || st.Tier != 2 {
		t.Errorf("Due from out-of-range tier = %+v, %v; want exhausted at tier 2", st, tier)
	}

	// The returned tier is a copy: changing it leaves the policy alone.
	_, tier, _ = p.Escalate(EscState{}, t0)
	tier.Name = "changed"
	if p.Tiers[1].Name != "L2" {
		t.Errorf("Escalate returned a pointer into the policy")
	}

	empty := &Policy{Name: "empty"}
	if st, _ := empty.Start(t0); !st.Exhausted || st.NextAt != nil {
		t.Errorf("Start on empty policy = %+v, want exhausted", st)
	}
	if _, _, err := empty.Escalate(EscState{}, t0); !errors.Is(err, ErrNoTiers) {
		t.Errorf("Escalate on empty policy: %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	known := func(names ...string) func(string) bool {
		return func(n string) bool { return strings.Contains(" "+strings.Join(names, " ")+" ", " "+n+" ") }
	}
	users, scheds, chans := known("boss", "alice"), known("noc-l1", "noc-l2"), known("ops")
	pol := func(name string, targets ...Target) *Policy {
		return &Policy{Name: name, Tiers: []Tier{
			{Name: "L1", Timeout: check.Duration(5 * time.Minute), Targets: []Target{{Type: TargetUser, Name: "alice"}}},
			{Name: "L2", Timeout: check.Duration(5 * time.Minute), Targets: append([]Target{{Type: TargetUser, Name: "boss"}}, targets...)},
		}}
	}
	ref := func(name string) Target { return Target{Type: TargetPolicy, Name: name} }
	set := func(ps ...*Policy) map[string]*Policy {
		m := map[string]*Policy{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}

	tests := []struct {
		name       string
		p          *Policy
		others     map[string]*Policy
		nilKnown   bool
		wantField  string
		wantReason string
	}{
		{name: "valid", p: threeTiers(3)},
		{name: "valid policy target", p: pol("a", ref("soc")), others: set(pol("soc"))},
		{name: "valid chain", p: pol("a", ref("b")), others: set(pol("b", ref("c")), pol("c"))},
		{name: "nil lookups accept any name", p: pol("a", Target{Type: TargetUser, Name: "nobody"}), nilKnown: true},
		{name: "no name", p: &Policy{Tiers: threeTiers(0).Tiers}, wantField: "name"},
		{name: "no tiers", p: &Policy{Name: "p"}, wantField: "tiers", wantReason: "at least one tier"},
		{name: "tier without name", p: func() *Policy { p := threeTiers(0); p.Tiers[1].Name = ""; return p }(), wantField: "tiers[1].name"},
		{name: "duplicate tier name", p: func() *Policy { p := threeTiers(0); p.Tiers[2].Name = "L1"; return p }(), wantField: "tiers[2].name", wantReason: "tiers[0]"},
		{name: "timeout too short", p: func() *Policy { p := threeTiers(0); p.Tiers[0].Timeout = check.Duration(30 * time.Second); return p }(), wantField: "tiers[0].timeout"},
		{name: "timeout too long", p: func() *Policy { p := threeTiers(0); p.Tiers[2].Timeout = check.Duration(25 * time.Hour); return p }(), wantField: "tiers[2].timeout"},
		{name: "tier without targets", p: func() *Policy { p := threeTiers(0); p.Tiers[1].Targets = nil; return p }(), wantField: "tiers[1].targets"},
		{name: "bad target type", p: func() *Policy { p := threeTiers(0); p.Tiers[2].Targets[1].Type = "team"; return p }(), wantField: "tiers[2].targets[1].type"},
		{name: "target without name", p: func() *Policy { p := threeTiers(0); p.Tiers[1].Targets[0].Name = ""; return p }(), wantField: "tiers[1].targets[0].name"},
		{name: "unknown user", p: func() *Policy { p := threeTiers(0); p.Tiers[2].Targets[0].Name = "ghost"; return p }(), wantField: "tiers[2].targets[0].name", wantReason: `unknown user "ghost"`},
		{name: "unknown schedule", p: func() *Policy { p := threeTiers(0); p.Tiers[1].Targets[0].Name = "soc-l9"; return p }(), wantField: "tiers[1].targets[0].name", wantReason: "unknown schedule"},
		{name: "unknown channel", p: func() *Policy { p := threeTiers(0); p.Tiers[2].Targets[1].Name = "pager"; return p }(), wantField: "tiers[2].targets[1].name", wantReason: "unknown channel"},
		{name: "repeat negative", p: func() *Policy { p := threeTiers(0); p.Repeat = -1; return p }(), wantField: "repeat"},
		{name: "repeat too large", p: threeTiers(11), wantField: "repeat"},
		{name: "unknown policy", p: pol("a", ref("nope")), wantField: "tiers[1].targets[1].name", wantReason: `unknown policy "nope"`},
		{name: "loops to itself directly", p: pol("a", ref("a")), wantField: "tiers[1].targets[1].name", wantReason: "loops to itself"},
		{name: "two-policy cycle", p: pol("a", ref("b")), others: set(pol("b", ref("a"))), wantField: "tiers[1].targets[1].name", wantReason: "a → b → a"},
		{name: "three-policy cycle", p: pol("a", ref("b")), others: set(pol("b", ref("c")), pol("c", ref("a"))), wantField: "tiers[1].targets[1].name", wantReason: "a → b → c → a"},
		{name: "cycle via the edited policy's new form", p: pol("a", ref("b")), others: set(pol("a"), pol("b", ref("a"))), wantField: "tiers[1].targets[1].name", wantReason: "loops to itself"},
		// b ⇄ c loop without a; that is b's and c's error, and the walk must end.
		{name: "foreign cycle terminates", p: pol("a", ref("b")), others: set(pol("b", ref("c")), pol("c", ref("b")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.nilKnown {
				err = tt.p.Validate(nil, nil, nil, tt.others)
			} else {
				err = tt.p.Validate(users, scheds, chans, tt.others)
			}
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v (%T), want *check.FieldError for %s", err, err, tt.wantField)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Reason, tt.wantReason) {
				t.Errorf("got %q: %q, want field %q with reason containing %q", fe.Field, fe.Reason, tt.wantField, tt.wantReason)
			}
		})
	}
}
