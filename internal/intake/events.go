package intake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Event actions of the PagerDuty Events API v2.
const (
	ActionTrigger     = "trigger"
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
)

// MaxDedupKey is the longest accepted dedup_key (PagerDuty's limit).
const MaxDedupKey = 255

// Event is one PagerDuty Events API v2 event. Alert is complete for a
// trigger; for acknowledge and resolve it carries only what identifies the
// alert (Fingerprint, DedupKey, Source) and the new Status (resolved, with
// ResolvedAt) or AcknowledgedAt.
type Event struct {
	RoutingKey string
	Action     string
	DedupKey   string
	// DedupGenerated is true when the trigger had no dedup_key and one was
	// derived from the body.
	DedupGenerated bool
	Alert          alert.Alert
}

// EventsPayload is the PagerDuty Events API v2 request body.
type EventsPayload struct {
	RoutingKey  string         `json:"routing_key"`
	EventAction string         `json:"event_action"`
	DedupKey    string         `json:"dedup_key"`
	Payload     *EventsDetails `json:"payload"`
	Images      []EventsImage  `json:"images"`
	Links       []EventsLink   `json:"links"`
	Client      string         `json:"client"`
	ClientURL   string         `json:"client_url"`
}

// EventsDetails is the "payload" object of a trigger event.
type EventsDetails struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp"`
	Component     string          `json:"component"`
	Group         string          `json:"group"`
	Class         string          `json:"class"`
	CustomDetails json.RawMessage `json:"custom_details"`
}

// EventsImage is an image attached to an event.
type EventsImage struct {
	Src  string `json:"src"`
	Href string `json:"href"`
	Alt  string `json:"alt"`
}

// EventsLink is a link attached to an event.
type EventsLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// EventsResponse is the reply body of the events endpoint, in PagerDuty's
// shape: {"status":"success","message":"Event processed","dedup_key":"…"}
// on success (HTTP 202) and {"status":"invalid event","message":"Event
// object is invalid","errors":[…]} on a rejected event (HTTP 400).
type EventsResponse struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// EventsOK is the reply to an accepted event.
func EventsOK(dedupKey string) EventsResponse {
	return EventsResponse{Status: "success", Message: "Event processed", DedupKey: dedupKey}
}

// EventsInvalid is the reply to a rejected event; err's problems become
// the errors list.
func EventsInvalid(err error) EventsResponse {
	r := EventsResponse{Status: "invalid event", Message: "Event object is invalid"}
	if e, ok := err.(*Error); ok {
		r.Errors = e.Problems
	} else if err != nil {
		r.Errors = []string{err.Error()}
	}
	return r
}

var eventsSeverities = map[string]string{"critical": "critical", "error": "high", "warning": "medium", "info": "info"}

// ParseEvents reads a PagerDuty Events API v2 event. A trigger without a
// dedup_key gets one derived from a hash of the body, so a retried
// identical delivery deduplicates instead of paging twice; the reply must
// return it. Every problem is listed in the returned *Error.
func ParseEvents(body []byte, now time.Time) (Event, error) {
	var p EventsPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, jsonError("", err)
	}
	var probs problems
	if p.RoutingKey == "" {
		probs.add("routing_key", "is required")
	}
	switch p.EventAction {
	case ActionTrigger, ActionAcknowledge, ActionResolve:
	case "":
		probs.add("event_action", "is required (trigger, acknowledge or resolve)")
	default:
		probs.add("event_action", "must be trigger, acknowledge or resolve, got %q", p.EventAction)
	}
	if len(p.DedupKey) > MaxDedupKey {
		probs.add("dedup_key", "must be at most %d characters, got %d", MaxDedupKey, len(p.DedupKey))
	}
	if p.DedupKey == "" && (p.EventAction == ActionAcknowledge || p.EventAction == ActionResolve) {
		probs.add("dedup_key", "is required for %s", p.EventAction)
	}
	var started time.Time
	var severity string
	if p.EventAction == ActionTrigger {
		if p.Payload == nil {
			probs.add("payload", "is required for trigger")
		} else {
			d := p.Payload
			switch {
			case d.Summary == "":
				probs.add("payload.summary", "is required")
			case len(d.Summary) > MaxTitle:
				probs.add("payload.summary", "must be at most %d characters, got %d", MaxTitle, len(d.Summary))
			}
			if d.Source == "" {
				probs.add("payload.source", "is required")
			}
			if d.Severity == "" {
				probs.add("payload.severity", "is required (critical, error, warning or info)")
			} else if s, ok := eventsSeverities[d.Severity]; ok {
				severity = s
			} else {
				probs.add("payload.severity", "must be critical, error, warning or info, got %q", d.Severity)
			}
			t, ok, err := parseTime(d.Timestamp)
			if err != nil {
				probs.add("payload.timestamp", "invalid time %q (want ISO 8601 / RFC 3339)", d.Timestamp)
			}
			started = now
			if ok {
				started = t
			}
		}
	}
	for i, l := range p.Links {
		if l.Href == "" {
			probs.add(fmt.Sprintf("links[%d].href", i), "is required")
		}
	}
	for i, im := range p.Images {
		if im.Src == "" {
			probs.add(fmt.Sprintf("images[%d].src", i), "is required")
		}
	}
	if err := probs.err(); err != nil {
		return Event{}, err
	}

	ev := Event{RoutingKey: p.RoutingKey, Action: p.EventAction, DedupKey: p.DedupKey}
	if ev.DedupKey == "" {
		sum := sha256.Sum256(body)
		ev.DedupKey, ev.DedupGenerated = hex.EncodeToString(sum[:16]), true
	}
	a := alert.Alert{
		Fingerprint: alert.DedupFingerprint(ev.DedupKey),
		DedupKey:    ev.DedupKey,
		Source:      alert.IntegrationEvents,
		LastSeenAt:  now,
	}
	switch p.EventAction {
	case ActionAcknowledge:
		a.Status = alert.StatusFiring
		a.AcknowledgedAt = &now
	case ActionResolve:
		a.Status = alert.StatusResolved
		a.ResolvedAt = &now
	case ActionTrigger:
		d := p.Payload
		a.Status = alert.StatusFiring
		a.Title = d.Summary
		a.Severity = severity
		a.StartedAt = started
		a.Occurrences = 1
		a.Source = alert.IntegrationEvents + ":" + d.Source
		a.Labels = map[string]string{"source": d.Source, "severity": severity}
		for k, v := range map[string]string{"component": d.Component, "group": d.Group, "class": d.Class} {
			if v != "" {
				a.Labels[k] = v
			}
		}
		ann := map[string]string{}
		if cd := bytes.TrimSpace(d.CustomDetails); len(cd) > 0 && string(cd) != "null" {
			var s string
			if json.Unmarshal(cd, &s) == nil {
				a.Description = s
			} else {
				ann["custom_details"] = string(cd)
			}
		}
		if p.Client != "" {
			ann["client"] = p.Client
		}
		if p.ClientURL != "" {
			ann["client_url"] = p.ClientURL
		}
		for i, l := range p.Links {
			ann["link."+strconv.Itoa(i)] = l.Href
			if l.Text != "" {
				ann["link."+strconv.Itoa(i)+".text"] = l.Text
			}
		}
		for i, im := range p.Images {
			ann["image."+strconv.Itoa(i)] = im.Src
		}
		if len(ann) > 0 {
			a.Annotations = ann
		}
	}
	ev.Alert = a
	return ev, nil
}
