package maintenance

import (
	"fmt"
	"github.com/nocsoc/nocsoc/internal/cron"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// nextHorizon bounds the forward search of Next: "29 feb" recurs at most 8
// years apart, so 9 years finds every satisfiable schedule.
const nextHorizon = 9 * 366 * 24 * time.Hour

// compiled is a validated window with its schedule parsed and its time
// zone loaded, ready for repeated evaluation.
type compiled struct {
	w      Window
	sched  *cron.Schedule // nil for a one-off window
	loc    *time.Location
	checks map[string]struct{}
}

// compile validates w and prepares it for evaluation. Errors are
// *check.FieldError.
func compile(w *Window) (*compiled, error) {
	if strings.TrimSpace(w.Name) == "" {
		return nil, &check.FieldError{Field: "name", Reason: "is required"}
	}
	if w.Duration <= 0 {
		return nil, &check.FieldError{Field: "duration", Reason: "must be greater than 0"}
	}
	c := &compiled{w: *w, loc: time.UTC}
	if w.Schedule != "" {
		s, err := cron.Parse(w.Schedule)
		if err != nil {
			return nil, &check.FieldError{Field: "schedule", Reason: err.Error()}
		}
		c.sched = s
	} else if w.Start.IsZero() {
		return nil, &check.FieldError{Field: "start", Reason: "is required for a one-off window (no schedule)"}
	}
	if w.TimeZone != "" {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			return nil, &check.FieldError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q", w.TimeZone)}
		}
		c.loc = loc
	}
	if w.Until != nil && !w.Until.After(w.Start) {
		return nil, &check.FieldError{Field: "until", Reason: "must be after start"}
	}
	if len(w.Checks) == 0 && len(w.Labels) == 0 {
		return nil, &check.FieldError{Field: "checks", Reason: "a window needs checks or labels to apply to"}
	}
	for i, n := range w.Checks {
		if strings.TrimSpace(n) == "" {
			return nil, &check.FieldError{Field: fmt.Sprintf("checks[%d]", i), Reason: "is empty"}
		}
	}
	for k := range w.Labels {
		if k == "" {
			return nil, &check.FieldError{Field: "labels", Reason: "a label name is empty"}
		}
	}
	// Copy what the caller could change later: a Set is immutable.
	c.w.Checks = slices.Clone(w.Checks)
	c.w.Labels = maps.Clone(w.Labels)
	if w.Until != nil {
		u := *w.Until
		c.w.Until = &u
	}
	c.checks = make(map[string]struct{}, len(w.Checks))
	for _, n := range w.Checks {
		c.checks[n] = struct{}{}
	}
	return c, nil
}

// Validate checks a window. It returns a *check.FieldError naming the
// field: name is required; duration must be positive; schedule must be a
// 5-field cron expression or macro; timezone must load; a one-off window
// needs start; until must be after start; the window must name checks or
// labels.
func (w *Window) Validate() error {
	_, err := compile(w)
	return err
}

// ActiveAt reports whether the window covers t. An invalid window covers
// nothing. It parses the schedule on every call: code that asks often
// should build a Set.
func (w *Window) ActiveAt(t time.Time) bool {
	c, err := compile(w)
	if err != nil {
		return false
	}
	_, ok := c.activeAt(t)
	return ok
}

// Applies reports whether the window concerns the check: its name is in
// Checks, or Labels is not empty and every label matches the check's.
func (w *Window) Applies(checkName string, labels map[string]string) bool {
	if slices.Contains(w.Checks, checkName) {
		return true
	}
	return labelsMatch(w.Labels, labels)
}

// Next returns the start of the first occurrence at or after t, for
// display; ok is false when there is none (a past one-off window, a
// recurring window past Until, or an invalid window).
func (w *Window) Next(t time.Time) (time.Time, bool) {
	c, err := compile(w)
	if err != nil {
		return time.Time{}, false
	}
	return c.next(t)
}

func labelsMatch(want, have map[string]string) bool {
	if len(want) == 0 {
		return false
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// activeAt reports whether the window covers t and, if so, when the
// covering occurrence ends.
func (c *compiled) activeAt(t time.Time) (end time.Time, ok bool) {
	d := c.w.Duration.D()
	if c.sched == nil {
		end = c.w.Start.Add(d)
		if c.w.Until != nil && c.w.Until.Before(end) {
			end = *c.w.Until
		}
		return end, !t.Before(c.w.Start) && t.Before(end)
	}
	// The latest occurrence o <= t (and < Until) decides: all occurrences
	// last equally long, so if it has ended, every earlier one has too.
	upper := t
	if c.w.Until != nil && !c.w.Until.After(t) {
		upper = c.w.Until.Add(-time.Nanosecond)
	}
	floor := t.Add(-d) // an occurrence at or before this has ended by t
	if floor.Before(c.w.Start) {
		floor = c.w.Start
	}
	if upper.Before(floor) {
		return time.Time{}, false
	}
	o, found := c.sched.PrevSince(upper, floor, c.loc)
	if !found || o.Before(c.w.Start) {
		return time.Time{}, false
	}
	end = o.Add(d)
	return end, t.Before(end)
}

func (c *compiled) next(t time.Time) (time.Time, bool) {
	if c.sched == nil {
		if c.w.Start.Before(t) {
			return time.Time{}, false
		}
		return c.w.Start, true
	}
	from := t
	if from.Before(c.w.Start) {
		from = c.w.Start
	}
	limit := from.Add(nextHorizon)
	if c.w.Until != nil && c.w.Until.Before(limit) {
		limit = *c.w.Until
	}
	if !from.Before(limit) {
		return time.Time{}, false
	}
	o, ok := c.sched.NextUntil(from, limit, c.loc)
	if !ok || !o.Before(limit) {
		return time.Time{}, false
	}
	return o, true
}

// Set is an immutable collection of compiled windows for fast lookups; it
// is safe for concurrent use. Build a new Set when the windows change.
type Set struct {
	byCheck  map[string][]*compiled
	byLabels []*compiled
	n        int
}

// NewSet validates and compiles the windows. The error names the window by
// position and name and wraps its *check.FieldError.
func NewSet(ws []Window) (*Set, error) {
	s := &Set{byCheck: make(map[string][]*compiled), n: len(ws)}
	for i := range ws {
		c, err := compile(&ws[i])
		if err != nil {
			return nil, fmt.Errorf("maintenance window %d (%q): %w", i, ws[i].Name, err)
		}
		for n := range c.checks {
			s.byCheck[n] = append(s.byCheck[n], c)
		}
		if len(c.w.Labels) > 0 {
			s.byLabels = append(s.byLabels, c)
		}
	}
	return s, nil
}

// Len returns the number of windows in the set.
func (s *Set) Len() int { return s.n }

// Active returns the window that applies to the check and covers now. When
// several do, it returns the one whose current occurrence ends last, so the
// caller can show how long the maintenance lasts.
func (s *Set) Active(checkName string, labels map[string]string, now time.Time) (Window, bool) {
	var best *compiled
	var bestEnd time.Time
	consider := func(c *compiled) {
		if end, ok := c.activeAt(now); ok && (best == nil || end.After(bestEnd)) {
			best, bestEnd = c, end
		}
	}
	for _, c := range s.byCheck[checkName] {
		consider(c)
	}
	for _, c := range s.byLabels {
		if labelsMatch(c.w.Labels, labels) {
			consider(c)
		}
	}
	if best == nil {
		return Window{}, false
	}
	w := best.w
	// Hand out copies so callers cannot change the shared set.
	w.Checks = slices.Clone(w.Checks)
	w.Labels = maps.Clone(w.Labels)
	if w.Until != nil {
		u := *w.Until
		w.Until = &u
	}
	return w, true
}
