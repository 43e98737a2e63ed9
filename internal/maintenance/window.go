// Package maintenance owns maintenance windows: one-off and recurring
// (cron-style) periods during which matching checks keep running but raise
// no alerts and their time is excluded from uptime.
package maintenance

import (
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Window is one maintenance window. A one-off window covers
// [Start, Start+Duration). A recurring window (Schedule set, a 5-field cron
// expression "min hour dom month dow" evaluated in TimeZone) covers
// [occurrence, occurrence+Duration) for every occurrence at or after Start
// and, when Until is set, before Until.
//
// A window applies to a check when the check's name is in Checks or all of
// Labels match the check's labels. A window with neither applies to nothing.
type Window struct {
	ID       int64          `yaml:"-" json:"id"`
	Name     string         `yaml:"name" json:"name"`
	Start    time.Time      `yaml:"start" json:"start"`
	Duration check.Duration `yaml:"duration" json:"duration"`
	Schedule string         `yaml:"schedule" json:"schedule,omitempty"`
	TimeZone string         `yaml:"timezone" json:"timezone,omitempty"`
	Until    *time.Time     `yaml:"until" json:"until,omitempty"`

	Checks []string          `yaml:"checks" json:"checks,omitempty"`
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`

	Comment     string    `yaml:"comment" json:"comment,omitempty"`
	CreatedBy   string    `yaml:"-" json:"created_by,omitempty"`
	CreatedAt   time.Time `yaml:"-" json:"created_at"`
	Provisioned bool      `yaml:"-" json:"provisioned"`
}
