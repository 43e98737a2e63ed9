package eventstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// benchLayout names the schema and generator of the cached benchmark data
// set; bump it whenever either changes so stale files are not reused.
const benchLayout = "v3-hourly-sorted"

const (
	benchChecks  = 10000
	benchPerDay  = 1440 // one result per check per minute
	benchDayFrom = "2025-01-01 00:00:00"
)

// benchDay is the day the generated results cover.
var benchDay = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// benchStore opens the cached day of 14.4M results, generating it with SQL
// the first time (about a minute on two cores).
func benchStore(b *testing.B) *Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), "nocsoc-eventstore-bench-"+benchLayout+".duckdb")
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".tmp"
		os.Remove(tmp)
		os.Remove(tmp + ".wal")
		start := time.Now()
		// The clock stays at the day's start so the writer does not compact on its own.
		s, err := Open(ctx, Options{Path: tmp, MemoryLimit: "2GB", Now: func() time.Time { return benchDay }})
		if err != nil {
			b.Fatal(err)
		}
		// Rows arrive in time order as the scheduler would write them: each
		// minute every check once, staggered by 6ms. About 1% fail; a
		// few checks are in maintenance for an hour.
		gen := fmt.Sprintf(`
			INSERT INTO check_names SELECT i + 1, 'check-' || (i + 1), 60000000000 FROM range(%[1]d) t(i);
			INSERT INTO check_results_recent
			SELECT TIMESTAMP '%[3]s' + to_microseconds(m * 60000000 + c * 6000),
				c + 1,
				NOT failed,
				CASE WHEN c %% 1000 = 7 AND m BETWEEN 600 AND 659 THEN 'maintenance'
					WHEN failed THEN 'down' ELSE 'up' END,
				'',
				1000000 + h %% 200000000,
				CASE WHEN failed THEN 'connection refused' ELSE '' END,
				CASE WHEN failed THEN 0 ELSE 200 END,
				'',
				60000000000
			FROM (SELECT i // %[1]d AS m, i %% %[1]d AS c, hash(i) AS h, hash(i) %% 100 = 0 AS failed
				FROM range(%[1]d * %[2]d) t(i));`, benchChecks, benchPerDay, benchDayFrom)
		if _, err := s.db.ExecContext(ctx, gen); err != nil {
			s.Close()
			b.Fatal(err)
		}
		// What the writer would have done hour by hour during the day. The
		// last hour stays in append order, as it would be just before the
		// next compaction: the worst case for queries.
		if _, err := s.compact(ctx, benchDay.Add(23*time.Hour)); err != nil {
			s.Close()
			b.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
			s.Close()
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	}
	s, err := Open(ctx, Options{Path: path, Now: func() time.Time { return benchDay.Add(48 * time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkUptimeDay measures the uptime query for one check over a day of
// 14.4M stored results (10,000 checks × 1,440).
func BenchmarkUptimeDay(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	name := "check-5008" // one with an hour of maintenance
	u, err := s.Uptime(ctx, name, benchDay, benchDay.Add(24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	if u.Results != benchPerDay || u.Maintenance != time.Hour {
		b.Fatalf("unexpected uptime %s", fmtUptime(u))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Uptime(ctx, name, benchDay, benchDay.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
}

// BenchmarkStateChangesDay measures StateChanges for one check over the day.
func BenchmarkStateChangesDay(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.StateChanges(ctx, "check-5008", benchDay, benchDay.Add(24*time.Hour), 100); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
}

// BenchmarkResultsPage measures the newest page of one check's results.
func BenchmarkResultsPage(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		rows, err := s.Results(ctx, ResultFilter{Check: "check-5008", From: benchDay, To: benchDay.Add(24 * time.Hour), Limit: 100})
		if err != nil || len(rows) != 100 {
			b.Fatal(len(rows), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
}

// BenchmarkAppendResults measures throughput through AppendResults into a
// file, including the final Flush, in calls of 100 rows.
func BenchmarkAppendResults(b *testing.B) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "events.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const perCall = 100
	batch := make([]ResultRow, perCall)
	names := make([]string, benchChecks)
	for i := range names {
		names[i] = fmt.Sprintf("check-%d", i)
	}
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = ResultRow{Time: benchDay.Add(time.Duration(n) * time.Millisecond),
				Check: names[n%benchChecks], OK: n%100 != 0, State: check.StateUp,
				Duration: time.Duration(n%5000) * time.Microsecond, StatusCode: 200, Interval: time.Minute}
			n++
		}
		if err := s.AppendResults(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
