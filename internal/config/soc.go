package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/normalize"
)

// Detection is the `detection:` section: which Sigma rules run over the
// event stream.
type Detection struct {
	// Rules are directories (or files) of Sigma rules, loaded in addition
	// to the built-in ones.
	Rules []string `yaml:"rules"`
	// Builtin loads the rules shipped in the binary (default true).
	Builtin *bool `yaml:"builtin"`
	// Pipeline is a logsource/field-mapping pipeline file; empty means the
	// built-in default.
	Pipeline string `yaml:"pipeline"`
}

// BuiltinOn reports whether the built-in rules load.
func (d Detection) BuiltinOn() bool { return d.Builtin == nil || *d.Builtin }

// Events is the `events:` section: the log event store.
type Events struct {
	// Retention deletes events older than this (default 720h = 30 days).
	Retention check.Duration `yaml:"retention"`
	// MaxSize bounds the event store ("50GB"); the oldest events go first.
	// Empty means no size bound.
	MaxSize string `yaml:"max_size"`
}

// Defaults of the events section.
const DefaultEventRetention = 30 * 24 * 3600 * 1e9

var sizeRE = regexp.MustCompile(`^(\d+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`)

// MaxSizeBytes parses MaxSize; 0 when empty.
func (e Events) MaxSizeBytes() int64 {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(e.MaxSize))
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return n * mult
}

func (e *Events) applyDefaults() {
	if e.Retention == 0 {
		e.Retention = check.Duration(DefaultEventRetention)
	}
}

func (e Events) validate() error {
	if e.Retention < 0 {
		return &check.FieldError{Field: "retention", Reason: "must not be negative"}
	}
	if e.MaxSize != "" && sizeRE.FindStringSubmatch(strings.TrimSpace(e.MaxSize)) == nil {
		return &check.FieldError{Field: "max_size", Reason: fmt.Sprintf("%q is not a size like 50GB or 512MiB", e.MaxSize)}
	}
	return nil
}

func (d Detection) validate() error {
	for i, r := range d.Rules {
		if strings.TrimSpace(r) == "" {
			return &check.FieldError{Field: fmt.Sprintf("rules[%d]", i), Reason: "must not be empty"}
		}
	}
	return nil
}

var _ = normalize.ValidKind
