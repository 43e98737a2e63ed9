package notify

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
)

// nameRE matches channel names. Routing rules refer to channels by name, so
// names stay simple enough to write unquoted in YAML.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Validate checks a channel: name, type, an http(s) URL for webhook, slack
// and teams channels, and the email settings (to, from, host, port) of an
// email channel. Settings that belong to another channel type are rejected
// so that a mistake is not silently ignored. It returns a *check.FieldError
// naming the field.
func (c *Channel) Validate() error {
	if c.Name == "" {
		return &check.FieldError{Field: "name", Reason: "is required"}
	}
	if !nameRE.MatchString(c.Name) {
		return &check.FieldError{Field: "name", Reason: fmt.Sprintf("%q must be 1-128 letters, digits, '.', '_' or '-'", c.Name)}
	}
	switch c.Type {
	case TypeWebhook, TypeSlack, TypeTeams:
		if err := validateURL(c.URL); err != nil {
			return err
		}
		if c.Email != nil {
			return &check.FieldError{Field: "email", Reason: "is only valid for email channels"}
		}
		if c.Secret != "" && c.Type != TypeWebhook {
			return &check.FieldError{Field: "secret", Reason: "is only valid for webhook channels (" + c.Type + " URLs carry their own secret)"}
		}
	case TypeEmail:
		if c.URL != "" {
			return &check.FieldError{Field: "url", Reason: "is not used by email channels (set email.host and email.port)"}
		}
		if c.Secret != "" {
			return &check.FieldError{Field: "secret", Reason: "is only valid for webhook channels"}
		}
		return c.Email.validate()
	case "":
		return &check.FieldError{Field: "type", Reason: "is required (one of " + strings.Join(Types, ", ") + ")"}
	default:
		return &check.FieldError{Field: "type", Reason: fmt.Sprintf("unknown channel type %q (one of %s)", c.Type, strings.Join(Types, ", "))}
	}
	return nil
}

func validateURL(raw string) error {
	if raw == "" {
		return &check.FieldError{Field: "url", Reason: "is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &check.FieldError{Field: "url", Reason: "is not a valid URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &check.FieldError{Field: "url", Reason: "must be an http:// or https:// URL"}
	}
	if u.Host == "" {
		return &check.FieldError{Field: "url", Reason: "has no host"}
	}
	return nil
}

func (e *EmailSettings) validate() error {
	if e == nil {
		return &check.FieldError{Field: "email", Reason: "is required for an email channel (to, from, host, port)"}
	}
	if len(e.To) == 0 {
		return &check.FieldError{Field: "email.to", Reason: "needs at least one address"}
	}
	for i, a := range e.To {
		if err := validAddress(a); err != nil {
			return &check.FieldError{Field: fmt.Sprintf("email.to[%d]", i), Reason: err.Error()}
		}
	}
	if e.From == "" {
		return &check.FieldError{Field: "email.from", Reason: "is required"}
	}
	if err := validAddress(e.From); err != nil {
		return &check.FieldError{Field: "email.from", Reason: err.Error()}
	}
	if strings.TrimSpace(e.Host) == "" {
		return &check.FieldError{Field: "email.host", Reason: "is required"}
	}
	if strings.ContainsAny(e.Host, " /:") && !strings.HasPrefix(e.Host, "[") {
		return &check.FieldError{Field: "email.host", Reason: fmt.Sprintf("%q must be a host name or IP address, without port or scheme", e.Host)}
	}
	if e.Port == 0 {
		return &check.FieldError{Field: "email.port", Reason: "is required (587 for submission with STARTTLS, 465 for implicit TLS, 25 for relay)"}
	}
	if e.Port < 1 || e.Port > 65535 {
		return &check.FieldError{Field: "email.port", Reason: fmt.Sprintf("%d is not a port (1-65535)", e.Port)}
	}
	if e.Password != "" && e.Username == "" {
		return &check.FieldError{Field: "email.password", Reason: "is set without email.username"}
	}
	if e.Username != "" && !e.tls() {
		return &check.FieldError{Field: "email.username", Reason: "authentication is only sent over TLS: remove starttls: false or use port 465"}
	}
	return nil
}

// validAddress accepts one bare or named address ("a@b" or "Ops <a@b>").
// Lists and header-breaking characters are refused.
func validAddress(a string) error {
	if strings.ContainsAny(a, "\r\n") {
		return fmt.Errorf("%q contains a line break", a)
	}
	addr, err := mail.ParseAddress(a)
	if err != nil {
		return fmt.Errorf("%q is not an email address", a)
	}
	if !strings.Contains(addr.Address, "@") {
		return fmt.Errorf("%q is not an email address", a)
	}
	return nil
}

// implicitTLS reports whether the SMTP connection is TLS from the first byte
// (port 465, RFC 8314) rather than upgraded with STARTTLS.
func (e *EmailSettings) implicitTLS() bool { return e.Port == 465 }

// startTLS reports whether STARTTLS is required (the default).
func (e *EmailSettings) startTLS() bool { return e.StartTLS == nil || *e.StartTLS }

// tls reports whether the connection will be encrypted.
func (e *EmailSettings) tls() bool { return e.implicitTLS() || e.startTLS() }

// tlsVerify reports whether the server certificate is verified (the default).
func (e *EmailSettings) tlsVerify() bool { return e.TLSVerify == nil || *e.TLSVerify }
