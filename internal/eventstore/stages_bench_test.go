package eventstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/loadgen/loadgentest"
)

// The BenchmarkStage* benchmarks give the CPU an event costs in each stage
// of the server's write path on the traffic of the end-to-end benchmark:
// the load generator's stream through a real TCP syslog input. Detection's
// share is internal/detect's BenchmarkSigmaLoadgenStream. One op is the
// whole set of stageEvents (eight loader segments); cpu-µs/event is the
// process's CPU time (user + system, every thread, DuckDB's included) over
// the stage, divided by the events. docs/BENCHMARKS.md adds them up against
// what 100,000 events/s on 2 cores allows.
const stageEvents = 8 * DefaultLoadRows

var stageData struct {
	frames, evs sync.Once
	f           []byte
	e           []event.Event
}

// stageFrames is the stream's frames, built once per process.
func stageFrames(b *testing.B) []byte {
	b.Helper()
	stageData.frames.Do(func() { stageData.f = loadgentest.Frames(b, stageEvents) })
	return stageData.f
}

// stageEvs is the events the input makes of stageFrames, built once per
// process (and only by the benchmarks that need them: held in memory,
// they add to every later benchmark's garbage collection).
func stageEvs(b *testing.B) []event.Event {
	b.Helper()
	f := stageFrames(b)
	stageData.evs.Do(func() { stageData.e = loadgentest.Events(b, f, stageEvents) })
	if stageData.e == nil {
		b.Fatal("no events (an earlier benchmark failed to build them)")
	}
	return stageData.e
}

func reportStage(b *testing.B, cpu time.Duration, events int) {
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(events), "cpu-µs/event")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStageIngest: reading the TCP stream, octet framing, RFC 3164 /
// 5424 parsing and normalization, up to the batch handed to the sink.
func BenchmarkStageIngest(b *testing.B) {
	frames := stageFrames(b)
	var cpu time.Duration
	n := 0
	for b.Loop() {
		c0 := processCPU()
		loadgentest.Ingest(b, frames, stageEvents)
		cpu += processCPU() - c0
		n += stageEvents
	}
	reportStage(b, cpu, n)
}

// BenchmarkStageEncode: encoding the events as journal rows (done by the
// inputs' goroutines before the group commit).
func BenchmarkStageEncode(b *testing.B) {
	evs := stageEvs(b)
	var rb rowBuilder
	var buf []byte
	var err error
	var cpu time.Duration
	n := 0
	for b.Loop() {
		c0 := processCPU()
		for i := range evs {
			if buf, err = rb.encode(buf[:0], &evs[i], loadgentest.Start); err != nil {
				b.Fatal(err)
			}
		}
		cpu += processCPU() - c0
		n += len(evs)
	}
	reportStage(b, cpu, n)
}

// stageStore opens a store in a temporary directory whose loader waits
// until release is closed; with table it loads into the events table
// instead of event files.
func stageStore(b *testing.B, table bool) (s *Store, release chan struct{}) {
	b.Helper()
	release = make(chan struct{})
	s, err := Open(context.Background(), Options{
		Path:       filepath.Join(b.TempDir(), "events.duckdb"),
		tableOnly:  table,
		Now:        func() time.Time { return loadgentest.Start },
		beforeLoad: func() { <-release },
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, release
}

// journalStage appends evs in the ingest manager's batches of 1,000: each
// call is acknowledged once durable (encoding, group commit, fsync).
func journalStage(b *testing.B, s *Store, evs []event.Event) {
	b.Helper()
	for i := 0; i < len(evs); i += 1000 {
		if _, err := s.AppendEvents(context.Background(), evs[i:min(i+1000, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
}

// loadStage lets the loader store everything (one event file, or one
// 16,384-row DuckDB transaction, a segment, as in the server) and then
// checkpoints, so that DuckDB's deferred compression is counted too.
func loadStage(b *testing.B, s *Store, release chan struct{}) {
	b.Helper()
	ctx := context.Background()
	close(release)
	if n, err := s.EventCount(ctx); err != nil || n != stageEvents {
		b.Fatalf("EventCount = %d, %v; want %d", n, err, stageEvents)
	}
	if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStageJournal: AppendEvents until acknowledged (encoding
// included), the loader held back.
func BenchmarkStageJournal(b *testing.B) { storeStage(b, false, false) }

// BenchmarkStageLoad: the loader, from journaled records to stored rows.
// "files" writes a Parquet event file a segment (decoding, encoding,
// fsync); "table" appends them to the DuckDB events table, as stores did
// before event files: decoding, the Go appender and DuckDB's append,
// commit (its WAL) and checkpoint.
func BenchmarkStageLoad(b *testing.B) {
	b.Run("files", func(b *testing.B) { storeStage(b, true, false) })
	b.Run("table", func(b *testing.B) { storeStage(b, true, true) })
}

// storeStage runs the journal stage and then the load stage on a fresh
// store each op and measures the load stage if load, else the journal's.
func storeStage(b *testing.B, load, table bool) {
	evs := stageEvs(b)
	var (
		cpu   time.Duration
		n     int
		bytes int64
	)
	stage := func(measured bool, run func()) {
		if !measured {
			run()
			return
		}
		b.StartTimer()
		c0 := processCPU()
		run()
		cpu += processCPU() - c0
		b.StopTimer()
	}
	for b.Loop() {
		b.StopTimer()
		s, release := stageStore(b, table)
		stage(!load, func() { journalStage(b, s, evs) })
		stage(load, func() { loadStage(b, s, release) })
		_, fb := s.EventFiles()
		bytes += fb
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		n += len(evs)
		b.StartTimer()
	}
	reportStage(b, cpu, n)
	if load && !table {
		b.ReportMetric(float64(bytes)/float64(n), "file-bytes/event")
	}
}

// BenchmarkStageDuckDBFloor: DuckDB inserting the same rows, read from an
// in-memory table, into a table of the database file in 16,384-row
// transactions, and checkpointing: its own cost for these rows with no Go
// and no appender, a floor for the load stage as long as every event
// becomes a row of this table. The "…=null" sub-benchmarks insert the rows
// with that column NULL, which shows what the column costs; "parquet"
// writes each 16,384 rows to a Parquet file instead, and "memory" inserts
// them into an in-memory table (no compression, no WAL): what other
// layouts would cost DuckDB.
func BenchmarkStageDuckDBFloor(b *testing.B) {
	evs := stageEvs(b)
	ctx := context.Background()
	s, release := stageStore(b, true)
	journalStage(b, s, evs)
	loadStage(b, s, release)
	defer s.Close()
	// The source rows are held uncompressed in an in-memory database, one
	// table a transaction's rows, so reading them costs next to nothing.
	if _, err := s.db.ExecContext(ctx, `ATTACH ':memory:' AS stage`); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < stageEvents; lo += DefaultLoadRows {
		if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE stage.rows%d AS SELECT * FROM events WHERE id > %d AND id <= %d`, lo, lo, lo+DefaultLoadRows)); err != nil {
			b.Fatal(err)
		}
	}
	const rows = ` FROM stage.rows%[2]d`
	for _, v := range []struct {
		name string
		db   string // where the target table is made
		sql  string // %[1]s the target table, %[2]d the first row's offset, %[3]s a directory
	}{
		{"all", "main", `INSERT INTO %[1]s SELECT *` + rows},
		{"fields=null", "main", `INSERT INTO %[1]s SELECT * REPLACE (NULL AS fields)` + rows},
		{"message=null", "main", `INSERT INTO %[1]s SELECT * REPLACE (NULL AS message)` + rows},
		{"raw=null", "main", `INSERT INTO %[1]s SELECT * REPLACE (NULL AS raw)` + rows},
		{"parquet", "", `COPY (SELECT *` + rows + `) TO '%[3]s/%[2]d.parquet' (FORMAT parquet)`},
		{"memory", "stage", `INSERT INTO %[1]s SELECT *` + rows},
	} {
		b.Run(v.name, func(b *testing.B) {
			var cpu time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				table, out := v.db+".events_copy", b.TempDir()
				if v.db != "" {
					if _, err := s.db.ExecContext(ctx, `CREATE OR REPLACE TABLE `+table+` AS SELECT * FROM events LIMIT 0`); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				c0 := processCPU()
				for lo := 0; lo < stageEvents; lo += DefaultLoadRows {
					if _, err := s.db.ExecContext(ctx, fmt.Sprintf(v.sql, table, lo, out)); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
				n += stageEvents
			}
			reportStage(b, cpu, n)
		})
	}
}
