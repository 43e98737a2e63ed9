package eventstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

const (
	up    = check.StateUp
	down  = check.StateDown
	unrch = check.StateUnreachable
	flap  = check.StateFlapping
	maint = check.StateMaintenance
	unkn  = check.StateUnknown
)

// ev is one result in a hand-made sequence: seconds after t0, state, OK.
type ev struct {
	sec   int
	state check.State
	ok    bool
}

// every makes results at from, from+step, … up to and including to.
func every(from, to, step int, state check.State, ok bool) []ev {
	var out []ev
	for s := from; s <= to; s += step {
		out = append(out, ev{s, state, ok})
	}
	return out
}

func cat(parts ...[]ev) []ev {
	var out []ev
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func rowsOf(name string, interval time.Duration, evs []ev) []ResultRow {
	rows := make([]ResultRow, len(evs))
	for i, e := range evs {
		rows[i] = ResultRow{Time: at(time.Duration(e.sec) * time.Second), Check: name, OK: e.ok, State: e.state,
			Duration: 10 * time.Millisecond, Interval: interval}
	}
	return rows
}

func appendAndFlush(t *testing.T, s *Store, rows []ResultRow) {
	t.Helper()
	if err := s.AppendResults(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func ratio(f float64) *float64 { return &f }

func TestUptime(t *testing.T) {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	tests := []struct {
		name     string
		interval time.Duration
		evs      []ev
		from, to int // seconds after t0; both zero means [0, 600)
		now      int // seconds after t0; zero means far in the future
		want     Uptime
	}{
		{
			name: "all up", interval: time.Minute, evs: every(0, 540, 60, up, true),
			want: Uptime{Up: sec(600), Ratio: ratio(1), Results: 10},
		},
		{
			name: "up down mix", interval: time.Minute,
			evs:  cat(every(0, 120, 60, up, true), every(180, 240, 60, down, false), every(300, 540, 60, up, true)),
			want: Uptime{Up: sec(480), Down: sec(120), Ratio: ratio(0.8), Results: 10, Failures: 2},
		},
		{
			name: "unreachable counts as down", interval: time.Minute,
			evs:  cat(every(0, 240, 60, up, true), every(300, 540, 60, unrch, false)),
			want: Uptime{Up: sec(300), Down: sec(300), Ratio: ratio(0.5), Results: 10, Failures: 5},
		},
		{
			// 60s interval: the cap is 95s. 60→155 is covered, 155→400 is not.
			name: "gap longer than the cap is unknown", interval: time.Minute,
			evs:  cat(every(0, 60, 60, up, true), every(400, 580, 60, up, true)),
			want: Uptime{Up: sec(60 + 95 + 200), Unknown: sec(245), Ratio: ratio(1), Results: 6},
		},
		{
			name: "maintenance excluded from the ratio", interval: time.Minute,
			evs:  cat(every(0, 120, 60, up, true), every(180, 240, 60, maint, false), every(300, 540, 60, up, true)),
			want: Uptime{Up: sec(480), Maintenance: sec(120), Ratio: ratio(1), Results: 10, Failures: 2},
		},
		{
			// The down result at -30s covers until the next result at 60s
			// (its cap would allow 65s): 60s of it fall inside the range.
			name: "result before from overlaps", interval: time.Minute,
			evs:  cat([]ev{{-30, down, false}}, every(60, 540, 60, up, true)),
			want: Uptime{Up: sec(540), Down: sec(60), Ratio: ratio(0.9), Results: 9},
		},
		{
			// Its coverage ends at -200+95 = -105s, before the range.
			name: "result long before from does not reach", interval: time.Minute,
			evs:  cat([]ev{{-200, down, false}}, every(60, 540, 60, up, true)),
			want: Uptime{Up: sec(540), Unknown: sec(60), Ratio: ratio(1), Results: 9},
		},
		{
			name: "flapping follows each result's OK", interval: time.Minute,
			evs:  cat([]ev{{0, flap, true}, {60, flap, false}, {120, flap, true}}, every(180, 540, 60, up, true)),
			want: Uptime{Up: sec(540), Down: sec(60), Ratio: ratio(0.9), Results: 10, Failures: 1},
		},
		{
			name: "unknown state is unknown time", interval: time.Minute,
			evs:  cat(every(0, 240, 60, unkn, false), every(300, 540, 60, up, true)),
			want: Uptime{Up: sec(300), Unknown: sec(300), Ratio: ratio(1), Results: 10, Failures: 5},
		},
		{
			name: "last result covers up to its cap", interval: time.Minute, evs: every(0, 240, 60, up, true),
			want: Uptime{Up: sec(240 + 95), Unknown: sec(600 - 335), Ratio: ratio(1), Results: 5},
		},
		{
			name: "open end clipped to now", interval: time.Minute, evs: every(0, 240, 60, up, true), now: 270,
			want: Uptime{Up: sec(270), Ratio: ratio(1), Results: 5},
		},
		{
			// Each result's own interval sets its cap: 10s → 20s.
			name: "cap from the result's interval", interval: 10 * time.Second, evs: every(0, 540, 60, up, true),
			want: Uptime{Up: sec(10 * 20), Unknown: sec(400), Ratio: ratio(1), Results: 10},
		},
		{
			name: "sub-range", interval: time.Minute, evs: every(0, 540, 60, down, false), from: 90, to: 210,
			want: Uptime{Down: sec(120), Ratio: ratio(0), Results: 2, Failures: 2},
		},
		{
			name: "no results", interval: time.Minute, evs: nil,
			want: Uptime{Unknown: sec(600)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(365 * 24 * time.Hour)
			if tt.now != 0 {
				now = at(sec(tt.now))
			}
			s := openTest(t, Options{Path: ":memory:", Now: func() time.Time { return now }})
			// A neighbour check whose results must not leak into the figures.
			appendAndFlush(t, s, rowsOf("other", time.Minute, every(-600, 1200, 30, down, false)))
			if len(tt.evs) > 0 {
				appendAndFlush(t, s, rowsOf("web", tt.interval, tt.evs))
			}
			from, to := at(0), at(sec(600))
			if tt.from != 0 || tt.to != 0 {
				from, to = at(sec(tt.from)), at(sec(tt.to))
			}
			got, err := s.Uptime(context.Background(), "web", from, to)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Check, want.From, want.To = "web", from, to
			if want.Results > 0 {
				want.LatencyP50, want.LatencyP95, want.LatencyP99 = 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Uptime =\n%s\nwant\n%s", fmtUptime(got), fmtUptime(want))
			}
			end := to
			if now.Before(end) {
				end = now
			}
			if sum := got.Up + got.Down + got.Maintenance + got.Unknown; sum != end.Sub(from) {
				t.Errorf("durations sum to %s, want %s", sum, end.Sub(from))
			}
		})
	}
}

func fmtUptime(u Uptime) string {
	r := "nil"
	if u.Ratio != nil {
		r = fmt.Sprint(*u.Ratio)
	}
	return fmt.Sprintf("up=%s down=%s maint=%s unknown=%s ratio=%s results=%d failures=%d p50=%s p95=%s p99=%s",
		u.Up, u.Down, u.Maintenance, u.Unknown, r, u.Results, u.Failures, u.LatencyP50, u.LatencyP95, u.LatencyP99)
}

func TestUptimeLatency(t *testing.T) {
	s := openTest(t, Options{})
	var rows []ResultRow
	// 100 up results taking 1..100 ms, in shuffled order of time.
	for i := range 100 {
		ms := (i*37)%100 + 1
		rows = append(rows, ResultRow{Time: at(time.Duration(i) * time.Minute), Check: "web", OK: true, State: up,
			Duration: time.Duration(ms) * time.Millisecond, Interval: time.Minute})
	}
	// Slow results in maintenance do not count.
	for i := range 20 {
		rows = append(rows, ResultRow{Time: at(time.Duration(100+i) * time.Minute), Check: "web", OK: false,
			State: maint, Duration: time.Hour, Interval: time.Minute})
	}
	appendAndFlush(t, s, rows)
	got, err := s.Uptime(context.Background(), "web", t0, at(120*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Nearest rank: the smallest value with at least q of the values at or below it.
	if got.LatencyP50 != 50*time.Millisecond || got.LatencyP95 != 95*time.Millisecond || got.LatencyP99 != 99*time.Millisecond {
		t.Errorf("p50/p95/p99 = %s/%s/%s, want 50ms/95ms/99ms", got.LatencyP50, got.LatencyP95, got.LatencyP99)
	}
	if got.Results != 120 || got.Failures != 20 {
		t.Errorf("results/failures = %d/%d, want 120/20", got.Results, got.Failures)
	}
}

func TestUptimeRejectsBadInput(t *testing.T) {
	s := openTest(t, Options{})
	tests := []struct {
		name     string
		check    string
		from, to time.Time
		field    string
	}{
		{"no check", "", t0, at(time.Hour), "check"},
		{"no from", "web", time.Time{}, at(time.Hour), "from"},
		{"no to", "web", t0, time.Time{}, "to"},
		{"to before from", "web", at(time.Hour), t0, "to"},
		{"empty range", "web", t0, t0, "to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *check.FieldError
			_, err := s.Uptime(context.Background(), tt.check, tt.from, tt.to)
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Uptime: %v, want a FieldError for %s", err, tt.field)
			}
			_, err = s.StateChanges(context.Background(), tt.check, tt.from, tt.to, 0)
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("StateChanges: %v, want a FieldError for %s", err, tt.field)
			}
		})
	}
}

func TestStateChanges(t *testing.T) {
	s := openTest(t, Options{})
	// 60s interval, so a result's cap is 95s.
	evs := []ev{{0, up, true}, {60, up, true}, {120, down, false}, {180, down, false}, {240, up, true},
		// gap: coverage of 240 ends at 335
		{500, up, true}, {560, flap, false}}
	appendAndFlush(t, s, rowsOf("web", time.Minute, evs))
	appendAndFlush(t, s, rowsOf("other", time.Minute, every(0, 600, 30, down, false)))

	chg := func(sec int, from, to check.State) StateChange {
		return StateChange{Time: at(time.Duration(sec) * time.Second), From: from, To: to}
	}
	tests := []struct {
		name     string
		from, to int
		limit    int
		want     []StateChange
	}{
		{"whole range", 0, 600, 0, []StateChange{
			chg(560, up, flap), chg(500, unkn, up), chg(335, up, unkn), chg(240, down, up), chg(120, up, down), chg(0, unkn, up),
		}},
		{"limit keeps the newest", 0, 600, 2, []StateChange{chg(560, up, flap), chg(500, unkn, up)}},
		{"result before from gives the previous state", 100, 600, 0, []StateChange{
			chg(560, up, flap), chg(500, unkn, up), chg(335, up, unkn), chg(240, down, up), chg(120, up, down),
		}},
		{"coverage expiring inside the range", 300, 520, 0, []StateChange{chg(500, unkn, up), chg(335, up, unkn)}},
		{"coverage of the last result expires", 0, 700, 1, []StateChange{chg(655, flap, unkn)}},
		{"no change in range", 130, 230, 0, []StateChange{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.StateChanges(context.Background(), "web", at(time.Duration(tt.from)*time.Second),
				at(time.Duration(tt.to)*time.Second), tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StateChanges =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	if got, err := s.StateChanges(context.Background(), "nope", t0, at(time.Hour), 0); err != nil || len(got) != 0 {
		t.Errorf("unknown check: %v, %v; want no changes", got, err)
	}
	if _, err := s.StateChanges(context.Background(), "web", t0, at(time.Hour), -1); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestResults(t *testing.T) {
	s := openTest(t, Options{})
	var rows []ResultRow
	for i := range 5 {
		for _, name := range []string{"a", "b"} {
			r := ResultRow{
				Time:     at(time.Duration(i)*time.Minute + 123456789*time.Nanosecond).Truncate(time.Microsecond),
				Check:    name,
				OK:       i != 2,
				State:    up,
				Duration: time.Duration(i+1) * time.Millisecond, Interval: time.Minute,
				StatusCode: 200, Detail: fmt.Sprintf("%s-%d", name, i),
			}
			if !r.OK {
				r.State, r.Error, r.StatusCode, r.RootCause = unrch, "connection refused", 0, "router"
			}
			rows = append(rows, r)
		}
	}
	appendAndFlush(t, s, rows)
	ab := func(idx ...int) []ResultRow { // rows by index into rows
		out := []ResultRow{}
		for _, i := range idx {
			out = append(out, rows[i])
		}
		return out
	}
	// rows: index 2i is a at minute i, 2i+1 is b at minute i.
	tests := []struct {
		name string
		f    ResultFilter
		want []ResultRow
	}{
		{"one check newest first", ResultFilter{Check: "a"}, ab(8, 6, 4, 2, 0)},
		{"limit", ResultFilter{Check: "b", Limit: 2}, ab(9, 7)},
		{"before pages", ResultFilter{Check: "a", Limit: 2, Before: rows[6].Time}, ab(4, 2)},
		{"range", ResultFilter{Check: "a", From: rows[2].Time, To: rows[6].Time}, ab(4, 2)},
		{"only failures", ResultFilter{Check: "b", OnlyFailures: true}, ab(5)},
		{"all checks failures", ResultFilter{OnlyFailures: true}, nil},
		{"unknown check", ResultFilter{Check: "zzz"}, ab()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Results(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil { // order between checks at one instant is unspecified
				if len(got) != 2 || got[0].OK || got[1].OK || !got[0].Time.Equal(rows[4].Time) {
					t.Errorf("got %+v, want the two failures at minute 2", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Results =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}

	bad := []struct {
		f     ResultFilter
		field string
	}{
		{ResultFilter{Limit: -1}, "Limit"},
		{ResultFilter{Limit: MaxLimit + 1}, "Limit"},
		{ResultFilter{From: at(time.Hour), To: t0}, "To"},
	}
	for _, b := range bad {
		var fe *check.FieldError
		if _, err := s.Results(context.Background(), b.f); !errors.As(err, &fe) || fe.Field != b.field {
			t.Errorf("Results(%+v): %v, want a FieldError for %s", b.f, err, b.field)
		}
	}
}
