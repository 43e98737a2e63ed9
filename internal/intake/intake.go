// Package intake turns alerts delivered by external systems — Alertmanager
// webhooks, PagerDuty Events API v2 calls and nocsoc's generic JSON webhook —
// into alert.Alert values. Its parsers are pure functions of the request
// body and the current time; storing, deduplicating and routing the alerts
// is the caller's job.
package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// MaxTitle is the longest accepted title or summary, in bytes (PagerDuty's
// summary limit).
const MaxTitle = 1024

// Error lists every problem found in a payload, each naming its field
// ("alerts[3].startsAt: invalid time \"x\""), so a sender can fix them all
// at once.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return "intake: " + strings.Join(e.Problems, "; ") }

// problems collects field errors.
type problems []string

func (p *problems) add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	*p = append(*p, msg)
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

// jsonError describes a decoding failure by field and offset rather than by
// Go type names.
func jsonError(prefix string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Problems: []string{fmt.Sprintf("invalid JSON at offset %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}}
	case errors.As(err, &te):
		field := te.Field
		if prefix != "" {
			field = joinField(prefix, field)
		}
		if field == "" {
			field = "body"
		}
		return &Error{Problems: []string{fmt.Sprintf("%s: must be %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)}}
	case err.Error() == "unexpected EOF":
		return &Error{Problems: []string{"invalid JSON: unexpected end of input"}}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if prefix != "" {
		msg = prefix + ": " + msg
	}
	return &Error{Problems: []string{msg}}
}

func joinField(prefix, field string) string {
	switch {
	case field == "":
		return prefix
	case prefix == "":
		return field
	}
	return prefix + "." + field
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a " + k
}

// mapSeverity turns a sender's severity into one of nocsoc's (critical,
// high, medium, low, info); ok is false for values it does not know.
func mapSeverity(s string) (sev string, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "crit", "fatal", "emergency", "alert", "page":
		return "critical", true
	case "high", "error", "err", "major":
		return "high", true
	case "medium", "warning", "warn", "minor":
		return "medium", true
	case "low":
		return "low", true
	case "info", "informational", "none", "notice", "debug":
		return "info", true
	}
	return "high", false
}

// parseTime reads an RFC 3339 timestamp; the zero time Go and Alertmanager
// write for "unset" (0001-01-01T00:00:00Z) reads as unset.
func parseTime(s string) (time.Time, bool, error) {
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, err
	}
	if t.IsZero() || t.Year() <= 1 {
		return time.Time{}, false, nil
	}
	return t, true, nil
}

// teamOrigin reads team and origin labels when they hold known values.
func teamOrigin(a *alert.Alert, labels map[string]string) {
	switch labels["team"] {
	case alert.TeamNOC, alert.TeamSOC:
		a.Team = labels["team"]
	}
	switch labels["origin"] {
	case alert.OriginNatural, alert.OriginHuman:
		a.Origin = labels["origin"]
	}
}
