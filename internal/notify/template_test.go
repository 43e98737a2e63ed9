package notify

import (
	"strings"
	"testing"
)

func TestRenderDefaults(t *testing.T) {
	tm := DefaultTemplates()
	m := sampleMessage()
	subject, text := tm.Render(m)
	if want := "[nocsoc] [CRITICAL] #42 db is down (triggered)"; subject != want {
		t.Errorf("subject = %q, want %q", subject, want)
	}
	for _, want := range []string{
		"Incident #42 was triggered: db is down",
		"Severity: critical", "Team:     noc", "Tier:     L1",
		"postgres on db1 refuses connections",
		"  host=db1\n  service=postgres",
		"Notified: alice",
		"Time: 2030-06-01T12:00:00Z",
		"Open the incident: https://nocsoc.example/incidents/42",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}

	firsts := map[string]string{
		EventEscalated:    "Incident #42 was escalated to L1 because nobody acknowledged it",
		EventAcknowledged: "Incident #42 was acknowledged",
		EventResolved:     "Incident #42 is resolved",
		EventHandoff:      "Incident #42 was handed off to team NOC",
		EventTest:         "This is a test notification",
		"reopened":        "Incident #42 (reopened): db is down",
	}
	for ev, want := range firsts {
		m.Event = ev
		subject, text := tm.Render(m)
		if !strings.HasPrefix(text, want) {
			t.Errorf("%s: body starts %q, want %q", ev, firstLine(text), want)
		}
		if !strings.HasSuffix(subject, "("+ev+")") {
			t.Errorf("%s: subject %q", ev, subject)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestRenderSubjectOneLine(t *testing.T) {
	m := sampleMessage()
	m.Title = "db\r\nBcc: victim@example.com"
	subject, _ := DefaultTemplates().Render(m)
	if strings.ContainsAny(subject, "\r\n") {
		t.Errorf("subject has a line break: %q", subject)
	}
}

func TestParseTemplates(t *testing.T) {
	tm, err := ParseTemplates("{{.Team}}: {{.Title}}", map[string]string{EventResolved: "fixed {{.IncidentID}}"})
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMessage()
	m.Event = EventResolved
	subject, text := tm.Render(m)
	if subject != "noc: db is down" || text != "fixed 42" {
		t.Errorf("got %q / %q", subject, text)
	}
	m.Event = EventTriggered // not overridden: the default stays
	if _, text := tm.Render(m); !strings.HasPrefix(text, "Incident #42 was triggered") {
		t.Errorf("default body lost: %q", firstLine(text))
	}

	for _, tc := range []struct {
		subject string
		bodies  map[string]string
		want    string
	}{
		{subject: "{{.Title", want: "template subject:"},
		{bodies: map[string]string{EventEscalated: "{{.Nope}}"}, want: "template body.escalated:"},
		{bodies: map[string]string{EventTest: "{{nofunc .}}"}, want: "template body.test:"},
	} {
		if _, err := ParseTemplates(tc.subject, tc.bodies); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTemplates(%q, %v) = %v, want error containing %q", tc.subject, tc.bodies, err, tc.want)
		}
	}
}
