package oncall

import (
	"cmp"
	"slices"
	"time"
)

// Recipients are the concrete people and channels a tier pages.
type Recipients struct {
	Users    []string `json:"users,omitempty"`
	Channels []string `json:"channels,omitempty"`
	// Policies lists "policy" targets: ResolveTargets leaves them to the
	// caller, ResolveTargetsWithPolicies has already folded in their first
	// tier and lists them here for the timeline.
	Policies []string `json:"policies,omitempty"`
}

// ResolveTargets turns a tier's targets into recipients at time t: users and
// channels as they are, schedules as whoever is on call in them at t.
// Duplicates are dropped, first occurrence kept. A schedule that is unknown
// or has nobody on call contributes nothing (Validate keeps both from being
// stored). "policy" targets are listed in Policies unexpanded; use
// ResolveTargetsWithPolicies to page their first tier.
func ResolveTargets(targets []Target, schedules map[string]*Schedule, t time.Time) Recipients {
	var r Recipients
	r.add(targets, schedules, t)
	return r
}

// ResolveTargetsWithPolicies is ResolveTargets with each "policy" target
// replaced by the targets of that policy's first tier, recursively. Each
// policy is expanded at most once, so even a cyclic set terminates.
func ResolveTargetsWithPolicies(targets []Target, schedules map[string]*Schedule, policies map[string]*Policy, t time.Time) Recipients {
	var r Recipients
	r.add(targets, schedules, t)
	for i := 0; i < len(r.Policies); i++ { // r.Policies grows as policies are expanded
		p := policies[r.Policies[i]]
		if p == nil || len(p.Tiers) == 0 {
			continue
		}
		r.add(p.Tiers[0].Targets, schedules, t)
	}
	return r
}

func (r *Recipients) add(targets []Target, schedules map[string]*Schedule, t time.Time) {
	for _, tg := range targets {
		switch tg.Type {
		case TargetUser:
			r.Users = appendNew(r.Users, tg.Name)
		case TargetChannel:
			r.Channels = appendNew(r.Channels, tg.Name)
		case TargetSchedule:
			if s := schedules[tg.Name]; s != nil {
				if u, _ := s.OnCall(t); u != "" {
					r.Users = appendNew(r.Users, u)
				}
			}
		case TargetPolicy:
			r.Policies = appendNew(r.Policies, tg.Name)
		}
	}
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func sortEntries(e []OnCallEntry) {
	slices.SortFunc(e, func(a, b OnCallEntry) int {
		return cmp.Or(cmp.Compare(a.Team, b.Team), cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Schedule, b.Schedule))
	})
}
