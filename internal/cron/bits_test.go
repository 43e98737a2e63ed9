package cron

import (
	"math/rand/v2"
	"testing"
	"time"
)

// bitsOf builds a bit set from values.
func bitsOf(vs ...int) uint64 {
	var b uint64
	for _, v := range vs {
		b |= 1 << v
	}
	return b
}

func rangeBits(lo, hi, step int) uint64 {
	var b uint64
	for v := lo; v <= hi; v += step {
		b |= 1 << v
	}
	return b
}

func TestParseBits(t *testing.T) {
	all := func() Schedule {
		return Schedule{minute: rangeBits(0, 59, 1), hour: uint32(rangeBits(0, 23, 1)), dom: uint32(rangeBits(1, 31, 1)),
			month: uint16(rangeBits(1, 12, 1)), dow: uint8(rangeBits(0, 6, 1)), domStar: true, dowStar: true}
	}
	with := func(f func(c *Schedule)) Schedule { c := all(); f(&c); return c }
	tests := []struct {
		expr string
		want Schedule
	}{
		{"* * * * *", all()},
		{"*/15 * * * *", with(func(c *Schedule) { c.minute = bitsOf(0, 15, 30, 45) })},
		{"1-30/5 * * * *", with(func(c *Schedule) { c.minute = bitsOf(1, 6, 11, 16, 21, 26) })},
		{"5/20 * * * *", with(func(c *Schedule) { c.minute = bitsOf(5, 25, 45) })},
		{"0,30 8-17 * * *", with(func(c *Schedule) { c.minute = bitsOf(0, 30); c.hour = uint32(rangeBits(8, 17, 1)) })},
		{"0 2 * * sun", with(func(c *Schedule) { c.minute = 1; c.hour = 1 << 2; c.dow = 1; c.dowStar = false })},
		{"0 2 * * 7", with(func(c *Schedule) { c.minute = 1; c.hour = 1 << 2; c.dow = 1; c.dowStar = false })},
		{"0 2 * * 0", with(func(c *Schedule) { c.minute = 1; c.hour = 1 << 2; c.dow = 1; c.dowStar = false })},
		{"0 0 * * MON-FRI", with(func(c *Schedule) { c.minute = 1; c.hour = 1; c.dow = uint8(rangeBits(1, 5, 1)); c.dowStar = false })},
		{"0 0 * * fri-sun", with(func(c *Schedule) { c.minute = 1; c.hour = 1; c.dow = uint8(bitsOf(0, 5, 6)); c.dowStar = false })},
		{"0 0 * * 5-7", with(func(c *Schedule) { c.minute = 1; c.hour = 1; c.dow = uint8(bitsOf(0, 5, 6)); c.dowStar = false })},
		{"0 0 * * */2", with(func(c *Schedule) { c.minute = 1; c.hour = 1; c.dow = uint8(bitsOf(0, 2, 4, 6)) })},
		{"0 0 1,15 jan,Jul *", with(func(c *Schedule) {
			c.minute = 1
			c.hour = 1
			c.dom = uint32(bitsOf(1, 15))
			c.domStar = false
			c.month = uint16(bitsOf(1, 7))
		})},
		{"0 0 1 * mon", with(func(c *Schedule) {
			c.minute, c.hour, c.dom, c.dow = 1, 1, 1<<1, 1<<1
			c.domStar, c.dowStar = false, false
		})},
		{"  0   0  *  *  *  ", with(func(c *Schedule) { c.minute, c.hour = 1, 1 })},
		{"@daily", with(func(c *Schedule) { c.minute, c.hour = 1, 1 })},
		{"@hourly", with(func(c *Schedule) { c.minute = 1 })},
		{"@weekly", with(func(c *Schedule) { c.minute, c.hour, c.dow, c.dowStar = 1, 1, 1, false })},
		{"@monthly", with(func(c *Schedule) { c.minute, c.hour, c.dom, c.domStar = 1, 1, 1<<1, false })},
		{"@YEARLY", with(func(c *Schedule) { c.minute, c.hour, c.dom, c.domStar, c.month = 1, 1, 1<<1, false, 1<<1 })},
		{"0 0 29 2 *", with(func(c *Schedule) { c.minute, c.hour, c.dom, c.domStar, c.month = 1, 1, 1<<29, false, 1<<2 })},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			g := *got
			g.expr = "" // the bits are what is compared
			if g != tt.want {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tt.expr, *got, tt.want)
			}
		})
	}
}

func TestParseErrorMessages(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "want 5 fields (minute hour day-of-month month day-of-week), got 0"},
		{"* * * *", "want 5 fields (minute hour day-of-month month day-of-week), got 4"},
		{"* * * * * *", "want 5 fields (minute hour day-of-month month day-of-week), got 6"},
		{"0 25 * * *", "field 2 (hour): 25 out of range 0-23"},
		{"60 * * * *", "field 1 (minute): 60 out of range 0-59"},
		{"* * 0 * *", "field 3 (day-of-month): 0 out of range 1-31"},
		{"* * 32 * *", "field 3 (day-of-month): 32 out of range 1-31"},
		{"* * * 13 *", "field 4 (month): 13 out of range 1-12"},
		{"* * * * 8", "field 5 (day-of-week): 8 out of range 0-7"},
		{"* * * foo *", `field 4 (month): "foo" is not a number or a month name`},
		{"* * * * funday", `field 5 (day-of-week): "funday" is not a number or a day-of-week name`},
		{"x * * * *", `field 1 (minute): "x" is not a number`},
		{"mon * * * *", `field 1 (minute): "mon" is not a number`},
		{"*/0 * * * *", `field 1 (minute): step "0" must be a positive number`},
		{"*/x * * * *", `field 1 (minute): step "x" must be a positive number`},
		{"*/61 * * * *", "field 1 (minute): step 61 is larger than the field's range 0-59"},
		{"30-10 * * * *", `field 1 (minute): range "30-10" runs backwards`},
		{"1,,2 * * * *", `field 1 (minute): empty list element in "1,,2"`},
		{"-5 * * * *", `field 1 (minute): "" is not a number`},
		{"0 0 30 feb *", `"0 0 30 feb *" never matches: no month in field 4 has any of the days in field 3`},
		{"0 0 31 4,6,9,11 *", `"0 0 31 4,6,9,11 *" never matches: no month in field 4 has any of the days in field 3`},
		{"@often", `unknown macro "@often" (one of @hourly, @daily, @weekly, @monthly, @yearly)`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Parse(tt.expr)
			if err == nil {
				t.Fatalf("Parse(%q): no error, want %q", tt.expr, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n %q\nwant\n %q", tt.expr, err, tt.want)
			}
		})
	}
}

// matchesNaive is the obvious definition of a match, minute by minute.
func matchesNaive(c *Schedule, lt time.Time) bool {
	return c.minute&(1<<lt.Minute()) != 0 && c.hour&(1<<lt.Hour()) != 0 && c.dayMatches(lt.Year(), lt.Month(), lt.Day())
}

// TestPrevNextAgainstNaive (from the maintenance windows that used this
// parser first) checks the day/hour/minute stepping search
// against a minute-by-minute scan, in zones without DST changes (where
// every wall minute exists exactly once).
func TestPrevNextAgainstNaive(t *testing.T) {
	exprs := []string{"* * * * *", "0 2 * * 0", "*/15 9-17 * * 1-5", "30 23 * * *", "0 0 1 * *",
		"0 12 13 * fri", "5/20 */6 1-7 * mon", "0 0 29 2 *", "59 23 31 12 *", "7 3 * jun-aug sat,sun"}
	zones := []*time.Location{time.UTC, time.FixedZone("UTC+5:30", 5*3600+1800), time.FixedZone("UTC-7", -7*3600)}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const span = 3 * 24 * time.Hour
	for _, expr := range exprs {
		c, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range zones {
			for range 20 {
				tm := base.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour))))
				// Naive prev within span.
				var want time.Time
				for o := tm.Truncate(time.Minute); !o.Before(tm.Add(-span)); o = o.Add(-time.Minute) {
					if matchesNaive(c, o.In(loc)) {
						want = o
						break
					}
				}
				got, ok := c.PrevSince(tm, tm.Add(-span), loc)
				if !want.IsZero() && (!ok || !got.Equal(want)) {
					t.Errorf("%q in %s: prev(%v) = %v, %v; want %v", expr, loc, tm, got, ok, want)
				}
				if want.IsZero() && ok && !got.Before(tm.Add(-span-48*time.Hour)) && got.After(tm.Add(-span)) {
					t.Errorf("%q in %s: prev(%v) = %v, naive found nothing", expr, loc, tm, got)
				}
				// Naive next within span.
				want = time.Time{}
				o := tm.Truncate(time.Minute)
				if o.Before(tm) {
					o = o.Add(time.Minute)
				}
				for ; !o.After(tm.Add(span)); o = o.Add(time.Minute) {
					if matchesNaive(c, o.In(loc)) {
						want = o
						break
					}
				}
				got, ok = c.NextUntil(tm, tm.Add(span), loc)
				if !want.IsZero() && (!ok || !got.Equal(want)) {
					t.Errorf("%q in %s: next(%v) = %v, %v; want %v", expr, loc, tm, got, ok, want)
				}
				if want.IsZero() && ok && got.Before(tm.Add(span)) {
					t.Errorf("%q in %s: next(%v) = %v, naive found nothing", expr, loc, tm, got)
				}
			}
		}
	}
}
