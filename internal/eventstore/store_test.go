package eventstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// t0 is the start of every hand-made sequence.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func openTest(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "events.duckdb")
	}
	if o.Now == nil {
		// Far after every sequence, so the open end is to.
		o.Now = func() time.Time { return t0.Add(365 * 24 * time.Hour) }
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM check_results`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenSettingsAndMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	for range 2 { // the second open must find the schema current
		s := openTest(t, Options{Path: path, Threads: 1, MemoryLimit: "300MB"})
		var threads int
		var mem, ckpt string
		if err := s.db.QueryRow(`SELECT current_setting('threads'), current_setting('memory_limit'), current_setting('checkpoint_threshold')`).Scan(&threads, &mem, &ckpt); err != nil {
			t.Fatal(err)
		}
		if ckpt != "122.0 MiB" { // the default, 128MB, in DuckDB's units
			t.Errorf("checkpoint_threshold = %q, want 128MB", ckpt)
		}
		if threads != 1 {
			t.Errorf("threads = %d, want 1", threads)
		}
		// DuckDB reports the limit in its own units (300MB → "286.1 MiB").
		if mem != "286.1 MiB" {
			t.Errorf("memory_limit = %q, want about 300MB", mem)
		}
		var versions, maxV int
		if err := s.db.QueryRow(`SELECT count(*), max(version) FROM schema_version`).Scan(&versions, &maxV); err != nil {
			t.Fatal(err)
		}
		if versions != len(migrations()) || maxV != len(migrations()) {
			t.Errorf("schema_version has %d rows, max %d; want %d", versions, maxV, len(migrations()))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		field string
	}{
		{"path with query", Options{Path: "/tmp/x.duckdb?threads=64"}, "Path"},
		{"memory limit", Options{MemoryLimit: "lots"}, "MemoryLimit"},
		{"memory limit injection", Options{MemoryLimit: "1GB&threads=64"}, "MemoryLimit"},
		{"checkpoint threshold", Options{CheckpointThreshold: "often"}, "CheckpointThreshold"},
		{"checkpoint threshold injection", Options{CheckpointThreshold: "1GB&threads=64"}, "CheckpointThreshold"},
		{"threads", Options{Threads: -1}, "Threads"},
		{"batch", Options{BatchSize: -5}, "BatchSize"},
		{"flush", Options{FlushEvery: -time.Second}, "FlushEvery"},
		{"queue", Options{QueueSize: -1}, "QueueSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestAppendRejectsBadRows(t *testing.T) {
	s := openTest(t, Options{})
	good := ResultRow{Time: t0, Check: "web", OK: true, State: check.StateUp, Interval: time.Minute}
	tests := []struct {
		name  string
		bad   func(r *ResultRow)
		field string
	}{
		{"no check", func(r *ResultRow) { r.Check = "" }, "rows[1].Check"},
		{"no time", func(r *ResultRow) { r.Time = time.Time{} }, "rows[1].Time"},
		{"bad state", func(r *ResultRow) { r.State = "sideways" }, "rows[1].State"},
		{"no interval", func(r *ResultRow) { r.Interval = 0 }, "rows[1].Interval"},
		{"negative duration", func(r *ResultRow) { r.Duration = -1 }, "rows[1].Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good
			tt.bad(&bad)
			err := s.AppendResults(context.Background(), good, bad)
			var fe *check.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.field)
			}
			if d := s.QueueDepth(); d != 0 {
				t.Errorf("QueueDepth = %d after a rejected call, want 0", d)
			}
		})
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s); n != 0 {
		t.Errorf("%d rows stored after rejected calls, want 0", n)
	}
}

func TestCloseFlushesQueuedRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	// A batch size and flush period that never trigger: only Close writes.
	s := openTest(t, Options{Path: path, BatchSize: 1 << 20, FlushEvery: time.Hour})
	const n = 1234
	rows := make([]ResultRow, n)
	for i := range rows {
		rows[i] = ResultRow{Time: at(time.Duration(i) * time.Second), Check: "web", OK: true,
			State: check.StateUp, Interval: time.Second}
	}
	if err := s.AppendResults(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	if d := s.QueueDepth(); d != n {
		t.Errorf("QueueDepth = %d before Close, want %d", d, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendResults(context.Background(), rows[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendResults after Close: %v, want ErrClosed", err)
	}

	s2 := openTest(t, Options{Path: path})
	if got := countRows(t, s2); got != n {
		t.Errorf("after reopen %d rows, want %d", got, n)
	}
	got, err := s2.Results(context.Background(), ResultFilter{Check: "web", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Time.Equal(rows[n-1].Time) {
		t.Errorf("newest after reopen = %+v, want time %v", got, rows[n-1].Time)
	}
}

func TestBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.Context(), Options{QueueSize: 2, BatchSize: 100, FlushEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		row := ResultRow{Time: t0, Check: "web", OK: true, State: check.StateUp, Interval: time.Minute}
		if err := s.AppendResults(t.Context(), row, row); err != nil {
			t.Fatal(err)
		}

		// The queue is full: a canceled wait returns an error, queues nothing.
		ctx, cancel := context.WithCancel(t.Context())
		var cancelErr error
		doneCancel := make(chan struct{})
		go func() {
			defer close(doneCancel)
			cancelErr = s.AppendResults(ctx, row)
		}()
		synctest.Wait()
		select {
		case <-doneCancel:
			t.Fatal("AppendResults returned while the queue was full")
		default:
		}
		cancel()
		<-doneCancel
		if !errors.Is(cancelErr, context.Canceled) {
			t.Errorf("canceled AppendResults: %v, want context.Canceled", cancelErr)
		}
		if d := s.QueueDepth(); d != 2 {
			t.Errorf("QueueDepth = %d, want 2", d)
		}

		// A blocked append proceeds once the writer makes room.
		var appended atomic.Bool
		doneAppend := make(chan error, 1)
		go func() {
			err := s.AppendResults(t.Context(), row, row, row)
			appended.Store(true)
			doneAppend <- err
		}()
		synctest.Wait()
		if appended.Load() {
			t.Fatal("AppendResults of 3 rows into a full queue of 2 did not block")
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-doneAppend; err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, s); n != 5 {
			t.Errorf("%d rows stored, want 5", n)
		}
	})
}

func TestFlushEveryWritesPartialBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var written atomic.Int64
		s, err := Open(t.Context(), Options{BatchSize: 1000, FlushEvery: 5 * time.Second,
			OnWrite: func(rows int, _ time.Duration) { written.Add(int64(rows)) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		row := ResultRow{Time: t0, Check: "web", OK: true, State: check.StateUp, Interval: time.Minute}
		if err := s.AppendResults(t.Context(), row, row, row); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second) // fake time inside the bubble
		synctest.Wait()
		if w := written.Load(); w != 0 {
			t.Fatalf("%d rows written before FlushEvery elapsed, want 0", w)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if w := written.Load(); w != 3 {
			t.Fatalf("%d rows written after FlushEvery, want 3", w)
		}
		if d := s.QueueDepth(); d != 0 {
			t.Errorf("QueueDepth = %d, want 0", d)
		}
	})
}

func TestConcurrentAppenders(t *testing.T) {
	var written atomic.Int64
	s := openTest(t, Options{BatchSize: 64, QueueSize: 200,
		OnWrite: func(rows int, _ time.Duration) { written.Add(int64(rows)) }})
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := []string{"a", "b", "c", "d"}[w%4]
			for i := range per {
				r := ResultRow{Time: at(time.Duration(w*per+i) * time.Millisecond), Check: name,
					OK: i%7 != 0, State: check.StateUp, Interval: time.Minute}
				if err := s.AppendResults(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					if err := s.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s); n != workers*per {
		t.Errorf("%d rows stored, want %d", n, workers*per)
	}
	if w := written.Load(); w != workers*per {
		t.Errorf("OnWrite saw %d rows, want %d", w, workers*per)
	}
	var names int
	if err := s.db.QueryRow(`SELECT count(*) FROM check_names`).Scan(&names); err != nil {
		t.Fatal(err)
	}
	if names != 4 {
		t.Errorf("%d check names, want 4", names)
	}
}

func TestWriteFailureReachesFlushAndClose(t *testing.T) {
	s := openTest(t, Options{})
	// Break the table under the writer: the next batch cannot be appended.
	if _, err := s.db.Exec(`DROP VIEW check_results; DROP TABLE check_results_recent`); err != nil {
		t.Fatal(err)
	}
	row := ResultRow{Time: t0, Check: "web", OK: true, State: check.StateUp, Interval: time.Minute}
	if err := s.AppendResults(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Error("Flush succeeded although the batch could not be written")
	}
	// A later Flush with nothing new is not blamed for the old failure.
	if err := s.Flush(context.Background()); err != nil {
		t.Errorf("second Flush: %v", err)
	}
	if err := s.Close(); err == nil {
		t.Error("Close did not report the lost batch")
	}
}
