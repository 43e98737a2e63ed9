package cron

import (
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, expr string) *Schedule {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"", "want 5 fields"},
		{"* * * *", "want 5 fields"},
		{"60 * * * *", "field 1 (minute): 60 out of range 0-59"},
		{"* 24 * * *", "field 2 (hour): 24 out of range 0-23"},
		{"* * 0 * *", "field 3 (day-of-month): 0 out of range 1-31"},
		{"* * * 13 *", "field 4 (month): 13 out of range 1-12"},
		{"* * * * 8", "field 5 (day-of-week): 8 out of range 0-7"},
		{"* * * foo *", `"foo" is not a number or a month name`},
		{"*/0 * * * *", `step "0" must be a positive number`},
		{"*/61 * * * *", "larger than the field's range"},
		{"5-1 * * * *", "runs backwards"},
		{"1,,2 * * * *", "empty list element"},
		{"0 0 30 2 *", "never matches"},
		{"@often", "unknown macro"},
	} {
		_, err := Parse(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.expr, err, tc.want)
		}
	}
}

func TestPrevNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		expr, t, prev, next string
	}{
		{"0 2 * * *", "2026-03-10 12:00", "2026-03-10 02:00", "2026-03-11 02:00"},
		{"0 2 * * *", "2026-03-10 02:00", "2026-03-10 02:00", "2026-03-10 02:00"},
		{"0 2 * * *", "2026-03-10 01:59", "2026-03-09 02:00", "2026-03-10 02:00"},
		{"*/15 * * * *", "2026-03-10 12:07", "2026-03-10 12:00", "2026-03-10 12:15"},
		{"30 3 * * mon-fri", "2026-03-08 12:00", "2026-03-06 03:30", "2026-03-09 03:30"}, // Sunday
		{"0 0 1 * *", "2026-03-10 12:00", "2026-03-01 00:00", "2026-04-01 00:00"},
		{"0 0 29 2 *", "2026-03-10 12:00", "2024-02-29 00:00", "2028-02-29 00:00"},
		{"@hourly", "2026-03-10 12:30", "2026-03-10 12:00", "2026-03-10 13:00"},
		{"0 0 1 * sun", "2026-03-10 12:00", "2026-03-08 00:00", "2026-03-15 00:00"}, // either day field
		{"0 0 * * 7", "2026-03-10 12:00", "2026-03-08 00:00", "2026-03-15 00:00"},
	} {
		s := mustParse(t, tc.expr)
		p, ok := s.Prev(at(tc.t), time.UTC)
		if !ok || !p.Equal(at(tc.prev)) {
			t.Errorf("%q Prev(%s) = %s %v, want %s", tc.expr, tc.t, p, ok, tc.prev)
		}
		n, ok := s.Next(at(tc.t), time.UTC)
		if !ok || !n.Equal(at(tc.next)) {
			t.Errorf("%q Next(%s) = %s %v, want %s", tc.expr, tc.t, n, ok, tc.next)
		}
	}
}

func TestNextSkipsStartedMinute(t *testing.T) {
	s := mustParse(t, "0 2 * * *")
	from := time.Date(2026, 3, 10, 2, 0, 30, 0, time.UTC)
	n, _ := s.Next(from, nil)
	if want := time.Date(2026, 3, 11, 2, 0, 0, 0, time.UTC); !n.Equal(want) {
		t.Errorf("Next(02:00:30) = %s, want %s", n, want)
	}
}

func TestTimeZone(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	s := mustParse(t, "0 2 * * *")
	p, _ := s.Prev(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), loc)
	if want := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC); !p.Equal(want) { // 02:00 CEST
		t.Errorf("Prev in Berlin = %s, want %s", p.UTC(), want)
	}
}
