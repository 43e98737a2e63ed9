package oncall

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Target types.
const (
	TargetUser     = "user"
	TargetSchedule = "schedule"
	TargetChannel  = "channel"
	TargetPolicy   = "policy"
)

// Limits on a policy's timing. A tier timeout under a minute pages the next
// tier before anyone could have read the first page; over a day the
// escalation has effectively stopped, which is what acknowledging is for.
const (
	MinTierTimeout = time.Minute
	MaxTierTimeout = 24 * time.Hour
	MaxRepeat      = 10
)

// Validate checks the policy and returns a *check.FieldError naming the
// first bad field, such as "tiers[1].targets[0].name".
//
// knownUsers, knownSchedules and knownChannels say whether a referenced name
// exists; a nil func accepts every name (useful when provisioning a whole
// set whose members are checked elsewhere). policies holds the other
// policies by name: a "policy" target must name one of them, and a policy
// that loops back to itself through "policy" targets, directly or through
// others, is rejected. An entry under p's own name is ignored in favour of p,
// so a policy being edited is checked in its new form.
func (p *Policy) Validate(knownUsers, knownSchedules, knownChannels func(string) bool, policies map[string]*Policy) error {
	if strings.TrimSpace(p.Name) == "" {
		return &check.FieldError{Field: "name", Reason: "is required"}
	}
	if len(p.Name) > 128 {
		return &check.FieldError{Field: "name", Reason: "must be at most 128 characters"}
	}
	if len(p.Tiers) == 0 {
		return &check.FieldError{Field: "tiers", Reason: "an escalation policy needs at least one tier"}
	}
	seen := make(map[string]int, len(p.Tiers))
	for i, tier := range p.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		if strings.TrimSpace(tier.Name) == "" {
			return &check.FieldError{Field: f + ".name", Reason: "is required (for example \"L1\")"}
		}
		// Tier names identify tiers on the timeline ("escalated to L2"), so
		// two tiers with one name would make it ambiguous.
		if j, dup := seen[tier.Name]; dup {
			return &check.FieldError{Field: f + ".name", Reason: fmt.Sprintf("%q is already the name of tiers[%d]", tier.Name, j)}
		}
		seen[tier.Name] = i
		if d := tier.Timeout.D(); d < MinTierTimeout || d > MaxTierTimeout {
			return &check.FieldError{Field: f + ".timeout", Reason: fmt.Sprintf("must be between %v and %v (got %v)", MinTierTimeout, MaxTierTimeout, d)}
		}
		if len(tier.Targets) == 0 {
			return &check.FieldError{Field: f + ".targets", Reason: "a tier needs at least one target"}
		}
		for j, tg := range tier.Targets {
			tf := fmt.Sprintf("%s.targets[%d]", f, j)
			if strings.TrimSpace(tg.Name) == "" {
				return &check.FieldError{Field: tf + ".name", Reason: "is required"}
			}
			var known func(string) bool
			switch tg.Type {
			case TargetUser:
				known = knownUsers
			case TargetSchedule:
				known = knownSchedules
			case TargetChannel:
				known = knownChannels
			case TargetPolicy:
				if tg.Name == p.Name {
					return &check.FieldError{Field: tf + ".name", Reason: fmt.Sprintf("escalation policy %q loops to itself", p.Name)}
				}
				if policies[tg.Name] == nil {
					return &check.FieldError{Field: tf + ".name", Reason: fmt.Sprintf("unknown policy %q", tg.Name)}
				}
				if path := p.loopVia(tg.Name, policies); path != nil {
					return &check.FieldError{Field: tf + ".name", Reason: fmt.Sprintf("escalation policy %q loops to itself: %s", p.Name, strings.Join(path, " → "))}
				}
				continue
			default:
				return &check.FieldError{Field: tf + ".type", Reason: fmt.Sprintf("%q must be user, schedule, channel or policy", tg.Type)}
			}
			if known != nil && !known(tg.Name) {
				return &check.FieldError{Field: tf + ".name", Reason: fmt.Sprintf("unknown %s %q", tg.Type, tg.Name)}
			}
		}
	}
	if p.Repeat < 0 || p.Repeat > MaxRepeat {
		return &check.FieldError{Field: "repeat", Reason: fmt.Sprintf("must be between 0 and %d (got %d)", MaxRepeat, p.Repeat)}
	}
	return nil
}

// loopVia reports whether following "policy" targets from policy next leads
// back to p, returning the path p → next → … → p, or nil. Cycles among other
// policies that never return to p are not p's fault and are left to their
// own validation; the visited set keeps the walk finite regardless.
func (p *Policy) loopVia(next string, policies map[string]*Policy) []string {
	visited := map[string]bool{p.Name: true}
	var walk func(name string, path []string) []string
	walk = func(name string, path []string) []string {
		path = append(path, name)
		if name == p.Name {
			return path
		}
		if visited[name] {
			return nil
		}
		visited[name] = true
		q := policies[name]
		if q == nil {
			return nil
		}
		for _, tier := range q.Tiers {
			for _, tg := range tier.Targets {
				if tg.Type != TargetPolicy {
					continue
				}
				if found := walk(tg.Name, path); found != nil {
					return found
				}
			}
		}
		return nil
	}
	return walk(next, []string{p.Name})
}

// EscState is where one incident's escalation stands. The zero NextAt (nil)
// means no timer is running: the incident was acknowledged (the caller
// clears NextAt), or the policy is Exhausted.
type EscState struct {
	// Tier is the index in Policy.Tiers of the tier paged last.
	Tier int `json:"tier"`
	// Round counts completed passes through the tiers (0 on the first pass,
	// up to Policy.Repeat).
	Round int `json:"round"`
	// NextAt is when the current tier times out.
	NextAt *time.Time `json:"next_at,omitempty"`
	// Exhausted is set when the last tier of the last round timed out:
	// nobody is left to page.
	Exhausted bool `json:"exhausted"`
}

// Escalation errors, returned by manual Escalate and Deescalate.
var (
	ErrLastTier  = errors.New("already at the last tier")
	ErrFirstTier = errors.New("already at the first tier")
	ErrNoTiers   = errors.New("escalation policy has no tiers")
)

func (p *Policy) tier(i int) *Tier {
	t := p.Tiers[i]
	return &t
}

func deadline(now time.Time, t *Tier) *time.Time {
	at := now.Add(t.Timeout.D())
	return &at
}

// clamp keeps a stored state usable after its policy was edited to have
// fewer tiers.
func (p *Policy) clamp(st EscState) EscState {
	if st.Tier >= len(p.Tiers) {
		st.Tier = len(p.Tiers) - 1
	}
	if st.Tier < 0 {
		st.Tier = 0
	}
	return st
}

// Start begins escalation at the first tier at time now (the caller decides
// when: after the group wait, or at once for a critical alert). It returns
// the new state and the tier to page now. A policy without tiers starts
// Exhausted and returns the zero Tier.
func (p *Policy) Start(now time.Time) (EscState, Tier) {
	if len(p.Tiers) == 0 {
		return EscState{Exhausted: true}, Tier{}
	}
	t := p.Tiers[0]
	return EscState{NextAt: deadline(now, &t)}, t
}

// Due is called when now >= *st.NextAt and the incident is still
// unacknowledged. It moves to the next tier, or back to the first tier for
// another round while Repeat allows, and returns the tier to page; the new
// tier's timeout counts from now, the moment it is paged. When nothing is
// left it returns a state that is Exhausted with a nil NextAt and a nil
// tier. A call that is not due (no timer, or now before NextAt) returns st
// unchanged and a nil tier, so a late or repeated tick never double-pages.
func (p *Policy) Due(st EscState, now time.Time) (EscState, *Tier) {
	if st.Exhausted || st.NextAt == nil || now.Before(*st.NextAt) {
		return st, nil
	}
	if len(p.Tiers) == 0 {
		return EscState{Tier: st.Tier, Round: st.Round, Exhausted: true}, nil
	}
	st = p.clamp(st)
	switch {
	case st.Tier+1 < len(p.Tiers):
		st.Tier++
	case st.Round < p.Repeat:
		st.Round++
		st.Tier = 0
	default:
		st.NextAt = nil
		st.Exhausted = true
		return st, nil
	}
	t := p.tier(st.Tier)
	st.NextAt = deadline(now, t)
	return st, t
}

// Escalate moves to the next tier now, on an operator's request, and returns
// the tier to page. Its timeout starts now even if the incident had been
// acknowledged: the new tier has been handed the incident and must
// acknowledge it itself. At the last tier it returns ErrLastTier and st
// unchanged.
func (p *Policy) Escalate(st EscState, now time.Time) (EscState, *Tier, error) {
	if len(p.Tiers) == 0 {
		return st, nil, fmt.Errorf("escalate: %w", ErrNoTiers)
	}
	st = p.clamp(st)
	if st.Tier+1 >= len(p.Tiers) {
		return st, nil, fmt.Errorf("escalate from %s: %w", p.Tiers[st.Tier].Name, ErrLastTier)
	}
	st.Tier++
	st.Exhausted = false
	t := p.tier(st.Tier)
	st.NextAt = deadline(now, t)
	return st, t, nil
}

// Deescalate moves back one tier now (never below the first) and returns
// the tier to page; its timeout starts now, as for Escalate. The round is
// unchanged. At the first tier it returns ErrFirstTier and st unchanged.
func (p *Policy) Deescalate(st EscState, now time.Time) (EscState, *Tier, error) {
	if len(p.Tiers) == 0 {
		return st, nil, fmt.Errorf("de-escalate: %w", ErrNoTiers)
	}
	st = p.clamp(st)
	if st.Tier == 0 {
		return st, nil, fmt.Errorf("de-escalate from %s: %w", p.Tiers[0].Name, ErrFirstTier)
	}
	st.Tier--
	st.Exhausted = false
	t := p.tier(st.Tier)
	st.NextAt = deadline(now, t)
	return st, t, nil
}
