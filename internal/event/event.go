// Package event defines the log event that flows through the SOC pipeline:
// from an input (syslog, HTTP, files, agents) through normalization to the
// event store and the detection engine.
package event

import "time"

// Event is one log event. Fields holds the normalized ECS-style fields
// with dotted names ("source.ip", "user.name", "event.outcome" …) and, for
// Windows events, the flattened Windows field names ("EventID", "Image",
// "CommandLine" …). Values are string, float64, bool or nil (JSON types),
// so that search, export and Sigma rules see the same thing.
type Event struct {
	// ID is assigned by the event store when the event is made durable.
	ID uint64 `json:"id,omitempty"`
	// Time is the event's own time (@timestamp); Received is when nocsoc
	// got it. Detection windows use Time.
	Time     time.Time `json:"@timestamp"`
	Received time.Time `json:"received"`
	// Host is host.name, Input names where it came from ("syslog-tcp",
	// "http", "file", "agent").
	Host  string `json:"host.name,omitempty"`
	Input string `json:"input"`
	// Raw is the line or payload as received; it is always kept.
	Raw string `json:"raw,omitempty"`
	// ParseError says why the raw input did not parse; the event is kept
	// with what could be read.
	ParseError string         `json:"parse_error,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
}

// Get returns a field; the fixed fields answer to their ECS names too.
func (e *Event) Get(name string) (any, bool) {
	switch name {
	case "@timestamp":
		return e.Time.UTC().Format(time.RFC3339Nano), true
	case "host.name":
		if e.Host != "" {
			return e.Host, true
		}
	case "raw", "event.original":
		return e.Raw, e.Raw != ""
	}
	v, ok := e.Fields[name]
	return v, ok
}

// String returns a field as a string ("" when absent or not a string).
func (e *Event) String(name string) string {
	v, ok := e.Get(name)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// Set sets a field, creating the map when needed.
func (e *Event) Set(name string, v any) {
	if e.Fields == nil {
		e.Fields = make(map[string]any, 8)
	}
	e.Fields[name] = v
}

// Range calls fn for every field, the fixed ones included, until fn
// returns false (keyword searches over events without a message use it).
func (e *Event) Range(fn func(name string, v any) bool) {
	if e.Host != "" && !fn("host.name", e.Host) {
		return
	}
	for k, v := range e.Fields {
		if !fn(k, v) {
			return
		}
	}
}

// Ahead is what a later stage reads ahead of a batch of events: Add is
// given each event as soon as it is built, while its memory is still in
// the CPU's cache (detection's field values, sigma.AheadBatch), and does
// not keep the pointer. Used by one goroutine, then handed on with the
// batch.
type Ahead interface {
	Add(e *Event)
}
