package notify

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Event kinds of a Message.
const (
	EventTriggered    = "triggered"
	EventEscalated    = "escalated"
	EventAcknowledged = "acknowledged"
	EventResolved     = "resolved"
	EventHandoff      = "handoff"
	EventTest         = "test"
)

// Events lists every event kind that has a default template.
var Events = []string{EventTriggered, EventEscalated, EventAcknowledged, EventResolved, EventHandoff, EventTest}

const defaultSubject = `[nocsoc] [{{upper .Severity}}] #{{.IncidentID}} {{.Title}} ({{.Event}})`

// details is appended to every default body: the facts and the link back.
const details = `
Severity: {{.Severity}}
Status:   {{.Status}}
Team:     {{.Team}}
{{- with .Tier}}
Tier:     {{.}}{{end}}
{{- with .Summary}}

{{.}}{{end}}
{{- with .Labels}}

Labels:
{{- range $k, $v := .}}
  {{$k}}={{$v}}{{end}}{{end}}
{{- with .Recipients}}

Notified: {{join . ", "}}{{end}}
{{- if not .Time.IsZero}}

Time: {{utc .Time}}{{end}}
{{- with .URL}}

Open the incident: {{.}}{{end}}
`

var defaultBodies = map[string]string{
	EventTriggered:    `Incident #{{.IncidentID}} was triggered: {{.Title}}` + details,
	EventEscalated:    `Incident #{{.IncidentID}} was escalated{{with .Tier}} to {{.}}{{end}} because nobody acknowledged it: {{.Title}}` + details,
	EventAcknowledged: `Incident #{{.IncidentID}} was acknowledged: {{.Title}}` + details,
	EventResolved:     `Incident #{{.IncidentID}} is resolved: {{.Title}}` + details,
	EventHandoff:      `Incident #{{.IncidentID}} was handed off to team {{upper .Team}}: {{.Title}}` + details,
	EventTest:         `This is a test notification from nocsoc. If you can read it, the channel works.` + details,
}

// fallbackBody renders events without a template of their own.
const fallbackBody = `Incident #{{.IncidentID}} ({{.Event}}): {{.Title}}` + details

var funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"join":  strings.Join,
	"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

// Templates renders the subject and plain-text body of a message, with one
// body template per event kind. A Templates value is immutable once built,
// so one value may be shared by every sender goroutine.
type Templates struct {
	subject  *template.Template
	bodies   map[string]*template.Template
	fallback *template.Template
}

// DefaultTemplates returns the built-in templates.
func DefaultTemplates() *Templates {
	t, err := ParseTemplates("", nil)
	if err != nil {
		panic("notify: default templates: " + err.Error()) // a bug in the constants above
	}
	return t
}

// ParseTemplates builds templates from text/template sources, overriding
// the defaults: subject replaces the default subject when not empty, and
// bodies maps an event kind to its body. Templates see a Message and the
// functions upper, join and utc. The error names the template at fault.
func ParseTemplates(subject string, bodies map[string]string) (*Templates, error) {
	if subject == "" {
		subject = defaultSubject
	}
	t := &Templates{bodies: make(map[string]*template.Template, len(defaultBodies))}
	var err error
	if t.subject, err = parseOne("subject", subject); err != nil {
		return nil, err
	}
	if t.fallback, err = parseOne("body", fallbackBody); err != nil {
		return nil, err
	}
	for ev, src := range defaultBodies {
		if t.bodies[ev], err = parseOne("body."+ev, src); err != nil {
			return nil, err
		}
	}
	for ev, src := range bodies {
		if t.bodies[ev], err = parseOne("body."+ev, src); err != nil {
			return nil, err
		}
	}
	// Rendering a sample catches errors that only show at execution
	// (unknown fields), so a bad override fails at load.
	sample := Message{Event: EventTest, IncidentID: 1, Title: "sample", Severity: "critical", Team: "noc", Status: "triggered",
		Labels: map[string]string{"a": "b"}, Recipients: []string{"x"}, Time: time.Unix(0, 0), URL: "http://localhost/"}
	if err := t.subject.Execute(new(strings.Builder), sample); err != nil {
		return nil, fmt.Errorf("template subject: %w", err)
	}
	for ev, bt := range t.bodies {
		if err := bt.Execute(new(strings.Builder), sample); err != nil {
			return nil, fmt.Errorf("template body.%s: %w", ev, err)
		}
	}
	return t, nil
}

func parseOne(name, src string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return t, nil
}

// Render returns the subject (one line, no line breaks) and the plain-text
// body of m. It never fails: should a template fail at run time, a fixed
// format is used instead, so a page is never lost to a template.
func (t *Templates) Render(m Message) (subject, text string) {
	var sb, bb strings.Builder
	if err := t.subject.Execute(&sb, m); err != nil {
		sb.Reset()
		fmt.Fprintf(&sb, "[nocsoc] [%s] #%d %s (%s)", strings.ToUpper(m.Severity), m.IncidentID, m.Title, m.Event)
	}
	bt := t.bodies[m.Event]
	if bt == nil {
		bt = t.fallback
	}
	if err := bt.Execute(&bb, m); err != nil {
		bb.Reset()
		fmt.Fprintf(&bb, "Incident #%d (%s): %s\n\nOpen the incident: %s\n", m.IncidentID, m.Event, m.Title, m.URL)
	}
	// A line break in a subject would end the email header early.
	subject = strings.Join(strings.Fields(sb.String()), " ")
	return subject, bb.String()
}
