// Package sigma owns nocsoc's Sigma engine: it parses Sigma rules (detection
// and correlation rules, as in the SigmaHQ specification), compiles them
// against a field-mapping pipeline and evaluates them over flattened events,
// keeping bounded, event-time correlation state.
package sigma

import (
	"fmt"
	"time"
)

// Logsource is a rule's logsource section.
type Logsource struct {
	Product    string `json:"product,omitempty"`
	Category   string `json:"category,omitempty"`
	Service    string `json:"service,omitempty"`
	Definition string `json:"definition,omitempty"`
}

// Rule is one Sigma rule (a detection rule or a correlation rule) as read
// from a file. The detection is parsed and validated at load; Compile turns
// it into an evaluator for a given Pipeline.
type Rule struct {
	ID, Name, Title, Status, Level, Author, Description, Path string
	Date, Modified                                            string
	Tags, References, FalsePositives, Fields                  []string
	Logsource                                                 Logsource
	// Line is the line of the rule's document start within Path.
	Line int
	// Raw is the YAML document the rule was read from.
	Raw []byte
	// Correlation is set for correlation rules (and for legacy detection
	// rules with a "| count() ..." aggregation it is nil; see Aggregation).
	Correlation *Correlation
	// Timeframe is the legacy rule-level window for "| count()" conditions.
	Timeframe time.Duration

	det *detection
}

// Correlation is the correlation section of a correlation rule.
type Correlation struct {
	// Type is event_count, value_count, temporal, temporal_ordered, or the
	// nocsoc extension silence.
	Type string
	// Rules lists referenced rules by id or name, in order.
	Rules    []string
	GroupBy  []string
	Timespan time.Duration
	// Condition holds comparison operators (gt, gte, lt, lte, eq, neq) and
	// their thresholds; all must hold. Field is the value_count field.
	Condition map[string]float64
	Field     string
	Generate  bool
	// Aliases maps an alias name to the field it stands for in each
	// referenced rule (rule id or name → field).
	Aliases map[string]map[string]string
}

// LoadError reports a rule that could not be loaded or compiled.
type LoadError struct {
	Path   string
	Line   int
	Reason string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Reason)
}

// Event is one event as seen by the engine. Field names are flattened with
// dots ("source.ip"); values are string, float64, int, int64, bool, nil, or
// a []any / []string of those (matched when any element matches).
type Event interface {
	Get(field string) (any, bool)
}

// Ranger is implemented by events that can enumerate their fields; the
// engine uses it for keyword rules when none of the pipeline's keyword
// fields is present.
type Ranger interface {
	Range(fn func(field string, value any) bool)
}

// MapEvent adapts a flattened map[string]any (the SOC pipeline's event form)
// to Event. Nested maps are also followed for dotted names missing at the
// top level, so decoded JSON works too.
type MapEvent map[string]any

// Get returns the value of field.
func (m MapEvent) Get(field string) (any, bool) {
	if v, ok := m[field]; ok {
		return v, true
	}
	return nestedGet(m, field)
}

// Range calls fn for every scalar field, descending into nested maps.
func (m MapEvent) Range(fn func(string, any) bool) { rangeMap(m, fn) }

func rangeMap(m map[string]any, fn func(string, any) bool) bool {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if !rangeMap(sub, fn) {
				return false
			}
			continue
		}
		if !fn(k, v) {
			return false
		}
	}
	return true
}

func nestedGet(m map[string]any, field string) (any, bool) {
	for i := 0; i < len(field); i++ {
		if field[i] != '.' {
			continue
		}
		sub, ok := m[field[:i]].(map[string]any)
		if !ok {
			continue
		}
		rest := field[i+1:]
		if v, ok := sub[rest]; ok {
			return v, true
		}
		if v, ok := nestedGet(sub, rest); ok {
			return v, true
		}
	}
	return nil, false
}

// Match is one rule firing.
type Match struct {
	Rule *Rule
	// EventIndex is the engine's sequence number of the event (0-based, in
	// Match call order) that made the rule fire.
	EventIndex int
	// Time is the event time of that event.
	Time time.Time
	// GroupKey names the correlation group ("source.ip=10.0.0.1"); empty for
	// single-event rules.
	GroupKey string
	// Events lists contributing event indices for correlation matches,
	// oldest first, at most MaxMatchEvents of them.
	Events []int
}

// MaxMatchEvents bounds Match.Events.
const MaxMatchEvents = 64

// Stats are engine counters.
type Stats struct {
	Rules           int    // compiled detection rules
	Correlations    int    // compiled correlation rules (including legacy aggregations)
	Events          uint64 // events evaluated
	RuleEvaluations uint64 // detection rules evaluated (after logsource selection)
	Matches         uint64 // matches returned
	Groups          int    // live correlation groups
	GroupsEvicted   uint64 // groups dropped by the per-rule LRU cap
	WindowsExpired  uint64 // groups pruned because their window expired
	EventsTruncated uint64 // per-group event buffers that hit their cap
	SilenceFired    uint64 // silence matches from Tick
}
