package intake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
)

// WebhookAlert is one alert of nocsoc's generic JSON webhook. The body is
// one such object or an array of them; unknown fields are errors so that a
// typo does not silently drop information. docs/integrations.md documents
// the schema.
type WebhookAlert struct {
	Title       string            `json:"title"`
	Status      string            `json:"status"`
	Severity    string            `json:"severity"`
	Team        string            `json:"team"`
	Origin      string            `json:"origin"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	DedupKey    string            `json:"dedup_key"`
	Source      string            `json:"source"`
	Description string            `json:"description"`
	StartedAt   string            `json:"started_at"`
}

// ParseWebhook reads a generic webhook body. Identity: with dedup_key the
// fingerprint is alert.DedupFingerprint(dedup_key); without it,
// alert.Fingerprint of the labels, to which alertname=<title> is added when
// the labels have no alertname. Every problem is listed in the *Error,
// prefixed by the item's index when the body is an array.
func ParseWebhook(body []byte, now time.Time) ([]alert.Alert, error) {
	trimmed := bytes.TrimSpace(body)
	var items []json.RawMessage
	prefix := func(int) string { return "" }
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, jsonError("", err)
		}
		if len(items) == 0 {
			return nil, &Error{Problems: []string{"body: the array must hold at least one alert"}}
		}
		prefix = func(i int) string { return fmt.Sprintf("[%d]", i) }
	case len(trimmed) > 0 && trimmed[0] == '{':
		items = []json.RawMessage{trimmed}
	default:
		return nil, &Error{Problems: []string{"body: must be a JSON object or an array of objects"}}
	}
	var probs problems
	out := make([]alert.Alert, 0, len(items))
	for i, raw := range items {
		pre := prefix(i)
		field := func(name string) string {
			if pre == "" {
				return name
			}
			return pre + "." + name
		}
		var w WebhookAlert
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			if e, ok := jsonError(pre, err).(*Error); ok {
				probs = append(probs, e.Problems...)
			}
			continue
		}
		n := len(probs)
		switch {
		case strings.TrimSpace(w.Title) == "":
			probs.add(field("title"), "is required")
		case len(w.Title) > MaxTitle:
			probs.add(field("title"), "must be at most %d characters, got %d", MaxTitle, len(w.Title))
		}
		status := w.Status
		switch status {
		case "":
			status = alert.StatusFiring
		case alert.StatusFiring, alert.StatusResolved:
		default:
			probs.add(field("status"), "must be firing or resolved, got %q", w.Status)
		}
		severity := check.DefaultSeverity
		if w.Severity != "" {
			if !slices.Contains(check.Severities, w.Severity) {
				probs.add(field("severity"), "unknown severity %q (one of %s)", w.Severity, strings.Join(check.Severities, ", "))
			}
			severity = w.Severity
		}
		if w.Team != "" && w.Team != alert.TeamNOC && w.Team != alert.TeamSOC {
			probs.add(field("team"), "must be noc or soc, got %q", w.Team)
		}
		if w.Origin != "" && w.Origin != alert.OriginNatural && w.Origin != alert.OriginHuman {
			probs.add(field("origin"), "must be natural or human, got %q", w.Origin)
		}
		if len(w.DedupKey) > MaxDedupKey {
			probs.add(field("dedup_key"), "must be at most %d characters, got %d", MaxDedupKey, len(w.DedupKey))
		}
		started, ok, err := parseTime(w.StartedAt)
		if err != nil {
			probs.add(field("started_at"), "invalid time %q (want RFC 3339)", w.StartedAt)
		} else if !ok {
			started = now
		}
		if len(probs) > n {
			continue
		}
		labels := maps.Clone(w.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		if _, ok := labels["alertname"]; !ok {
			labels["alertname"] = w.Title
		}
		a := alert.Alert{
			Status:      status,
			Team:        w.Team,
			Origin:      w.Origin,
			Severity:    severity,
			Title:       w.Title,
			Description: w.Description,
			Labels:      labels,
			Annotations: maps.Clone(w.Annotations),
			DedupKey:    w.DedupKey,
			Source:      alert.IntegrationWebhook,
			StartedAt:   started,
			LastSeenAt:  now,
			Occurrences: 1,
		}
		if w.Source != "" {
			a.Source = alert.IntegrationWebhook + ":" + w.Source
		}
		if a.Team == "" || a.Origin == "" {
			var fromLabels alert.Alert
			teamOrigin(&fromLabels, labels)
			a.Team = cmp.Or(a.Team, fromLabels.Team)
			a.Origin = cmp.Or(a.Origin, fromLabels.Origin)
		}
		if w.DedupKey != "" {
			a.Fingerprint = alert.DedupFingerprint(w.DedupKey)
		} else {
			a.Fingerprint = alert.Fingerprint(labels)
		}
		if status == alert.StatusResolved {
			t := now
			a.ResolvedAt = &t
		}
		out = append(out, a)
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return out, nil
}
