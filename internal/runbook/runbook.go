// Package runbook owns runbooks: markdown documents for each role, stored
// in nocsoc and provisioned from a directory, linked to checks, detection
// rules or label matchers, rendered to sanitised HTML, with checklist items
// that seed incident tasks.
package runbook

import "time"

// Runbook is one runbook.
type Runbook struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Title    string `json:"title"`
	Markdown string `json:"markdown"`
	// Checks and Rules link the runbook to check names and detection rule
	// ids; Matchers (Alertmanager syntax) link it to alert labels.
	Checks      []string  `json:"checks,omitempty"`
	Rules       []string  `json:"rules,omitempty"`
	Matchers    []string  `json:"matchers,omitempty"`
	Team        string    `json:"team,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
	Provisioned bool      `json:"provisioned"`
}
