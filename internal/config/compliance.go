package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// DefaultComplianceRetention is how long compliance history is kept when
// compliance.retention is not set: auditors ask for a year, and a period
// report for last year needs the weeks before it too.
const DefaultComplianceRetention = 400 * 24 * time.Hour

// MinComplianceRetention is the shortest compliance.retention accepted.
const MinComplianceRetention = 24 * time.Hour

// Compliance is the `compliance:` section: where policies come from and
// how long their results' history is kept.
type Compliance struct {
	// Policies is a directory of policy YAML files (*.yml, *.yaml),
	// loaded in addition to the built-in pack and read-only through the
	// API. A refused file is logged with file:line; the others load.
	// Changed files are picked up on config reload and by polling.
	Policies string `yaml:"policies"`
	// Builtin loads the Linux baseline pack shipped in the binary
	// (default true).
	Builtin *bool `yaml:"builtin"`
	// Retention is how long superseded compliance results and daily
	// scores are kept: a number of days ("400d") or a Go duration
	// ("9600h"). Empty means DefaultComplianceRetention.
	Retention string `yaml:"retention"`
}

// BuiltinOn reports whether the built-in policies load.
func (c Compliance) BuiltinOn() bool { return c.Builtin == nil || *c.Builtin }

// RetentionD is the compliance history retention (the default when
// unset). Load has validated it.
func (c Compliance) RetentionD() time.Duration {
	d, err := ParseDays(c.Retention)
	if err != nil || d == 0 {
		return DefaultComplianceRetention
	}
	return d
}

func (c Compliance) validate() []error {
	if c.Retention == "" {
		return nil
	}
	d, err := ParseDays(c.Retention)
	if err != nil {
		return []error{&check.FieldError{Field: "retention", Reason: err.Error()}}
	}
	if d < MinComplianceRetention {
		return []error{&check.FieldError{Field: "retention", Reason: fmt.Sprintf("%q is shorter than the minimum 1d", c.Retention)}}
	}
	return nil
}

// ParseDays reads a duration written as whole days ("400d") or as a Go
// duration ("36h"). "" is 0.
func ParseDays(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*366 {
			return 0, fmt.Errorf("invalid duration %q: want a number of days like 400d, or a duration like 72h", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want a number of days like 400d, or a duration like 72h", s)
	}
	return d, nil
}
