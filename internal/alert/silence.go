package alert

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Validate checks a silence before it is stored: at least one matcher, all
// of them valid, at least one that does not match the empty label set (so a
// silence cannot mute everything by accident, as in Alertmanager), and an
// end after the start. It returns a *check.FieldError.
func (s Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return &check.FieldError{Field: "matchers", Reason: "at least one matcher is required"}
	}
	ms, err := compileMatchers(s.Matchers, "matchers")
	if err != nil {
		return err
	}
	if MatchAll(ms, nil) {
		return &check.FieldError{Field: "matchers", Reason: "at least one matcher must not match an alert without labels (the silence would mute everything)"}
	}
	if s.EndsAt.IsZero() {
		return &check.FieldError{Field: "ends_at", Reason: "is required"}
	}
	if !s.EndsAt.After(s.StartsAt) {
		return &check.FieldError{Field: "ends_at", Reason: "must be after starts_at"}
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		return &check.FieldError{Field: "created_by", Reason: "is required"}
	}
	return nil
}

// SilenceSet is a compiled, immutable set of silences; build a new one when
// silences change. It is safe for concurrent use.
type SilenceSet struct {
	items []compiledSilence
}

type compiledSilence struct {
	id       int64
	start    time.Time
	end      time.Time // EndsAt, or ExpiredAt when ended early
	matchers []Matcher
}

// NewSilenceSet compiles silences; an invalid matcher is an error naming
// the silence. Silences already ended are kept (Silenced checks the time)
// so that one set serves any now.
func NewSilenceSet(ss []Silence) (*SilenceSet, error) {
	set := &SilenceSet{items: make([]compiledSilence, 0, len(ss))}
	for _, s := range ss {
		ms, err := compileMatchers(s.Matchers, "matchers")
		if err != nil {
			return nil, fmt.Errorf("silence %d: %w", s.ID, err)
		}
		if len(ms) == 0 {
			return nil, fmt.Errorf("silence %d: matchers: at least one matcher is required", s.ID)
		}
		end := s.EndsAt
		if s.ExpiredAt != nil && s.ExpiredAt.Before(end) {
			end = *s.ExpiredAt
		}
		set.items = append(set.items, compiledSilence{id: s.ID, start: s.StartsAt, end: end, matchers: ms})
	}
	// The lowest ID wins when several silences match, so the answer does
	// not depend on the order the store returned them in.
	sort.Slice(set.items, func(i, j int) bool { return set.items[i].id < set.items[j].id })
	return set, nil
}

// Len is the number of silences in the set.
func (s *SilenceSet) Len() int { return len(s.items) }

// Silenced returns the ID of the silence that mutes labels at now: one
// whose matchers all match and with StartsAt <= now < end.
func (s *SilenceSet) Silenced(labels map[string]string, now time.Time) (id int64, ok bool) {
	if s == nil {
		return 0, false
	}
	for i := range s.items {
		c := &s.items[i]
		if now.Before(c.start) || !now.Before(c.end) {
			continue
		}
		if MatchAll(c.matchers, labels) {
			return c.id, true
		}
	}
	return 0, false
}
