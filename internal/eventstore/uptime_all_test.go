package eventstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// TestUptimeAllAgreesWithUptime stores checks with very different histories
// (intervals from 10s to 1h, gaps, maintenance, flapping, results only
// before the range, latencies that vary) and checks that UptimeAll gives,
// for every range tried, exactly what Uptime gives check by check.
func TestUptimeAllAgreesWithUptime(t *testing.T) {
	now := at(3000 * time.Second)
	s := openTest(t, Options{Now: func() time.Time { return now }})
	rng := rand.New(rand.NewPCG(1, 2))
	withLatency := func(rows []ResultRow) []ResultRow {
		for i := range rows {
			rows[i].Duration = time.Duration(1+rng.IntN(500)) * time.Millisecond
		}
		return rows
	}
	seqs := []struct {
		name     string
		interval time.Duration
		evs      []ev
	}{
		{"all-up", time.Minute, every(-600, 2900, 60, up, true)},
		{"mixed", time.Minute, cat(every(-300, 120, 60, up, true), every(180, 240, 60, down, false),
			every(300, 540, 60, unrch, false), every(600, 900, 60, maint, false), every(960, 2000, 60, up, true))},
		{"gappy", time.Minute, cat(every(0, 60, 60, up, true), every(400, 580, 60, up, true), every(1500, 1700, 60, down, false))},
		{"flapping", 30 * time.Second, cat(every(0, 600, 60, flap, true), every(30, 630, 60, flap, false))},
		{"unknown", time.Minute, cat(every(0, 240, 60, unkn, false), every(300, 540, 60, up, true))},
		{"fast", 10 * time.Second, every(0, 1800, 60, up, true)},
		// The largest interval sets UptimeAll's lookback: the others'
		// results before their own lookback must not count.
		{"hourly", time.Hour, every(-7200, 2400, 3600, down, false)},
		{"only-before", time.Minute, every(-3000, -2000, 60, up, true)},
		{"straddles-now", time.Minute, every(2700, 3300, 60, up, true)},
	}
	for _, sq := range seqs {
		appendAndFlush(t, s, withLatency(rowsOf(sq.name, sq.interval, sq.evs)))
	}
	ranges := []struct{ from, to int }{
		{0, 600}, {-100, 3600}, {90, 210}, {1000, 1100}, {2000, 5000}, {-5000, -1000}, {3500, 4000},
	}
	ctx := context.Background()
	for _, rg := range ranges {
		from, to := at(time.Duration(rg.from)*time.Second), at(time.Duration(rg.to)*time.Second)
		all, err := s.UptimeAll(ctx, from, to)
		if err != nil {
			t.Fatalf("UptimeAll(%d, %d): %v", rg.from, rg.to, err)
		}
		if len(all) != len(seqs) {
			t.Errorf("UptimeAll(%d, %d): %d checks, want %d", rg.from, rg.to, len(all), len(seqs))
		}
		for _, sq := range seqs {
			want, err := s.Uptime(ctx, sq.name, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if got := all[sq.name]; !reflect.DeepEqual(got, want) {
				t.Errorf("[%d, %d) %s:\nUptimeAll %s\nUptime    %s", rg.from, rg.to, sq.name, fmtUptime(got), fmtUptime(want))
			}
		}
	}
}

func TestUptimeAllEmptyAndBadRange(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	all, err := s.UptimeAll(ctx, at(0), at(time.Hour))
	if err != nil || len(all) != 0 {
		t.Errorf("empty store: %v, %v", all, err)
	}
	for _, rg := range [][2]time.Time{{at(time.Hour), at(0)}, {at(0), at(0)}, {{}, at(0)}, {at(0), {}}} {
		_, err := s.UptimeAll(ctx, rg[0], rg[1])
		var fe *check.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("UptimeAll(%v, %v): %v, want a field error", rg[0], rg[1], err)
		}
	}
}

// BenchmarkUptimeAllDay measures UptimeAll over the day of 14.4M results
// of 10,000 checks that BenchmarkUptimeDay asks about one check at a time.
func BenchmarkUptimeAllDay(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		all, err := s.UptimeAll(ctx, benchDay, benchDay.Add(24*time.Hour))
		if err != nil || len(all) != benchChecks {
			b.Fatal(len(all), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
}
