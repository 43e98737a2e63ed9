// Package incident owns incidents: the unit of response that alerts attach
// to, with its status workflow, tiered escalation, timeline, tasks,
// observables, hand-off between the NOC and the SOC, and postmortem.
package incident

import (
	"fmt"
	"time"
)

// Statuses, in workflow order.
const (
	StatusTriggered     = "triggered"
	StatusAcknowledged  = "acknowledged"
	StatusInvestigating = "investigating"
	StatusMitigated     = "mitigated"
	StatusResolved      = "resolved"
	StatusClosed        = "closed"
)

// Statuses lists every status in workflow order.
var Statuses = []string{StatusTriggered, StatusAcknowledged, StatusInvestigating, StatusMitigated, StatusResolved, StatusClosed}

// transitions lists the allowed moves. Any open status may go to resolved;
// closing requires resolved first; a resolved incident may be reopened
// (back to triggered) when its problem returns.
var transitions = map[string][]string{
	StatusTriggered:     {StatusAcknowledged, StatusInvestigating, StatusMitigated, StatusResolved},
	StatusAcknowledged:  {StatusInvestigating, StatusMitigated, StatusResolved, StatusTriggered},
	StatusInvestigating: {StatusMitigated, StatusResolved, StatusAcknowledged},
	StatusMitigated:     {StatusInvestigating, StatusResolved},
	StatusResolved:      {StatusClosed, StatusTriggered},
	StatusClosed:        {},
}

// ErrTransition is returned for a status change the workflow forbids.
type ErrTransition struct{ From, To string }

func (e *ErrTransition) Error() string {
	if e.To == StatusClosed {
		return fmt.Sprintf("cannot close a %s incident: resolve it first", e.From)
	}
	return fmt.Sprintf("cannot move an incident from %s to %s", e.From, e.To)
}

// CanTransition reports whether from → to is allowed; it returns an
// *ErrTransition when not.
func CanTransition(from, to string) error {
	valid := false
	for _, s := range Statuses {
		if s == to {
			valid = true
		}
	}
	if !valid {
		return fmt.Errorf("unknown incident status %q", to)
	}
	for _, t := range transitions[from] {
		if t == to {
			return nil
		}
	}
	return &ErrTransition{From: from, To: to}
}

// Open reports whether the status counts as open (not resolved or closed).
func Open(status string) bool { return status != StatusResolved && status != StatusClosed }

// Incident is one incident.
type Incident struct {
	ID       int64  `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	// Team is the owning team, noc or soc; Joint means both queues show it.
	Team   string `json:"team"`
	Origin string `json:"origin"`
	Joint  bool   `json:"joint"`
	Status string `json:"status"`
	// Owner is the user name who owns it (set on acknowledgement by default).
	Owner string `json:"owner,omitempty"`
	// Tier is the current escalation tier index (0 = L1); -1 until the
	// first page goes out (during the route's group wait).
	Tier int `json:"tier"`
	// PolicyID is the escalation policy (0: none).
	PolicyID int64 `json:"policy_id,omitempty"`
	// Policy is the escalation policy's name (provisioned policies have no
	// id); empty means none.
	Policy string `json:"policy,omitempty"`
	// GroupKey identifies the alert group: alerts with the same route and
	// group_by label values attach to the same open incident.
	GroupKey string `json:"group_key,omitempty"`
	// Service is a free label used for per-service metrics.
	Service   string            `json:"service,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	RunbookID int64             `json:"runbook_id,omitempty"`
	// Channels are the notification channels named by the route.
	Channels []string `json:"channels,omitempty"`

	TriggeredAt    time.Time  `json:"triggered_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	MitigatedAt    *time.Time `json:"mitigated_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	// NextEscalationAt is when the current tier times out (nil: no
	// escalation pending).
	NextEscalationAt *time.Time `json:"next_escalation_at,omitempty"`
	// EscalationRound counts completed passes through the policy (repeat).
	EscalationRound int `json:"escalation_round"`
	Escalations     int `json:"escalations"`
	Handoffs        int `json:"handoffs"`
	AlertCount      int `json:"alert_count"`
	// MergedInto is set when this incident was merged into another.
	MergedInto int64 `json:"merged_into,omitempty"`
}

// Timeline entry kinds.
const (
	KindCreated       = "created"
	KindAlertAttached = "alert.attached"
	KindAlertResolved = "alert.resolved"
	KindAlertDetached = "alert.detached"
	KindStatus        = "status"
	KindNotified      = "notification.sent"
	KindNotifyFailed  = "notification.failed"
	KindEscalated     = "escalated"
	KindHandoff       = "handoff"
	KindNote          = "note"
	KindTaskAdded     = "task.added"
	KindTaskDone      = "task.done"
	KindObservable    = "observable.added"
	KindMerged        = "merged"
	KindAssigned      = "assigned"
	KindPostmortem    = "postmortem"
)

// TimelineEntry is one append-only event on an incident.
type TimelineEntry struct {
	ID         int64          `json:"id"`
	IncidentID int64          `json:"incident_id"`
	Time       time.Time      `json:"time"`
	Actor      string         `json:"actor"`
	Kind       string         `json:"kind"`
	Message    string         `json:"message"`
	Data       map[string]any `json:"data,omitempty"`
}

// Task is one checklist item on an incident.
type Task struct {
	ID         int64      `json:"id"`
	IncidentID int64      `json:"incident_id"`
	Title      string     `json:"title"`
	Done       bool       `json:"done"`
	DoneBy     string     `json:"done_by,omitempty"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
	Position   int        `json:"position"`
	// FromRunbook is true for tasks seeded from the runbook's checklist.
	FromRunbook bool `json:"from_runbook"`
}

// Observable types and TLP levels.
var (
	ObservableTypes = []string{"ip", "domain", "user", "host", "hash", "url", "email", "other"}
	TLPLevels       = []string{"clear", "green", "amber", "amber+strict", "red"}
)

// Observable is an indicator attached to an incident.
type Observable struct {
	ID         int64     `json:"id"`
	IncidentID int64     `json:"incident_id"`
	Type       string    `json:"type"`
	Value      string    `json:"value"`
	TLP        string    `json:"tlp"`
	Note       string    `json:"note,omitempty"`
	AddedBy    string    `json:"added_by"`
	AddedAt    time.Time `json:"added_at"`
}

// Root-cause categories for postmortems.
var (
	NaturalCauses = []string{"power", "network", "hardware", "software", "capacity", "third_party"}
	HumanCauses   = []string{"attack", "misuse", "misconfiguration", "change"}
)

// Postmortem records what was learned from a resolved incident.
type Postmortem struct {
	IncidentID          int64        `json:"incident_id"`
	Category            string       `json:"category"`
	Summary             string       `json:"summary"`
	ContributingFactors []string     `json:"contributing_factors"`
	ActionItems         []ActionItem `json:"action_items"`
	Author              string       `json:"author"`
	UpdatedAt           time.Time    `json:"updated_at"`
}

// ActionItem is a follow-up with an owner.
type ActionItem struct {
	Title string     `json:"title"`
	Owner string     `json:"owner"`
	Due   *time.Time `json:"due,omitempty"`
	Done  bool       `json:"done"`
}
