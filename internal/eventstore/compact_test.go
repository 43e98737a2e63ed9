package eventstore

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func tableCount(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot is everything the queries say about "web" over three hours.
type snapshot struct {
	Uptime  Uptime
	Changes []StateChange
	Results []ResultRow
}

func takeSnapshot(t *testing.T, s *Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var sn snapshot
	var err error
	if sn.Uptime, err = s.Uptime(ctx, "web", t0, at(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sn.Changes, err = s.StateChanges(ctx, "web", t0, at(3*time.Hour), 1000); err != nil {
		t.Fatal(err)
	}
	if sn.Results, err = s.Results(ctx, ResultFilter{Check: "web", Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	return sn
}

func TestCompactionKeepsAnswers(t *testing.T) {
	// The clock sits inside the data, so the writer's own compaction finds
	// nothing old enough and only the explicit calls below move rows.
	s := openTest(t, Options{Now: func() time.Time { return at(3 * time.Hour) }})
	ctx := context.Background()
	web := rowsOf("web", time.Minute, cat(
		every(0, 3000, 60, up, true), every(3060, 4000, 60, down, false), // an outage across the hour
		every(4500, 10740, 60, up, true)))
	// Interleaved in time, as results arrive.
	all := append(web, rowsOf("other", time.Minute, every(0, 10770, 30, down, false))...)
	slices.SortStableFunc(all, func(a, b ResultRow) int { return a.Time.Compare(b.Time) })
	appendAndFlush(t, s, all)
	before := takeSnapshot(t, s)
	total := tableCount(t, s, "check_results")

	moved, err := s.compact(ctx, at(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if archived := tableCount(t, s, "check_results_archive"); moved == 0 || int(moved) != archived {
		t.Errorf("compact moved %d rows, archive has %d", moved, archived)
	}
	var stillOld int
	if err := s.db.QueryRow(`SELECT count(*) FROM check_results_recent WHERE ts < make_timestamp($1)`,
		at(2*time.Hour).UnixMicro()).Scan(&stillOld); err != nil {
		t.Fatal(err)
	}
	if stillOld != 0 || tableCount(t, s, "check_results") != total {
		t.Errorf("after compaction: %d old rows left in recent, %d rows in all (want 0, %d)",
			stillOld, tableCount(t, s, "check_results"), total)
	}
	// Each hour is one run sorted by (check_id, ts) in storage order.
	var unsorted int
	if err := s.db.QueryRow(`
		SELECT count(*) FROM (
			SELECT check_id, ts, date_trunc('hour', ts) AS h,
				lag(check_id) OVER (ORDER BY rowid) AS pc, lag(ts) OVER (ORDER BY rowid) AS pt,
				lag(date_trunc('hour', ts)) OVER (ORDER BY rowid) AS ph
			FROM check_results_archive)
		WHERE h = ph AND (check_id < pc OR (check_id = pc AND ts < pt))`).Scan(&unsorted); err != nil {
		t.Fatal(err)
	}
	if unsorted != 0 {
		t.Errorf("%d archive rows out of (check_id, ts) order within their hour", unsorted)
	}
	if after := takeSnapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("answers changed by compaction:\nbefore %+v\nafter  %+v", before.Uptime, after.Uptime)
	}

	// A late result for an archived hour lands in recent and is found, and
	// the next compaction archives it too.
	late := rowsOf("web", time.Minute, []ev{{4200, down, false}})
	appendAndFlush(t, s, late)
	got, err := s.Results(ctx, ResultFilter{Check: "web", From: at(4200 * time.Second), To: at(4201 * time.Second)})
	if err != nil || len(got) != 1 {
		t.Fatalf("late row: %v, %v", got, err)
	}
	if _, err := s.compact(ctx, at(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := tableCount(t, s, "check_results_archive"); n != int(moved)+1 {
		t.Errorf("archive has %d rows after the late one, want %d", n, moved+1)
	}
}

func TestWriterCompactsOnItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.Context(), Options{FlushEvery: time.Second,
			Now: func() time.Time { return at(2*time.Hour + 10*time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		appendAndFlush(t, s, rowsOf("web", time.Minute, every(0, 7800, 60, up, true)))
		time.Sleep(time.Second) // fake time: one writer tick
		synctest.Wait()
		// Hours 0 and 1 are older than the cutoff (2h10m − 5m grace → 2h).
		if n := tableCount(t, s, "check_results_archive"); n != 120 {
			t.Errorf("archive has %d rows, want 120", n)
		}
		if n := tableCount(t, s, "check_results_recent"); n != 11 {
			t.Errorf("recent has %d rows, want 11", n)
		}
	})
}
