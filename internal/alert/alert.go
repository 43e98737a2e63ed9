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
