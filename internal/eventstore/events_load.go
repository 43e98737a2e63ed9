package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Defaults of the event loader (journal.go explains the design).
const (
	// DefaultLoadRows is the chunk the loader gathers. A full DuckDB row
	// group (122,880) would be written compressed straight to the file,
	// but measured over 2 GB RSS under load; 16,384 kept the server under
	// 1 GB at the same throughput (docs/BENCHMARKS.md).
	DefaultLoadRows = 16384
	// DefaultLoadEvery bounds how long an acknowledged event waits in the
	// journal before the loader moves it into DuckDB when fewer than
	// LoadRows are pending (reads load pending rows at once anyway).
	DefaultLoadEvery = 2 * time.Second
)

// loadState is the loader's side of eventWriter; guarded by eventWriter.lmu.
type loadState struct {
	// unloaded holds the rows committed to the journal and not yet to
	// DuckDB, in id order; retry holds a chunk whose load failed, to be
	// loaded before them.
	unloaded [][]driver.Value
	retry    [][]driver.Value
	// retrySegs are the journal segments to delete once retry is loaded.
	retrySegs []uint64
	firstAt   time.Time // when the oldest unloaded row was committed
	lastID    uint64    // newest committed id
	loadedID  uint64    // newest id loaded into DuckDB
	wantID    uint64    // a reader waits for rows up to this id
	loadErr   error     // the last load's error, nil after a success
	changed   chan struct{}
	stopping  bool
}

// pendingRows is the number of rows acknowledged but not yet in DuckDB.
func (s *Store) pendingRows() int {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	return len(s.ev.ld.unloaded) + len(s.ev.ld.retry)
}

// UnloadedEvents is the number of acknowledged events (durable in the
// journal) that the loader has not yet moved into DuckDB.
func (s *Store) UnloadedEvents() int { return s.pendingRows() }

// committed hands the rows of a journal commit to the loader; the caller
// holds commitMu.
func (s *Store) committed(rows [][]driver.Value, lastID uint64) {
	s.ev.lmu.Lock()
	ld := &s.ev.ld
	if len(ld.unloaded) == 0 {
		ld.firstAt = time.Now()
	}
	ld.unloaded = append(ld.unloaded, rows...)
	ld.lastID = lastID
	full := len(ld.unloaded) >= s.o.LoadRows
	s.ev.lmu.Unlock()
	if full {
		s.kickLoader()
	}
}

func (s *Store) kickLoader() {
	select {
	case s.ev.kick <- struct{}{}:
	default:
	}
}

// waitLoaded returns once every row committed before the call is in
// DuckDB, asking the loader to load now; with backlog > 0 it only waits
// until at most backlog rows are pending (back-pressure on writers).
func (s *Store) waitLoaded(ctx context.Context, backlog int) error {
	s.ev.lmu.Lock()
	target := s.ev.ld.lastID
	if backlog == 0 {
		s.ev.ld.wantID = max(s.ev.ld.wantID, target)
	}
	s.ev.lmu.Unlock()
	s.kickLoader()
	for {
		s.ev.lmu.Lock()
		ld := &s.ev.ld
		pending := len(ld.unloaded) + len(ld.retry)
		done := ld.loadedID >= target
		if backlog > 0 {
			done = pending <= backlog
		}
		if done {
			s.ev.lmu.Unlock()
			return nil
		}
		if ld.stopping {
			s.ev.lmu.Unlock()
			return ErrClosed
		}
		err, ch := ld.loadErr, ld.changed
		s.ev.lmu.Unlock()
		if err != nil && backlog == 0 {
			return fmt.Errorf("load journaled events: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncEvents makes every acknowledged event visible to queries of the
// events table; reads call it first. It costs one lock when nothing is
// pending.
func (s *Store) syncEvents(ctx context.Context) error {
	s.ev.lmu.Lock()
	idle := s.ev.ld.loadedID >= s.ev.ld.lastID
	s.ev.lmu.Unlock()
	if idle {
		return nil
	}
	return s.waitLoaded(ctx, 0)
}

// runLoader moves journaled rows into DuckDB: when LoadRows are pending,
// when the oldest has waited LoadEvery, when a reader asks, and at Close.
func (s *Store) runLoader() {
	defer close(s.ev.loaderDone)
	tick := time.NewTicker(max(s.o.LoadEvery/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		var stop bool
		select {
		case <-s.ev.kick:
		case <-tick.C:
		case <-s.ev.stop:
			stop = true
		}
		for s.loadDue(stop) {
			if err := s.loadOnce(); err != nil {
				if stop {
					// Close: the rows stay in the journal and are loaded
					// at the next Open.
					s.log.Error("loading journaled events at close failed; they are loaded at the next start", "err", err)
					break
				}
				s.log.Error("loading journaled events into the event store failed; retrying", "err", err)
				break
			}
		}
		if stop {
			s.ev.lmu.Lock()
			s.ev.ld.stopping = true
			close(s.ev.ld.changed)
			s.ev.ld.changed = make(chan struct{})
			s.ev.lmu.Unlock()
			return
		}
	}
}

// loadDue says whether a load should run now.
func (s *Store) loadDue(stop bool) bool {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	ld := &s.ev.ld
	n := len(ld.unloaded) + len(ld.retry)
	switch {
	case n == 0:
		return false
	case stop, n >= s.o.LoadRows, ld.wantID > ld.loadedID:
		return true
	}
	return time.Since(ld.firstAt) >= s.o.LoadEvery
}

// loadOnce takes every pending row, starting a new journal segment at the
// same point, and appends them to DuckDB in one transaction; once that
// has committed their segments are deleted.
func (s *Store) loadOnce() error {
	s.ev.commitMu.Lock()
	s.ev.lmu.Lock()
	ld := &s.ev.ld
	rows, segs := ld.retry, ld.retrySegs
	if len(ld.unloaded) > 0 {
		old, err := s.ev.jn.rotate()
		if err != nil {
			s.ev.lmu.Unlock()
			s.ev.commitMu.Unlock()
			return err
		}
		rows = append(rows, ld.unloaded...)
		segs = append(segs, old)
	}
	ld.retry, ld.retrySegs, ld.unloaded = nil, nil, nil
	s.ev.lmu.Unlock()
	s.ev.commitMu.Unlock()

	var err error
	if len(rows) > 0 {
		start := time.Now()
		err = appendRows(context.Background(), s.ev.lconn, rows)
		if err == nil && s.o.OnLoad != nil {
			s.o.OnLoad(len(rows), time.Since(start))
		}
	}

	if err == nil {
		// Committed in DuckDB: their segments are no longer needed. Deleted
		// before the rows count as loaded, so a reader that saw them loaded
		// also sees the journal without them.
		for _, seq := range segs {
			if rerr := removeSegment(s.ev.jn.dir, seq); rerr != nil {
				s.log.Warn("could not delete a loaded journal segment; its rows are skipped when replayed", "err", rerr)
			}
		}
	}
	s.ev.lmu.Lock()
	if err != nil {
		// Keep them, first in line, for the next attempt.
		ld.retry, ld.retrySegs = rows, segs
		ld.loadErr = err
	} else {
		if n := len(rows); n > 0 {
			ld.loadedID = max(ld.loadedID, rows[n-1][colID].(uint64))
		}
		ld.loadErr = nil
	}
	close(ld.changed)
	ld.changed = make(chan struct{})
	s.ev.lmu.Unlock()
	return err
}

// appendRows appends rows (ids already set) to the events table in one
// transaction.
func appendRows(ctx context.Context, conn *sql.Conn, rows [][]driver.Value) error {
	return withAppender(ctx, conn, "events", func(a *duckdb.Appender) error {
		for i, row := range rows {
			if err := a.AppendRow(row...); err != nil {
				return fmt.Errorf("events[%d]: %w", i, err)
			}
		}
		return nil
	})
}

// openJournal replays the journal left by an earlier run (rows DuckDB
// does not have), deletes it, and starts a fresh segment; then starts the
// loader. It runs from Open before any write.
func (s *Store) openJournal(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("loader connection: %w", err)
	}
	s.ev.lconn = conn
	var maxID uint64
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&maxID); err != nil {
		return fmt.Errorf("read last event id: %w", err)
	}
	s.ev.nextID = maxID + 1
	s.ev.ld.loadedID, s.ev.ld.lastID = maxID, maxID
	s.ev.ld.changed = make(chan struct{})
	s.ev.kick = make(chan struct{}, 1)
	s.ev.stop = make(chan struct{})
	s.ev.loaderDone = make(chan struct{})
	dir := ""
	if s.o.Path != "" && s.o.Path != ":memory:" {
		dir = s.o.Path + ".journal"
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	s.ev.jn.dir = dir
	var next uint64 = 1
	if dir != "" {
		seqs, err := segments(dir)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		var replay [][]driver.Value
		for _, seq := range seqs {
			rows, torn, err := readSegment(segmentPath(dir, seq))
			if err != nil {
				return err
			}
			if torn {
				s.log.Warn("journal segment ends in a torn record (a write cut short by a crash; it was never acknowledged)", "segment", segmentPath(dir, seq))
			}
			for _, r := range rows {
				if id, ok := r[colID].(uint64); ok && id > maxID {
					replay = append(replay, r)
					maxID = id
				}
			}
			next = seq + 1
		}
		if len(replay) > 0 {
			if err := appendRows(ctx, conn, replay); err != nil {
				return fmt.Errorf("replay %d journaled events: %w", len(replay), err)
			}
			s.log.Info("replayed journaled events into the event store", "events", len(replay))
			s.ev.nextID = maxID + 1
			s.ev.ld.loadedID, s.ev.ld.lastID = maxID, maxID
		}
		for _, seq := range seqs {
			if err := removeSegment(dir, seq); err != nil {
				return err
			}
		}
	}
	if err := s.ev.jn.open(next); err != nil {
		return err
	}
	go s.runLoader()
	return nil
}

// closeJournal loads what is pending and stops the loader.
func (s *Store) closeJournal() error {
	if s.ev.stop == nil {
		return nil
	}
	close(s.ev.stop)
	<-s.ev.loaderDone
	s.ev.commitMu.Lock()
	defer s.ev.commitMu.Unlock()
	return errors.Join(s.ev.jn.close(), s.ev.lconn.Close())
}
