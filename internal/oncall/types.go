// Package oncall owns who is on call and how incidents escalate: rotating
// schedules with overrides in a time zone, and escalation policies of
// ordered tiers (L1, L2, L3 …) with timeouts and repeats.
package oncall

import (
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Schedule is an on-call rotation for one team and tier.
type Schedule struct {
	ID       int64  `json:"id" yaml:"-"`
	Name     string `json:"name" yaml:"name"`
	Team     string `json:"team" yaml:"team"` // noc or soc
	Tier     string `json:"tier" yaml:"tier"` // "L1", "L2" …
	TimeZone string `json:"timezone" yaml:"timezone"`
	// Users rotate in this order.
	Users []string `json:"users" yaml:"users"`
	// Rotation is "daily", "weekly" or "custom" (then Length is used).
	Rotation string         `json:"rotation" yaml:"rotation"`
	Length   check.Duration `json:"length,omitempty" yaml:"length"`
	// Handover is the local wall-clock time the shift changes, "HH:MM".
	Handover string `json:"handover" yaml:"handover"`
	// Start anchors the rotation: Users[0] is on call from the first
	// hand-over at or after Start.
	Start       time.Time  `json:"start" yaml:"start"`
	Overrides   []Override `json:"overrides,omitempty" yaml:"overrides"`
	Provisioned bool       `json:"provisioned" yaml:"-"`

	// loc, handH and handM cache the parsed TimeZone and Handover. Validate
	// sets them once so OnCall need not load the zone database on every
	// call; OnCall only reads them, so a validated schedule is safe to share
	// between goroutines.
	loc          *time.Location
	handH, handM int
}

// Override puts User on call instead of the rotation between Start and End.
type Override struct {
	User  string    `json:"user" yaml:"user"`
	Start time.Time `json:"start" yaml:"start"`
	End   time.Time `json:"end" yaml:"end"`
}

// Policy is an escalation policy.
type Policy struct {
	ID   int64  `json:"id" yaml:"-"`
	Name string `json:"name" yaml:"name"`
	// Tiers are tried in order; an incident unacknowledged when a tier's
	// Timeout elapses moves to the next tier.
	Tiers []Tier `json:"tiers" yaml:"tiers"`
	// Repeat is how many more times the whole policy runs after the last
	// tier times out (0: once).
	Repeat      int  `json:"repeat" yaml:"repeat"`
	Provisioned bool `json:"provisioned" yaml:"-"`
}

// Tier is one escalation level.
type Tier struct {
	Name    string         `json:"name" yaml:"name"` // "L1"
	Timeout check.Duration `json:"timeout" yaml:"timeout"`
	Targets []Target       `json:"targets" yaml:"targets"`
}

// Target is who a tier pages: a user, whoever is on call in a schedule, a
// notification channel, or the first tier of another policy.
//
// A target of type "policy" pages the first tier of another escalation
// policy (for example a NOC policy whose last tier brings in the SOC's L1);
// Policy.Validate rejects policies that loop back to themselves that way.
type Target struct {
	Type string `json:"type" yaml:"type"` // "user", "schedule", "channel", "policy"
	Name string `json:"name" yaml:"name"`
}
