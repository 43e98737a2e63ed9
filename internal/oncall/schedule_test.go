package oncall

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// at parses "2006-01-02 15:04" as wall-clock time in zone.
func at(t testing.TB, zone, v string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatalf("load %s: %v", zone, err)
	}
	tm, err := time.ParseInLocation("2006-01-02 15:04", v, loc)
	if err != nil {
		t.Fatalf("parse %q: %v", v, err)
	}
	return tm
}

func mustValid(t testing.TB, s Schedule) *Schedule {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &s
}

func TestOnCallRotations(t *testing.T) {
	const ber, ny, utc = "Europe/Berlin", "America/New_York", "UTC"
	daily := func(zone, handover, start string) Schedule {
		return Schedule{Name: "s", Team: "noc", Tier: "L1", TimeZone: zone, Users: []string{"a", "b", "c"},
			Rotation: RotationDaily, Handover: handover, Start: at(t, zone, start)}
	}
	weekly := Schedule{Name: "w", Team: "soc", Tier: "L2", TimeZone: ber, Users: []string{"a", "b"},
		Rotation: RotationWeekly, Handover: "09:00", Start: at(t, ber, "2026-03-04 10:00")} // a Wednesday, after the hand-over
	custom12 := Schedule{Name: "c", Team: "noc", Tier: "L1", TimeZone: utc, Users: []string{"a", "b", "c"},
		Rotation: RotationCustom, Length: check.Duration(12 * time.Hour), Handover: "08:00", Start: at(t, utc, "2026-01-01 08:00")}
	custom24ber := Schedule{Name: "c", Team: "noc", Tier: "L1", TimeZone: ber, Users: []string{"a", "b"},
		Rotation: RotationCustom, Length: check.Duration(24 * time.Hour), Handover: "09:00", Start: at(t, ber, "2026-03-28 09:00")}
	customLate := Schedule{Name: "c", Team: "noc", Tier: "L1", TimeZone: utc, Users: []string{"a", "b", "c"},
		Rotation: RotationCustom, Length: check.Duration(8 * time.Hour), Handover: "08:00", Start: at(t, utc, "2026-01-01 10:00")}

	tests := []struct {
		name      string
		s         Schedule
		t         time.Time
		wantUser  string
		wantUntil time.Time
	}{
		{"daily first shift", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-27 10:00"), "a", at(t, ber, "2026-03-28 09:00")},
		{"daily exactly at hand-over", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-28 09:00"), "b", at(t, ber, "2026-03-29 09:00")},
		{"daily one minute before hand-over", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-28 08:59"), "a", at(t, ber, "2026-03-28 09:00")},
		{"daily before start runs backwards", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-27 08:00"), "c", at(t, ber, "2026-03-27 09:00")},
		{"daily wraps around", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-30 12:00"), "a", at(t, ber, "2026-03-31 09:00")},
		{"daily start between hand-overs", daily(ber, "09:00", "2026-03-27 12:00"), at(t, ber, "2026-03-28 10:00"), "a", at(t, ber, "2026-03-29 09:00")},
		// Berlin springs forward on 2026-03-29: the shift from 28th 09:00 CET
		// to 29th 09:00 CEST is 23 hours and still changes at 09:00 local.
		{"daily Berlin spring forward, before", daily(ber, "09:00", "2026-03-27 09:00"), at(t, ber, "2026-03-29 08:59"), "b", time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)},
		{"daily Berlin spring forward, after", daily(ber, "09:00", "2026-03-27 09:00"), time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), "c", at(t, ber, "2026-03-30 09:00")},
		// Berlin falls back on 2026-10-25: that shift is 25 hours.
		{"daily Berlin fall back, before", daily(ber, "09:00", "2026-10-24 09:00"), time.Date(2026, 10, 25, 7, 30, 0, 0, time.UTC), "a", time.Date(2026, 10, 25, 8, 0, 0, 0, time.UTC)},
		{"daily Berlin fall back, after", daily(ber, "09:00", "2026-10-24 09:00"), time.Date(2026, 10, 25, 8, 0, 0, 0, time.UTC), "b", at(t, ber, "2026-10-26 09:00")},
		// New York springs forward on 2026-03-08 and falls back on 2026-11-01.
		{"daily New York spring forward", daily(ny, "08:00", "2026-03-07 08:00"), time.Date(2026, 3, 8, 11, 59, 0, 0, time.UTC), "a", time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)},
		{"daily New York after spring forward", daily(ny, "08:00", "2026-03-07 08:00"), time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), "b", time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)},
		{"daily New York fall back", daily(ny, "08:00", "2026-10-31 08:00"), time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC), "a", time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)},
		{"weekly first hand-over on start's weekday", weekly, at(t, ber, "2026-03-11 09:00"), "a", at(t, ber, "2026-03-18 09:00")},
		{"weekly second week", weekly, at(t, ber, "2026-03-20 15:00"), "b", at(t, ber, "2026-03-25 09:00")},
		{"weekly across spring forward", weekly, at(t, ber, "2026-03-27 15:00"), "a", at(t, ber, "2026-04-01 09:00")},
		{"weekly before first hand-over", weekly, at(t, ber, "2026-03-05 09:00"), "b", at(t, ber, "2026-03-11 09:00")},
		{"custom 12h second shift", custom12, at(t, utc, "2026-01-01 20:00"), "b", at(t, utc, "2026-01-02 08:00")},
		{"custom 12h third shift", custom12, at(t, utc, "2026-01-02 09:00"), "c", at(t, utc, "2026-01-02 20:00")},
		{"custom 12h wraps", custom12, at(t, utc, "2026-01-02 20:00"), "a", at(t, utc, "2026-01-03 08:00")},
		{"custom before first hand-over", customLate, at(t, utc, "2026-01-02 07:00"), "c", at(t, utc, "2026-01-02 08:00")},
		{"custom first hand-over next day", customLate, at(t, utc, "2026-01-02 08:00"), "a", at(t, utc, "2026-01-02 16:00")},
		// A custom rotation counts real time: after spring forward its
		// hand-over moves from 09:00 to 10:00 local.
		{"custom real time across DST, before", custom24ber, at(t, ber, "2026-03-29 09:30"), "a", at(t, ber, "2026-03-29 10:00")},
		{"custom real time across DST, after", custom24ber, at(t, ber, "2026-03-29 10:00"), "b", at(t, ber, "2026-03-30 10:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustValid(t, tt.s)
			user, until := s.OnCall(tt.t)
			if user != tt.wantUser || !until.Equal(tt.wantUntil) {
				t.Errorf("OnCall(%v) = %q until %v, want %q until %v", tt.t, user, until, tt.wantUser, tt.wantUntil)
			}
			// An unvalidated copy (no cached zone) must answer the same.
			raw := tt.s
			u2, until2 := raw.OnCall(tt.t)
			if u2 != user || !until2.Equal(until) {
				t.Errorf("unvalidated OnCall = %q until %v, validated %q until %v", u2, until2, user, until)
			}
		})
	}
}

func TestShiftsContiguousAcrossDST(t *testing.T) {
	// Hand-overs at times a DST change skips (02:30 on spring-forward day)
	// or repeats (01:30 on fall-back day) must still give contiguous,
	// non-empty shifts that alternate users.
	tests := []struct {
		zone, handover, from, to string
	}{
		{"America/New_York", "02:30", "2026-03-05 00:00", "2026-03-12 00:00"},
		{"America/New_York", "01:30", "2026-10-29 00:00", "2026-11-04 00:00"},
		{"Europe/Berlin", "02:30", "2026-03-26 00:00", "2026-04-02 00:00"},
		{"Europe/Berlin", "02:30", "2026-10-22 00:00", "2026-10-29 00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.handover+" "+tt.from, func(t *testing.T) {
			for _, rot := range []string{RotationDaily, RotationWeekly} {
				s := mustValid(t, Schedule{Name: "s", Team: "noc", Tier: "L1", TimeZone: tt.zone, Users: []string{"a", "b"},
					Rotation: rot, Handover: tt.handover, Start: at(t, tt.zone, "2026-01-01 00:00")})
				from, to := at(t, tt.zone, tt.from), at(t, tt.zone, tt.to)
				shifts := s.Shifts(from, to)
				if len(shifts) == 0 {
					t.Fatalf("%s: no shifts", rot)
				}
				if !shifts[0].Start.Equal(from) || !shifts[len(shifts)-1].End.Equal(to) {
					t.Errorf("%s: shifts cover %v..%v, want %v..%v", rot, shifts[0].Start, shifts[len(shifts)-1].End, from, to)
				}
				for i, sh := range shifts {
					if !sh.End.After(sh.Start) {
						t.Errorf("%s: shift %d empty: %+v", rot, i, sh)
					}
					if i > 0 && !sh.Start.Equal(shifts[i-1].End) {
						t.Errorf("%s: gap or overlap before shift %d: %v vs %v", rot, i, shifts[i-1].End, sh.Start)
					}
					if i > 0 && sh.User == shifts[i-1].User {
						t.Errorf("%s: shift %d repeats user %q", rot, i, sh.User)
					}
				}
				if rot == RotationDaily && len(shifts) < 6 {
					t.Errorf("daily: %d shifts over ~a week", len(shifts))
				}
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	u := func(v string) time.Time { return at(t, "UTC", v) }
	base := Schedule{Name: "s", Team: "noc", Tier: "L1", TimeZone: "UTC", Users: []string{"a", "b"},
		Rotation: RotationDaily, Handover: "09:00", Start: u("2026-01-01 09:00")}
	with := func(o ...Override) Schedule { s := base; s.Overrides = o; return s }
	partial := with(
		Override{User: "x", Start: u("2026-01-01 12:00"), End: u("2026-01-01 15:00")},
		Override{User: "y", Start: u("2026-01-02 06:00"), End: u("2026-01-02 12:00")}, // spans a hand-over
	)
	outer := Override{User: "z", Start: u("2026-01-05 00:00"), End: u("2026-01-06 00:00")}
	inner := Override{User: "w", Start: u("2026-01-05 10:00"), End: u("2026-01-05 12:00")}

	tests := []struct {
		name      string
		s         Schedule
		t         string
		wantUser  string
		wantUntil string
	}{
		{"rotation until the override starts", partial, "2026-01-01 11:00", "a", "2026-01-01 12:00"},
		{"inside override", partial, "2026-01-01 13:00", "x", "2026-01-01 15:00"},
		{"override start is inclusive", partial, "2026-01-01 12:00", "x", "2026-01-01 15:00"},
		{"override end is exclusive", partial, "2026-01-01 15:00", "a", "2026-01-02 06:00"},
		{"override across hand-over", partial, "2026-01-02 10:00", "y", "2026-01-02 12:00"},
		{"rotation after override across hand-over", partial, "2026-01-02 12:00", "b", "2026-01-03 09:00"},
		{"nested: outer before inner", with(outer, inner), "2026-01-05 09:00", "z", "2026-01-05 10:00"},
		{"nested: inner wins", with(outer, inner), "2026-01-05 11:00", "w", "2026-01-05 12:00"},
		{"nested: outer resumes", with(outer, inner), "2026-01-05 12:00", "z", "2026-01-06 00:00"},
		{"nested: later-listed outer wins over earlier inner", with(inner, outer), "2026-01-05 11:00", "z", "2026-01-06 00:00"},
		{"after nested overrides", with(outer, inner), "2026-01-06 00:00", "a", "2026-01-06 09:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustValid(t, tt.s)
			user, until := s.OnCall(u(tt.t))
			if user != tt.wantUser || !until.Equal(u(tt.wantUntil)) {
				t.Errorf("OnCall(%s) = %q until %v, want %q until %s", tt.t, user, until, tt.wantUser, tt.wantUntil)
			}
		})
	}

	t.Run("shifts", func(t *testing.T) {
		s := mustValid(t, partial)
		got := s.Shifts(u("2026-01-01 00:00"), u("2026-01-03 00:00"))
		want := []Shift{
			{User: "b", Start: u("2026-01-01 00:00"), End: u("2026-01-01 09:00")},
			{User: "a", Start: u("2026-01-01 09:00"), End: u("2026-01-01 12:00")},
			{User: "x", Start: u("2026-01-01 12:00"), End: u("2026-01-01 15:00"), Override: true},
			{User: "a", Start: u("2026-01-01 15:00"), End: u("2026-01-02 06:00")},
			{User: "y", Start: u("2026-01-02 06:00"), End: u("2026-01-02 12:00"), Override: true},
			{User: "b", Start: u("2026-01-02 12:00"), End: u("2026-01-03 00:00")},
		}
		if !slices.EqualFunc(got, want, func(a, b Shift) bool {
			return a.User == b.User && a.Override == b.Override && a.Start.Equal(b.Start) && a.End.Equal(b.End)
		}) {
			t.Errorf("Shifts:\n got %+v\nwant %+v", got, want)
		}
		if got := s.Shifts(u("2026-01-02 00:00"), u("2026-01-01 00:00")); len(got) != 0 {
			t.Errorf("Shifts with to before from = %+v, want none", got)
		}
	})

	t.Run("shifts are capped", func(t *testing.T) {
		s := mustValid(t, base)
		if got := s.Shifts(u("2026-01-01 09:00"), u("2026-01-01 09:00").AddDate(40, 0, 0)); len(got) != MaxShifts {
			t.Errorf("len = %d, want %d", len(got), MaxShifts)
		}
	})
}

func TestScheduleValidate(t *testing.T) {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	good := func() Schedule {
		return Schedule{Name: "noc-l1", Team: "noc", Tier: "L1", TimeZone: "Europe/Berlin", Users: []string{"a", "b"},
			Rotation: RotationDaily, Handover: "09:00", Start: start}
	}
	tests := []struct {
		name      string
		edit      func(*Schedule)
		wantField string // "" means valid
	}{
		{"valid", func(*Schedule) {}, ""},
		{"valid weekly", func(s *Schedule) { s.Rotation = RotationWeekly }, ""},
		{"valid custom", func(s *Schedule) { s.Rotation = RotationCustom; s.Length = check.Duration(time.Hour) }, ""},
		{"empty zone means UTC", func(s *Schedule) { s.TimeZone = "" }, ""},
		{"no name", func(s *Schedule) { s.Name = " " }, "name"},
		{"bad team", func(s *Schedule) { s.Team = "ops" }, "team"},
		{"no tier", func(s *Schedule) { s.Tier = "" }, "tier"},
		{"no users", func(s *Schedule) { s.Users = nil }, "users"},
		{"empty user", func(s *Schedule) { s.Users = []string{"a", ""} }, "users[1]"},
		{"bad rotation", func(s *Schedule) { s.Rotation = "monthly" }, "rotation"},
		{"custom without length", func(s *Schedule) { s.Rotation = RotationCustom }, "length"},
		{"custom too short", func(s *Schedule) { s.Rotation = RotationCustom; s.Length = check.Duration(59 * time.Minute) }, "length"},
		{"handover hour 24", func(s *Schedule) { s.Handover = "24:00" }, "handover"},
		{"handover minutes 60", func(s *Schedule) { s.Handover = "09:60" }, "handover"},
		{"handover single digit", func(s *Schedule) { s.Handover = "9:00" }, "handover"},
		{"handover empty", func(s *Schedule) { s.Handover = "" }, "handover"},
		{"handover with seconds", func(s *Schedule) { s.Handover = "09:00:00" }, "handover"},
		{"bad zone", func(s *Schedule) { s.TimeZone = "Mars/Olympus" }, "timezone"},
		{"no start", func(s *Schedule) { s.Start = time.Time{} }, "start"},
		{"override without user", func(s *Schedule) {
			s.Overrides = []Override{{User: "x", Start: start, End: start.Add(time.Hour)}, {Start: start, End: start.Add(time.Hour)}}
		}, "overrides[1].user"},
		{"override end before start", func(s *Schedule) {
			s.Overrides = []Override{{User: "x", Start: start, End: start.Add(-time.Hour)}}
		}, "overrides[0].end"},
		{"override end equals start", func(s *Schedule) {
			s.Overrides = []Override{{User: "x", Start: start, End: start}}
		}, "overrides[0].end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.edit(&s)
			err := s.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v (%T), want *check.FieldError for %s", err, err, tt.wantField)
			}
			if fe.Field != tt.wantField {
				t.Errorf("field = %q (%v), want %q", fe.Field, err, tt.wantField)
			}
			if s.loc != nil {
				t.Errorf("a rejected schedule was changed (zone cached)")
			}
		})
	}
	s := good()
	s.Users = nil
	if err := s.Validate(); err == nil || err.Error() != "users: a schedule needs at least one user" {
		t.Errorf("no users: %v", err)
	}
}

func TestWhoIsOnCall(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	mk := func(name, team, tier string, users ...string) Schedule {
		return Schedule{Name: name, Team: team, Tier: tier, TimeZone: "UTC", Users: users, Rotation: RotationDaily, Handover: "09:00", Start: start}
	}
	scheds := []Schedule{
		mk("soc-l1", "soc", "L1", "sara"),
		mk("noc-l2", "noc", "L2", "nina"),
		mk("noc-l1-b", "noc", "L1", "bob"),
		mk("noc-l1-a", "noc", "L1", "alice"),
	}
	scheds[0].Overrides = []Override{{User: "sam", Start: start, End: now.Add(time.Hour)}}
	got := WhoIsOnCall(scheds, now)
	want := []OnCallEntry{
		{Team: "noc", Tier: "L1", Schedule: "noc-l1-a", User: "alice", Until: start.AddDate(0, 0, 1)},
		{Team: "noc", Tier: "L1", Schedule: "noc-l1-b", User: "bob", Until: start.AddDate(0, 0, 1)},
		{Team: "noc", Tier: "L2", Schedule: "noc-l2", User: "nina", Until: start.AddDate(0, 0, 1)},
		{Team: "soc", Tier: "L1", Schedule: "soc-l1", User: "sam", Until: now.Add(time.Hour), Override: true},
	}
	if !slices.EqualFunc(got, want, func(a, b OnCallEntry) bool {
		return a.Team == b.Team && a.Tier == b.Tier && a.Schedule == b.Schedule && a.User == b.User && a.Until.Equal(b.Until) && a.Override == b.Override
	}) {
		t.Errorf("WhoIsOnCall:\n got %+v\nwant %+v", got, want)
	}
}

func BenchmarkOnCall(b *testing.B) {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	for _, rot := range []string{RotationDaily, RotationWeekly, RotationCustom} {
		b.Run(rot, func(b *testing.B) {
			s := Schedule{Name: "s", Team: "noc", Tier: "L1", TimeZone: "Europe/Berlin", Users: []string{"a", "b", "c", "d"},
				Rotation: rot, Length: check.Duration(12 * time.Hour), Handover: "09:00", Start: start}
			for i := range 20 { // a realistic handful of overrides, mostly in the past
				o := start.AddDate(0, 0, 3*i)
				s.Overrides = append(s.Overrides, Override{User: "x", Start: o, End: o.Add(4 * time.Hour)})
			}
			if err := s.Validate(); err != nil {
				b.Fatal(err)
			}
			t := start.AddDate(0, 2, 0)
			b.ReportAllocs()
			for b.Loop() {
				t = t.Add(17 * time.Minute)
				if u, _ := s.OnCall(t); u == "" {
					b.Fatal("nobody on call")
				}
			}
		})
	}
	// A schedule never validated loads its zone on every call.
	b.Run("daily-unvalidated", func(b *testing.B) {
		s := Schedule{Name: "s", Team: "noc", Tier: "L1", TimeZone: "Europe/Berlin", Users: []string{"a", "b", "c", "d"},
			Rotation: RotationDaily, Handover: "09:00", Start: start}
		t := start.AddDate(0, 2, 0)
		b.ReportAllocs()
		for b.Loop() {
			t = t.Add(17 * time.Minute)
			if u, _ := s.OnCall(t); u == "" {
				b.Fatal("nobody on call")
			}
		}
	})
}
