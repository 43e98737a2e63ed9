package intake

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// AlertmanagerPayload is the body Alertmanager POSTs to a webhook receiver
// (version "4").
type AlertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of an Alertmanager webhook payload.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ParseAlertmanager reads an Alertmanager webhook payload (version "4")
// into one alert per entry. The fingerprint is alert.Fingerprint of the
// labels, so identical labels give identical fingerprints as in
// Alertmanager; the sender's own fingerprint is ignored because it is not
// part of the documented contract (some senders omit it). An entry without
// a status takes the payload's. All problems are returned together in an
// *Error.
func ParseAlertmanager(body []byte, now time.Time) ([]alert.Alert, error) {
	var p AlertmanagerPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, jsonError("", err)
	}
	var probs problems
	if p.Version != "4" {
		if p.Version == "" {
			probs.add("version", `is required (Alertmanager webhook version "4")`)
		} else {
			probs.add("version", `unsupported version %q (want "4")`, p.Version)
		}
	}
	if p.Status != "" && p.Status != alert.StatusFiring && p.Status != alert.StatusResolved {
		probs.add("status", "must be firing or resolved, got %q", p.Status)
	}
	if len(p.Alerts) == 0 {
		probs.add("alerts", "must hold at least one alert")
	}
	source := "alertmanager"
	if p.Receiver != "" {
		source += ":" + p.Receiver
	}
	out := make([]alert.Alert, 0, len(p.Alerts))
	for i, in := range p.Alerts {
		f := fmt.Sprintf("alerts[%d]", i)
		n := len(probs)
		status := in.Status
		if status == "" {
			status = p.Status
		}
		switch status {
		case alert.StatusFiring, alert.StatusResolved:
		case "":
			probs.add(f+".status", "is required (firing or resolved)")
		default:
			probs.add(f+".status", "must be firing or resolved, got %q", status)
		}
		if len(in.Labels) == 0 {
			probs.add(f+".labels", "must not be empty (labels identify the alert)")
		}
		started, ok, err := parseTime(in.StartsAt)
		if err != nil {
			probs.add(f+".startsAt", "invalid time %q", in.StartsAt)
		} else if !ok {
			started = now
		}
		ended, endSet, err := parseTime(in.EndsAt)
		if err != nil {
			probs.add(f+".endsAt", "invalid time %q", in.EndsAt)
		}
		if len(probs) > n {
			continue
		}
		a := alert.Alert{
			Fingerprint: alert.Fingerprint(in.Labels),
			Status:      status,
			Severity:    severityOf(in.Labels),
			Title:       in.Annotations["summary"],
			Description: in.Annotations["description"],
			Labels:      maps.Clone(in.Labels),
			Source:      source,
			StartedAt:   started,
			LastSeenAt:  now,
			Occurrences: 1,
		}
		if a.Title == "" {
			a.Title = in.Labels["alertname"]
		}
		if a.Title == "" {
			a.Title = "alert " + a.Fingerprint
		}
		if len(a.Title) > MaxTitle {
			a.Title = a.Title[:MaxTitle]
		}
		if a.Description == "" {
			a.Description = in.Annotations["message"]
		}
		if len(in.Annotations) > 0 || in.GeneratorURL != "" {
			a.Annotations = maps.Clone(in.Annotations)
			if a.Annotations == nil {
				a.Annotations = map[string]string{}
			}
			if in.GeneratorURL != "" {
				a.Annotations["generator_url"] = in.GeneratorURL
			}
		}
		teamOrigin(&a, in.Labels)
		if status == alert.StatusResolved {
			end := now
			if endSet {
				end = ended
			}
			a.ResolvedAt = &end
		}
		out = append(out, a)
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// severityOf maps the severity label; an unknown or missing one is high,
// so an alert nobody classified still pages.
func severityOf(labels map[string]string) string {
	sev, _ := mapSeverity(labels["severity"])
	return sev
}
