package runbook

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
)

// MaxMarkdown is the largest runbook body accepted, in bytes.
const MaxMarkdown = 256 << 10

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Validate checks the runbook. It returns a *check.FieldError naming the
// first bad field.
func (r *Runbook) Validate() error {
	switch {
	case r.Name == "":
		return &check.FieldError{Field: "name", Reason: "is required"}
	case len(r.Name) > 128 || !nameRE.MatchString(r.Name):
		return &check.FieldError{Field: "name", Reason: fmt.Sprintf("%q must be 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)}
	case len(r.Title) > 200:
		return &check.FieldError{Field: "title", Reason: "must be at most 200 characters"}
	case strings.TrimSpace(r.Markdown) == "":
		return &check.FieldError{Field: "markdown", Reason: "is required"}
	case len(r.Markdown) > MaxMarkdown:
		return &check.FieldError{Field: "markdown", Reason: fmt.Sprintf("is %d bytes; the limit is %d (256 KiB)", len(r.Markdown), MaxMarkdown)}
	case r.Team != "" && r.Team != "noc" && r.Team != "soc":
		return &check.FieldError{Field: "team", Reason: fmt.Sprintf("%q must be noc or soc", r.Team)}
	}
	for i, c := range r.Checks {
		if strings.TrimSpace(c) == "" {
			return &check.FieldError{Field: fmt.Sprintf("checks[%d]", i), Reason: "must not be empty"}
		}
	}
	for i, c := range r.Rules {
		if strings.TrimSpace(c) == "" {
			return &check.FieldError{Field: fmt.Sprintf("rules[%d]", i), Reason: "must not be empty"}
		}
	}
	for i, s := range r.Matchers {
		if _, err := alert.ParseMatchers([]string{s}); err != nil {
			return &check.FieldError{Field: fmt.Sprintf("matchers[%d]", i), Reason: err.Error()}
		}
	}
	return nil
}
