// Package cron parses standard 5-field cron expressions (minute hour
// day-of-month month day-of-week, with names, ranges, steps, lists and the
// @daily-style macros) and finds their occurrences before and after a time,
// in a time zone. Backup jobs use it to know when a run was due.
package cron

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed expression as bit sets: bit i is set when value i
// matches. It is immutable and safe for concurrent use.
type Schedule struct {
	expr   string
	minute uint64 // 0-59
	hour   uint32 // 0-23
	dom    uint32 // 1-31
	month  uint16 // 1-12
	dow    uint8  // 0-6, Sunday = 0
	// domStar and dowStar record a day field starting with '*'. When both
	// day fields are restricted a day matches if either matches (Vixie
	// cron's rule); otherwise both must.
	domStar, dowStar bool
}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dowNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

// The five fields in order; day-of-week accepts 7 as Sunday.
var fields = [5]field{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day-of-month", 1, 31, nil},
	{"month", 1, 12, monthNames},
	{"day-of-week", 0, 7, dowNames},
}

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// daysIn is the most days each month can have (February in a leap year).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// maxSearch bounds how far Prev and Next look: a leap day recurs within
// eight years.
const maxSearch = 8 * 366 * 24 * time.Hour

// Parse parses "min hour dom month dow" or a macro. Errors name the
// field: "field 2 (hour): 25 out of range 0-23".
func Parse(expr string) (*Schedule, error) {
	orig := strings.TrimSpace(expr)
	expr = orig
	if strings.HasPrefix(expr, "@") {
		m, ok := macros[strings.ToLower(expr)]
		if !ok {
			return nil, fmt.Errorf("unknown macro %q (one of @hourly, @daily, @weekly, @monthly, @yearly)", expr)
		}
		expr = m
	}
	fs := strings.Fields(expr)
	if len(fs) != 5 {
		return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fs))
	}
	var sets [5]uint64
	for i, f := range fs {
		set, err := parseField(f, fields[i])
		if err != nil {
			return nil, fmt.Errorf("field %d (%s): %w", i+1, fields[i].name, err)
		}
		sets[i] = set
	}
	if sets[4]&(1<<7) != 0 { // 7 is Sunday too
		sets[4] = sets[4]&^(1<<7) | 1
	}
	s := &Schedule{
		expr:   orig,
		minute: sets[0], hour: uint32(sets[1]), dom: uint32(sets[2]), month: uint16(sets[3]), dow: uint8(sets[4]),
		domStar: strings.HasPrefix(fs[2], "*"), dowStar: strings.HasPrefix(fs[4], "*"),
	}
	if !s.satisfiable() {
		return nil, fmt.Errorf("%q never matches: no month in field 4 has any of the days in field 3", orig)
	}
	return s, nil
}

// String returns the expression as given.
func (s *Schedule) String() string { return s.expr }

// parseField parses one comma-separated field into a bit set.
func parseField(f string, fd field) (uint64, error) {
	var set uint64
	for part := range strings.SplitSeq(f, ",") {
		if part == "" {
			return 0, fmt.Errorf("empty list element in %q", f)
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("step %q must be a positive number", stepStr)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = fd.min, fd.max
			if fd.name == "day-of-week" {
				hi = 6 // "*/2" means sun,tue,thu,sat, not 7 again
			}
			if step > hi-lo+1 {
				return 0, fmt.Errorf("step %d is larger than the field's range %d-%d", step, fd.min, fd.max)
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, fd); err != nil {
				return 0, err
			}
			if hi, err = value(b, fd); err != nil {
				return 0, err
			}
			if fd.name == "day-of-week" && hi == 0 && lo > 0 {
				hi = 7 // "mon-sun" ends on Sunday as 7
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := value(rng, fd)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep { // "5/15" means from 5 to the end in steps of 15
				hi = fd.max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// value parses a number or, where the field has names, a name.
func value(s string, fd field) (int, error) {
	if v, ok := fd.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if fd.names != nil {
			return 0, fmt.Errorf("%q is not a number or a %s name", s, fd.name)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < fd.min || v > fd.max {
		return 0, fmt.Errorf("%d out of range %d-%d", v, fd.min, fd.max)
	}
	return v, nil
}

// satisfiable reports whether some date matches; "0 0 30 2 *" never does.
func (s *Schedule) satisfiable() bool {
	if !s.dowStar && !s.domStar {
		return true // any month has every weekday
	}
	if !s.dowStar {
		return s.month != 0
	}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) != 0 && s.dom&(1<<(daysIn[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

// dayMatches reports whether the civil date matches the day fields.
func (s *Schedule) dayMatches(y int, m time.Month, d int) bool {
	if s.month&(1<<m) == 0 {
		return false
	}
	domOK := s.dom&(1<<d) != 0
	dowOK := s.dow&(1<<time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()) != 0
	if s.domStar || s.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// latestAtOrBefore returns the latest matching minute of the day at or
// before minute-of-day lim (0-1439), or -1.
func (s *Schedule) latestAtOrBefore(lim int) int {
	for h := lim / 60; h >= 0; h-- {
		hm := s.hour & (1<<(h+1) - 1)
		if hm == 0 {
			return -1
		}
		h = bits.Len32(hm) - 1 // latest matching hour at or before h
		mlim := 59
		if h == lim/60 {
			mlim = lim % 60
		}
		if mm := s.minute & (1<<(mlim+1) - 1); mm != 0 {
			return h*60 + bits.Len64(mm) - 1
		}
	}
	return -1
}

// earliestAtOrAfter returns the earliest matching minute of the day at or
// after minute-of-day lim (0-1439), or -1.
func (s *Schedule) earliestAtOrAfter(lim int) int {
	for h := lim / 60; h < 24; h++ {
		hm := s.hour >> h << h
		if hm == 0 {
			return -1
		}
		h = bits.TrailingZeros32(hm)
		mlim := 0
		if h == lim/60 {
			mlim = lim % 60
		}
		if mm := s.minute >> mlim << mlim; mm != 0 {
			return h*60 + bits.TrailingZeros64(mm)
		}
	}
	return -1
}

// Prev returns the latest occurrence at or before t, as wall-clock minutes
// in loc (nil means UTC). ok is false when none lies within eight years.
// It walks back over whole days and picks hours and minutes from the bit
// sets, so the cost grows with the days searched, not the minutes.
func (s *Schedule) Prev(t time.Time, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.UTC
	}
	day := civilDate(t.In(loc))
	return s.prev(t, day.Add(-maxSearch), loc)
}

// PrevSince is Prev searching back no further than floor's day (and one
// day of slack the caller re-checks).
func (s *Schedule) PrevSince(t, floor time.Time, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.UTC
	}
	return s.prev(t, civilDate(floor.In(loc)).AddDate(0, 0, -1), loc)
}

// prev searches back from t's minute to the civil date stop.
func (s *Schedule) prev(t, stop time.Time, loc *time.Location) (time.Time, bool) {
	lt := t.In(loc)
	day := civilDate(lt)
	lim := lt.Hour()*60 + lt.Minute()
	for !day.Before(stop) {
		y, m, d := day.Date()
		if s.dayMatches(y, m, d) {
			for mod := s.latestAtOrBefore(lim); mod >= 0; mod = s.latestAtOrBefore(mod - 1) {
				o := time.Date(y, m, d, mod/60, mod%60, 0, 0, loc)
				// Around a DST change the wall minute may map past t;
				// keep looking earlier.
				if !o.After(t) {
					return o, true
				}
				if mod == 0 {
					break
				}
			}
		}
		day = day.AddDate(0, 0, -1)
		lim = 24*60 - 1
	}
	return time.Time{}, false
}

// Next returns the earliest occurrence at or after t, in loc (nil means
// UTC). ok is false when none lies within eight years.
func (s *Schedule) Next(t time.Time, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.UTC
	}
	day := civilDate(t.In(loc))
	return s.next(t, day.Add(maxSearch), loc)
}

// NextUntil is Next searching no further than limit's day (and one day of
// slack the caller re-checks).
func (s *Schedule) NextUntil(t, limit time.Time, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.UTC
	}
	return s.next(t, civilDate(limit.In(loc)).AddDate(0, 0, 1), loc)
}

// next searches forward from t's minute to the civil date stop. A minute
// that has begun before t is passed over: its occurrence lies before t.
func (s *Schedule) next(t, stop time.Time, loc *time.Location) (time.Time, bool) {
	lt := t.In(loc)
	day := civilDate(lt)
	lim := lt.Hour()*60 + lt.Minute()
	for !day.After(stop) {
		y, m, d := day.Date()
		if s.month&(1<<m) == 0 {
			// Skip the rest of a month that cannot match.
			day = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
			lim = 0
			continue
		}
		if s.dayMatches(y, m, d) {
			for mod := s.earliestAtOrAfter(lim); mod >= 0; mod = s.earliestAtOrAfter(mod + 1) {
				o := time.Date(y, m, d, mod/60, mod%60, 0, 0, loc)
				if !o.Before(t) {
					return o, true
				}
				if mod == 24*60-1 {
					break
				}
			}
		}
		day = day.AddDate(0, 0, 1)
		lim = 0
	}
	return time.Time{}, false
}

// civilDate is lt's calendar date as midnight UTC (days step exactly).
func civilDate(lt time.Time) time.Time {
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
}
