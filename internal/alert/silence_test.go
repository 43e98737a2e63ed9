package alert

import (
	"strings"
	"testing"
	"time"
)

func TestSilenceSet(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	expired := t0.Add(30 * time.Minute)
	set, err := NewSilenceSet([]Silence{
		{ID: 7, Matchers: []string{`service="db"`}, StartsAt: t0, EndsAt: t0.Add(time.Hour)},
		{ID: 3, Matchers: []string{`{service=~"db|web", env="prod"}`}, StartsAt: t0, EndsAt: t0.Add(2 * time.Hour)},
		{ID: 9, Matchers: []string{`host="h1"`}, StartsAt: t0, EndsAt: t0.Add(time.Hour), ExpiredAt: &expired},
		{ID: 11, Matchers: []string{`host="h2"`}, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels map[string]string
		now    time.Time
		id     int64
		ok     bool
	}{
		{"lowest id wins", map[string]string{"service": "db", "env": "prod"}, t0.Add(time.Minute), 3, true},
		{"only one matches", map[string]string{"service": "db"}, t0.Add(time.Minute), 7, true},
		{"start is inclusive", map[string]string{"service": "db"}, t0, 7, true},
		{"end is exclusive", map[string]string{"service": "db"}, t0.Add(time.Hour), 0, false},
		{"before start", map[string]string{"service": "db"}, t0.Add(-time.Second), 0, false},
		{"expired early", map[string]string{"host": "h1"}, t0.Add(45 * time.Minute), 0, false},
		{"before early expiry", map[string]string{"host": "h1"}, t0.Add(15 * time.Minute), 9, true},
		{"future silence", map[string]string{"host": "h2"}, t0.Add(time.Minute), 0, false},
		{"future silence active", map[string]string{"host": "h2"}, t0.Add(61 * time.Minute), 11, true},
		{"no match", map[string]string{"service": "mail"}, t0.Add(time.Minute), 0, false},
	}
	for _, tt := range tests {
		id, ok := set.Silenced(tt.labels, tt.now)
		if id != tt.id || ok != tt.ok {
			t.Errorf("%s: Silenced = %d, %v; want %d, %v", tt.name, id, ok, tt.id, tt.ok)
		}
	}
	var empty *SilenceSet
	if _, ok := empty.Silenced(map[string]string{"a": "b"}, t0); ok {
		t.Error("a nil set silenced an alert")
	}
}

func TestSilenceErrors(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if _, err := NewSilenceSet([]Silence{{ID: 4, Matchers: []string{`a=~"["`}, EndsAt: t0}}); err == nil ||
		!strings.HasPrefix(err.Error(), `silence 4: matchers[0]: matcher "a=~\"[\"": invalid regex`) {
		t.Errorf("bad regex: %v", err)
	}
	good := Silence{Matchers: []string{`a="b"`}, StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedBy: "ann"}
	tests := []struct {
		name string
		edit func(*Silence)
		want string
	}{
		{"valid", func(*Silence) {}, ""},
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "matchers: at least one matcher is required"},
		{"bad matcher", func(s *Silence) { s.Matchers = []string{`a="b"`, "b"} }, `matchers[1]: matcher "b": missing operator after "b" at offset 1 (one of =, !=, =~, !~)`},
		{"matches everything", func(s *Silence) { s.Matchers = []string{`a=~".*"`} }, "matchers: at least one matcher must not match an alert without labels (the silence would mute everything)"},
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, "ends_at: is required"},
		{"end before start", func(s *Silence) { s.EndsAt = t0 }, "ends_at: must be after starts_at"},
		{"no author", func(s *Silence) { s.CreatedBy = " " }, "created_by: is required"},
	}
	for _, tt := range tests {
		s := good
		tt.edit(&s)
		err := s.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
}
