package maintenance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(t time.Time) *time.Time { return &t }

func hours(h float64) check.Duration { return check.Duration(time.Duration(h * float64(time.Hour))) }

func TestValidate(t *testing.T) {
	ok := Window{Name: "w", Schedule: "0 2 * * sun", Duration: hours(4), Checks: []string{"web"}}
	tests := []struct {
		name      string
		change    func(w *Window)
		wantField string // "" means valid
		wantIn    string
	}{
		{"valid recurring", func(w *Window) {}, "", ""},
		{"valid one-off", func(w *Window) { w.Schedule = ""; w.Start = utc("2026-01-01 00:00:00") }, "", ""},
		{"valid labels only", func(w *Window) { w.Checks = nil; w.Labels = map[string]string{"env": "prod"} }, "", ""},
		{"valid zone and until", func(w *Window) {
			w.TimeZone = "Europe/Berlin"
			w.Start = utc("2026-01-01 00:00:00")
			w.Until = ptr(utc("2026-06-01 00:00:00"))
		}, "", ""},
		{"no name", func(w *Window) { w.Name = " " }, "name", "is required"},
		{"zero duration", func(w *Window) { w.Duration = 0 }, "duration", "greater than 0"},
		{"negative duration", func(w *Window) { w.Duration = -1 }, "duration", "greater than 0"},
		{"bad schedule", func(w *Window) { w.Schedule = "0 25 * * *" }, "schedule", "field 2 (hour): 25 out of range 0-23"},
		{"bad zone", func(w *Window) { w.TimeZone = "Mars/Olympus" }, "timezone", `unknown time zone "Mars/Olympus"`},
		{"one-off without start", func(w *Window) { w.Schedule = "" }, "start", "one-off"},
		{"until before start", func(w *Window) {
			w.Start = utc("2026-01-02 00:00:00")
			w.Until = ptr(utc("2026-01-01 00:00:00"))
		}, "until", "after start"},
		{"until equals start", func(w *Window) {
			w.Start = utc("2026-01-02 00:00:00")
			w.Until = ptr(w.Start)
		}, "until", "after start"},
		{"applies to nothing", func(w *Window) { w.Checks = nil }, "checks", "checks or labels"},
		{"empty check name", func(w *Window) { w.Checks = []string{"a", ""} }, "checks[1]", "is empty"},
		{"empty label name", func(w *Window) { w.Labels = map[string]string{"": "x"} }, "labels", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ok
			tt.change(&w)
			err := w.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *check.FieldError for %s", err, tt.wantField)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Reason, tt.wantIn) {
				t.Errorf("Validate = %q (field %q), want field %q mentioning %q", err, fe.Field, tt.wantField, tt.wantIn)
			}
		})
	}
	w := Window{Name: "w", Schedule: "0 25 * * *", Duration: hours(1), Checks: []string{"a"}}
	if got, want := w.Validate().Error(), "schedule: field 2 (hour): 25 out of range 0-23"; got != want {
		t.Errorf("error text %q, want %q", got, want)
	}
}

func TestActiveAt(t *testing.T) {
	type at struct {
		t    time.Time
		want bool
	}
	tests := []struct {
		name string
		w    Window
		at   []at
	}{
		{
			name: "one-off",
			w:    Window{Start: utc("2026-05-01 10:00:00"), Duration: hours(2)},
			at: []at{
				{utc("2026-05-01 09:59:59"), false},
				{utc("2026-05-01 10:00:00"), true},
				{utc("2026-05-01 11:59:59"), true},
				{utc("2026-05-01 12:00:00"), false},
				{utc("2027-05-01 10:30:00"), false},
			},
		},
		{
			name: "daily across midnight",
			w:    Window{Schedule: "30 23 * * *", Duration: hours(2)},
			at: []at{
				{utc("2026-05-01 23:29:59"), false},
				{utc("2026-05-01 23:30:00"), true},
				{utc("2026-05-02 00:00:00"), true},
				{utc("2026-05-02 01:29:59"), true},
				{utc("2026-05-02 01:30:00"), false},
				{utc("2026-05-02 12:00:00"), false},
				{utc("2026-12-31 23:45:00"), true}, // across a year end too
				{utc("2027-01-01 01:00:00"), true},
			},
		},
		{
			name: "weekly Sunday 02:00 for 4h",
			w:    Window{Schedule: "0 2 * * sun", Duration: hours(4)},
			at: []at{
				{utc("2026-03-01 01:59:59"), false}, // a Sunday
				{utc("2026-03-01 02:00:00"), true},
				{utc("2026-03-01 05:59:59"), true},
				{utc("2026-03-01 06:00:00"), false},
				{utc("2026-03-02 03:00:00"), false}, // Monday
				{utc("2026-02-28 03:00:00"), false}, // Saturday
				{utc("2026-03-08 04:00:00"), true},  // next Sunday
			},
		},
		{
			name: "weekly Sunday 02:00 for 4h in Europe/Berlin",
			w:    Window{Schedule: "0 2 * * 0", Duration: hours(4), TimeZone: "Europe/Berlin"},
			at: []at{
				// Winter, CET = UTC+1: 02:00-06:00 local is 01:00-05:00 UTC.
				{utc("2026-01-04 00:59:59"), false},
				{utc("2026-01-04 01:00:00"), true},
				{utc("2026-01-04 04:59:59"), true},
				{utc("2026-01-04 05:00:00"), false},
				// Summer, CEST = UTC+2: 00:00-04:00 UTC.
				{utc("2026-07-04 23:59:59"), false},
				{utc("2026-07-05 00:00:00"), true},
				{utc("2026-07-05 03:59:59"), true},
				{utc("2026-07-05 04:00:00"), false},
				// Spring forward (29 Mar): 02:00 does not exist; the window
				// starts at 03:00 CEST (01:00 UTC) and lasts 4h.
				{utc("2026-03-29 00:59:59"), false},
				{utc("2026-03-29 01:00:00"), true},
				{utc("2026-03-29 04:59:59"), true},
				{utc("2026-03-29 05:00:00"), false},
				// Fall back (25 Oct): 02:00 happens twice; one occurrence,
				// which covers 01:30 UTC either way.
				{utc("2026-10-25 01:30:00"), true},
				{utc("2026-10-25 05:00:00"), false},
			},
		},
		{
			name: "start and until bound a recurring window",
			w: Window{Schedule: "0 1 * * *", Duration: hours(1),
				Start: utc("2026-03-04 01:30:00"), Until: ptr(utc("2026-03-07 01:30:00"))},
			at: []at{
				{utc("2026-03-03 01:30:00"), false}, // before start
				{utc("2026-03-04 01:45:00"), false}, // occurrence at 01:00 is before start
				{utc("2026-03-05 01:15:00"), true},
				{utc("2026-03-06 01:59:59"), true},
				{utc("2026-03-07 01:45:00"), true}, // started before until: runs its full hour
				{utc("2026-03-08 01:15:00"), false},
				{utc("2027-03-08 01:15:00"), false},
			},
		},
		{
			name: "until exactly at an occurrence excludes it",
			w:    Window{Schedule: "0 1 * * *", Duration: hours(1), Until: ptr(utc("2026-03-07 01:00:00"))},
			at: []at{
				{utc("2026-03-06 01:30:00"), true},
				{utc("2026-03-07 01:30:00"), false},
			},
		},
		{
			name: "monthly, three days long",
			w:    Window{Schedule: "@monthly", Duration: hours(72)},
			at: []at{
				{utc("2026-02-28 23:59:59"), false},
				{utc("2026-03-01 00:00:00"), true},
				{utc("2026-03-03 23:59:59"), true},
				{utc("2026-03-04 00:00:00"), false},
			},
		},
		{
			name: "both day fields restricted: either matches",
			w:    Window{Schedule: "0 12 13 * fri", Duration: hours(1)},
			at: []at{
				{utc("2026-05-13 12:30:00"), true}, // a Wednesday, the 13th
				{utc("2026-05-15 12:30:00"), true}, // a Friday
				{utc("2026-05-14 12:30:00"), false},
			},
		},
		{
			name: "every 15 minutes for 5",
			w:    Window{Schedule: "*/15 * * * *", Duration: check.Duration(5 * time.Minute)},
			at: []at{
				{utc("2026-05-01 10:15:00"), true},
				{utc("2026-05-01 10:19:59"), true},
				{utc("2026-05-01 10:20:00"), false},
				{utc("2026-05-01 10:44:00"), false},
			},
		},
		{
			name: "window longer than its period",
			w:    Window{Schedule: "0 * * * *", Duration: hours(3)},
			at:   []at{{utc("2026-05-01 10:59:00"), true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			w.Name = tt.name
			w.Checks = []string{"web"}
			if err := w.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, a := range tt.at {
				if got := w.ActiveAt(a.t); got != a.want {
					t.Errorf("ActiveAt(%s) = %v, want %v", a.t.Format(time.DateTime), got, a.want)
				}
			}
		})
	}
	invalid := Window{Name: "bad", Schedule: "nope", Duration: hours(1), Checks: []string{"x"}}
	if invalid.ActiveAt(utc("2026-01-01 00:00:00")) {
		t.Errorf("an invalid window is active")
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name   string
		w      Window
		t      time.Time
		want   time.Time
		wantOK bool
	}{
		{"one-off ahead", Window{Start: utc("2026-05-01 10:00:00")}, utc("2026-04-01 00:00:00"), utc("2026-05-01 10:00:00"), true},
		{"one-off at t", Window{Start: utc("2026-05-01 10:00:00")}, utc("2026-05-01 10:00:00"), utc("2026-05-01 10:00:00"), true},
		{"one-off past", Window{Start: utc("2026-05-01 10:00:00")}, utc("2026-05-01 10:00:01"), time.Time{}, false},
		{"weekly", Window{Schedule: "0 2 * * sun"}, utc("2026-03-02 00:00:00"), utc("2026-03-08 02:00:00"), true},
		{"at an occurrence", Window{Schedule: "0 2 * * sun"}, utc("2026-03-08 02:00:00"), utc("2026-03-08 02:00:00"), true},
		{"just after an occurrence", Window{Schedule: "0 2 * * sun"}, utc("2026-03-08 02:00:01"), utc("2026-03-15 02:00:00"), true},
		{"before start", Window{Schedule: "@daily", Start: utc("2026-06-10 12:00:00")}, utc("2026-01-01 00:00:00"), utc("2026-06-11 00:00:00"), true},
		{"leap day", Window{Schedule: "0 0 29 2 *"}, utc("2026-03-01 00:00:00"), utc("2028-02-29 00:00:00"), true},
		{"past until", Window{Schedule: "@daily", Until: ptr(utc("2026-06-10 00:00:00"))}, utc("2026-06-10 00:00:00"), time.Time{}, false},
		{"before until", Window{Schedule: "@daily", Until: ptr(utc("2026-06-10 00:00:01"))}, utc("2026-06-09 12:00:00"), utc("2026-06-10 00:00:00"), true},
		{"in zone", Window{Schedule: "0 9 * * mon-fri", TimeZone: "Europe/Berlin"}, utc("2026-07-04 00:00:00"), utc("2026-07-06 07:00:00"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			w.Name, w.Duration, w.Checks = "w", hours(1), []string{"x"}
			got, ok := w.Next(tt.t)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("Next(%v) = %v, %v; want %v, %v", tt.t, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestApplies(t *testing.T) {
	tests := []struct {
		name   string
		w      Window
		check  string
		labels map[string]string
		want   bool
	}{
		{"by name", Window{Checks: []string{"web", "db"}}, "db", nil, true},
		{"other name", Window{Checks: []string{"web", "db"}}, "mail", map[string]string{"env": "prod"}, false},
		{"by labels", Window{Labels: map[string]string{"env": "prod", "site": "fra"}}, "x", map[string]string{"env": "prod", "site": "fra", "team": "noc"}, true},
		{"one label differs", Window{Labels: map[string]string{"env": "prod", "site": "fra"}}, "x", map[string]string{"env": "prod", "site": "ams"}, false},
		{"label missing", Window{Labels: map[string]string{"env": "prod", "site": "fra"}}, "x", map[string]string{"env": "prod"}, false},
		{"name or labels", Window{Checks: []string{"web"}, Labels: map[string]string{"env": "prod"}}, "x", map[string]string{"env": "prod"}, true},
		{"neither applies to nothing", Window{}, "x", map[string]string{}, false},
		{"empty labels match nothing", Window{Labels: map[string]string{}}, "x", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Applies(tt.check, tt.labels); got != tt.want {
				t.Errorf("Applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSetActive(t *testing.T) {
	ws := []Window{
		{Name: "db nightly", Schedule: "0 1 * * *", Duration: hours(2), Checks: []string{"db"}},
		{Name: "db long", Start: utc("2026-05-01 00:00:00"), Duration: hours(48), Checks: []string{"db"}},
		{Name: "prod sunday", Schedule: "0 2 * * sun", Duration: hours(4), Labels: map[string]string{"env": "prod"}},
	}
	s, err := NewSet(ws)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d", s.Len())
	}
	// Changing the input afterwards must not change the set.
	ws[0].Checks[0] = "other"
	ws[2].Labels["env"] = "dev"

	prod := map[string]string{"env": "prod"}
	tests := []struct {
		name   string
		check  string
		labels map[string]string
		now    time.Time
		want   string // "" = none
	}{
		{"nightly", "db", nil, utc("2026-04-10 01:30:00"), "db nightly"},
		{"outside", "db", nil, utc("2026-04-10 03:30:00"), ""},
		{"overlap: the one ending last wins", "db", nil, utc("2026-05-01 01:30:00"), "db long"},
		{"other check", "web", nil, utc("2026-04-10 01:30:00"), ""},
		{"by labels", "web", prod, utc("2026-05-03 03:00:00"), "prod sunday"}, // a Sunday
		{"labels, wrong day", "web", prod, utc("2026-05-04 03:00:00"), ""},
		{"labels do not match", "web", map[string]string{"env": "dev"}, utc("2026-05-03 03:00:00"), ""},
		{"name and labels, ending last wins", "db", prod, utc("2026-05-03 02:30:00"), "prod sunday"},
		{"name and labels, only one active", "db", prod, utc("2026-05-03 01:30:00"), "db nightly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ok := s.Active(tt.check, tt.labels, tt.now)
			if tt.want == "" {
				if ok {
					t.Errorf("Active = %q, want none", w.Name)
				}
				return
			}
			if !ok || w.Name != tt.want {
				t.Errorf("Active = %q, %v; want %q", w.Name, ok, tt.want)
			}
		})
	}

	_, err = NewSet([]Window{ws[0], {Name: "broken", Schedule: "* * *", Duration: hours(1), Checks: []string{"x"}}})
	var fe *check.FieldError
	if err == nil || !errors.As(err, &fe) || fe.Field != "schedule" || !strings.Contains(err.Error(), `window 1 ("broken")`) {
		t.Errorf("NewSet with a bad window: %v, want an error naming window 1 and its schedule field", err)
	}
}

func BenchmarkWindowActiveAt(b *testing.B) {
	w := Window{Name: "w", Schedule: "0 2 * * sun", Duration: hours(4), TimeZone: "Europe/Berlin", Checks: []string{"x"}}
	t0 := utc("2026-05-06 12:00:00")
	for i := 0; b.Loop(); i++ {
		w.ActiveAt(t0.Add(time.Duration(i%10000) * time.Minute))
	}
}

func BenchmarkSetActive(b *testing.B) {
	for _, bc := range []struct {
		name string
		w    Window
	}{
		{"weekly-4h-berlin", Window{Schedule: "0 2 * * sun", Duration: hours(4), TimeZone: "Europe/Berlin"}},
		{"daily-3d-utc", Window{Schedule: "0 0 * * *", Duration: hours(72)}},
		{"monthly-7d-berlin", Window{Schedule: "0 0 1 * *", Duration: hours(7 * 24), TimeZone: "Europe/Berlin"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := bc.w
			w.Name, w.Checks = bc.name, []string{"x"}
			s, err := NewSet([]Window{w})
			if err != nil {
				b.Fatal(err)
			}
			t0 := utc("2026-05-06 12:00:00")
			for i := 0; b.Loop(); i++ {
				s.Active("x", nil, t0.Add(time.Duration(i%10000)*time.Minute))
			}
		})
	}
}
