// Package alert owns alerts: what a check, a detection or an external
// system raises, identified by a fingerprint so that the same problem never
// opens two firing alerts.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"
)

// Status of an alert.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Teams and origins.
const (
	TeamNOC       = "noc"
	TeamSOC       = "soc"
	OriginNatural = "natural"
	OriginHuman   = "human"
)

// Alert is one alert.
type Alert struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Team        string            `json:"team"`
	Origin      string            `json:"origin"`
	Severity    string            `json:"severity"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels"`
	Source      string            `json:"source"`
	StartedAt   time.Time         `json:"started_at"`
	ResolvedAt  *time.Time        `json:"resolved_at,omitempty"`
	LastSeenAt  time.Time         `json:"last_seen_at"`
	// Occurrences counts how often the same fingerprint fired while this
	// alert was open.
	Occurrences int `json:"occurrences"`

	// Annotations carry free text from the sender (summary, description,
	// runbook_url, generator URL); they are not part of the identity.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Integration names the intake integration that delivered the alert
	// ("" for internal sources such as checks and detections).
	Integration string `json:"integration,omitempty"`
	// DedupKey is the sender's own identity for the alert (PagerDuty
	// dedup_key); when set, the fingerprint is derived from it.
	DedupKey string `json:"dedup_key,omitempty"`
	// IncidentID is the incident the alert is attached to (0: none).
	IncidentID int64 `json:"incident_id,omitempty"`
	// SuppressedBy says what keeps the alert from paging: "silence:<id>" or
	// "inhibit:<rule name>"; empty when it is active. Suppressed alerts are
	// kept and visible.
	SuppressedBy string `json:"suppressed_by,omitempty"`
	// AcknowledgedAt is set when the sender or an operator acknowledged it.
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
}

// Silence mutes alerts whose labels match all of its matchers between
// StartsAt and EndsAt. Matchers use Alertmanager syntax: name="value",
// name!="value", name=~"regex", name!~"regex".
type Silence struct {
	ID        int64     `json:"id"`
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiredAt is set when a silence is ended early.
	ExpiredAt *time.Time `json:"expired_at,omitempty"`
}

// Integration types.
const (
	IntegrationEvents       = "events"       // PagerDuty Events API v2 compatible
	IntegrationAlertmanager = "alertmanager" // Alertmanager webhook, version 4
	IntegrationWebhook      = "webhook"      // nocsoc's generic JSON webhook
)

// Integration is an intake endpoint for external alerts. Its key is a
// secret: stored hashed, shown once at creation.
type Integration struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	KeyHash   string    `json:"-"`
	KeyPrefix string    `json:"key_prefix"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Disabled  bool      `json:"disabled,omitempty"`
}

// Fingerprint is a stable hash of the identifying labels: the same labels
// in any order give the same fingerprint.
func Fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// DedupFingerprint is the fingerprint of an alert the sender identifies by
// its own dedup key (PagerDuty dedup_key, the webhook's dedup_key). The
// hash input is prefixed so that it can never equal a label fingerprint.
func DedupFingerprint(dedupKey string) string {
	h := sha256.New()
	h.Write([]byte("dedup_key\x00"))
	h.Write([]byte(dedupKey))
	return hex.EncodeToString(h.Sum(nil))[:16]
}
