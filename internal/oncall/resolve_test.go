package oncall

import (
	"slices"
	"testing"
	"time"
)

func TestResolveTargets(t *testing.T) {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	now := start.Add(time.Hour)
	sched := func(name string, users ...string) *Schedule {
		return mustValid(t, Schedule{Name: name, Team: "noc", Tier: "L1", TimeZone: "UTC", Users: users, Rotation: RotationDaily, Handover: "09:00", Start: start})
	}
	schedules := map[string]*Schedule{"noc-l1": sched("noc-l1", "alice", "bob"), "soc-l1": sched("soc-l1", "sara")}
	policies := map[string]*Policy{
		"soc": {Name: "soc", Tiers: []Tier{
			{Name: "L1", Targets: []Target{{Type: TargetSchedule, Name: "soc-l1"}, {Type: TargetChannel, Name: "soc-room"}, {Type: TargetPolicy, Name: "noc"}}},
			{Name: "L2", Targets: []Target{{Type: TargetUser, Name: "never-paged"}}},
		}},
		// noc → soc → noc: a cycle must still terminate.
		"noc": {Name: "noc", Tiers: []Tier{{Name: "L1", Targets: []Target{{Type: TargetPolicy, Name: "soc"}, {Type: TargetUser, Name: "carol"}}}}},
	}
	targets := []Target{
		{Type: TargetUser, Name: "dave"},
		{Type: TargetSchedule, Name: "noc-l1"},
		{Type: TargetChannel, Name: "ops"},
		{Type: TargetUser, Name: "alice"}, // also on call: listed once
		{Type: TargetSchedule, Name: "missing"},
		{Type: TargetChannel, Name: "ops"},
		{Type: TargetPolicy, Name: "soc"},
	}
	tests := []struct {
		name    string
		resolve func() Recipients
		want    Recipients
	}{
		{"plain", func() Recipients { return ResolveTargets(targets, schedules, now) },
			Recipients{Users: []string{"dave", "alice"}, Channels: []string{"ops"}, Policies: []string{"soc"}}},
		{"next day the rotation moved on", func() Recipients { return ResolveTargets(targets[:3], schedules, now.Add(24*time.Hour)) },
			Recipients{Users: []string{"dave", "bob"}, Channels: []string{"ops"}}},
		{"with policies", func() Recipients { return ResolveTargetsWithPolicies(targets, schedules, policies, now) },
			Recipients{Users: []string{"dave", "alice", "sara", "carol"}, Channels: []string{"ops", "soc-room"}, Policies: []string{"soc", "noc"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.resolve()
			if !slices.Equal(got.Users, tt.want.Users) || !slices.Equal(got.Channels, tt.want.Channels) || !slices.Equal(got.Policies, tt.want.Policies) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
