package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/check"
)

func TestChannelValidate(t *testing.T) {
	email := func(f func(*EmailSettings)) *EmailSettings {
		e := &EmailSettings{To: []string{"ops@example.com"}, From: "nocsoc <nocsoc@example.com>", Host: "smtp.example.com", Port: 587}
		if f != nil {
			f(e)
		}
		return e
	}
	tests := []struct {
		name      string
		ch        Channel
		wantField string // "" means valid
		wantIn    string
	}{
		{name: "webhook", ch: Channel{Name: "hook", Type: TypeWebhook, URL: "https://h.example/x", Secret: "s"}},
		{name: "slack", ch: Channel{Name: "ops-slack", Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/X"}},
		{name: "teams http", ch: Channel{Name: "teams", Type: TypeTeams, URL: "http://127.0.0.1:8080/"}},
		{name: "email", ch: Channel{Name: "mail", Type: TypeEmail, Email: email(nil)}},
		{name: "email auth", ch: Channel{Name: "mail", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Username, e.Password = "u", "p" })}},
		{name: "email plain no auth", ch: Channel{Name: "mail", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.StartTLS = ptr(false); e.Port = 25 })}},
		{name: "email 465 auth", ch: Channel{Name: "mail", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.StartTLS = ptr(false); e.Port = 465; e.Username = "u" })}},

		{name: "no name", ch: Channel{Type: TypeWebhook, URL: "https://h/"}, wantField: "name", wantIn: "required"},
		{name: "bad name", ch: Channel{Name: "a b", Type: TypeWebhook, URL: "https://h/"}, wantField: "name"},
		{name: "no type", ch: Channel{Name: "a"}, wantField: "type", wantIn: "webhook, slack, teams, email"},
		{name: "bad type", ch: Channel{Name: "a", Type: "sms"}, wantField: "type", wantIn: `"sms"`},
		{name: "no url", ch: Channel{Name: "a", Type: TypeSlack}, wantField: "url", wantIn: "required"},
		{name: "ftp url", ch: Channel{Name: "a", Type: TypeWebhook, URL: "ftp://h/x"}, wantField: "url", wantIn: "http"},
		{name: "url no host", ch: Channel{Name: "a", Type: TypeWebhook, URL: "https:///x"}, wantField: "url", wantIn: "host"},
		{name: "url garbage", ch: Channel{Name: "a", Type: TypeWebhook, URL: "http://a b\x7f"}, wantField: "url"},
		{name: "secret on slack", ch: Channel{Name: "a", Type: TypeSlack, URL: "https://h/", Secret: "s"}, wantField: "secret"},
		{name: "email on webhook", ch: Channel{Name: "a", Type: TypeWebhook, URL: "https://h/", Email: email(nil)}, wantField: "email"},
		{name: "url on email", ch: Channel{Name: "a", Type: TypeEmail, URL: "https://h/", Email: email(nil)}, wantField: "url"},
		{name: "email missing", ch: Channel{Name: "a", Type: TypeEmail}, wantField: "email"},
		{name: "no to", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.To = nil })}, wantField: "email.to"},
		{name: "bad to", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.To = append(e.To, "not an address") })}, wantField: "email.to[1]"},
		{name: "to header injection", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.To = []string{"a@b\r\nBcc: x@y"} })}, wantField: "email.to[0]", wantIn: "line break"},
		{name: "no from", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.From = "" })}, wantField: "email.from"},
		{name: "bad from", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.From = "nocsoc" })}, wantField: "email.from"},
		{name: "no host", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Host = "" })}, wantField: "email.host"},
		{name: "host with port", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Host = "smtp.example.com:587" })}, wantField: "email.host"},
		{name: "no port", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Port = 0 })}, wantField: "email.port"},
		{name: "bad port", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Port = 70000 })}, wantField: "email.port"},
		{name: "password without user", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Password = "p" })}, wantField: "email.password"},
		{name: "auth without tls", ch: Channel{Name: "a", Type: TypeEmail, Email: email(func(e *EmailSettings) { e.Username = "u"; e.StartTLS = ptr(false) })}, wantField: "email.username", wantIn: "TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.ch
			err := tt.ch.Validate()
			if tt.ch.Name != before.Name || tt.ch.URL != before.URL || tt.ch.Type != before.Type {
				t.Errorf("Validate changed the channel")
			}
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *check.FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
			if !strings.Contains(fe.Reason, tt.wantIn) {
				t.Errorf("reason %q does not contain %q", fe.Reason, tt.wantIn)
			}
		})
	}
}
