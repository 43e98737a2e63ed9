package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Defaults of the event loader (journal.go explains the design).
const (
	// DefaultLoadRows is the rows of one journal segment, which the loader
	// stores in one go: as one event file (eventfiles.go), or in an
	// in-memory store as one DuckDB append. The pending rows are kept as
	// their encoded journal records (a few hundred bytes an event), not as
	// Go values.
	//
	// FullRowGroup (one DuckDB row group) cost less CPU when every event
	// was appended to DuckDB: compressed once and written straight to the
	// database file instead of through DuckDB's WAL (7.6 against 10.8 µs
	// of CPU an event in a microbenchmark), but it measured no faster end
	// to end for 100-400 MB more memory.
	DefaultLoadRows = 16384
	FullRowGroup    = 122880
	// DefaultLoadEvery bounds how long an acknowledged event waits in the
	// journal before the loader stores it when fewer than LoadRows are
	// pending (reads load pending rows at once anyway).
	DefaultLoadEvery = 2 * time.Second
	// LoaderNice is the nice value of the loader's thread (Linux), which
	// encodes event files and merges them; at the lower priority it yields
	// the CPU to reading, detection and alerting when these need it and
	// takes whatever is left, while back-pressure (MaxBacklog) still makes
	// the inputs wait for a loader that falls too far behind. At 40,000
	// events/s on 2 cores this roughly halved the event-to-alert p99 with
	// no loss of throughput at full load, when the loader's work was
	// DuckDB's append and checkpoints (docs/BENCHMARKS.md).
	LoaderNice = 5
)

// loadSeg is a journal segment's rows waiting for the loader: the
// payloads of its records, in order, or, once spilled, only its file.
type loadSeg struct {
	seq     uint64
	recs    [][]byte
	spilled bool // recs were dropped: the loader reads the segment file
	pinned  bool // its rows span two files (journal.commit): never spilled
	rows    int
	lastID  uint64    // the id of its last row
	firstAt time.Time // when its first record was committed
}

// loadState is the loader's side of eventWriter; guarded by eventWriter.lmu.
type loadState struct {
	// segs are closed segments waiting to be loaded, oldest first; the
	// first is retried after a failed load. cur holds the records of the
	// open segment. pending counts the rows of both.
	segs    []loadSeg
	cur     loadSeg
	pending int
	// memRows counts the pending rows whose records are held in memory
	// (cur's and those of segments not spilled); spilled those only on
	// disk; lost the acknowledged rows a damaged segment file no longer
	// held when the loader read it back.
	memRows  int
	spilled  int
	lost     int
	lastID   uint64 // newest committed id
	loadedID uint64 // newest id loaded into DuckDB
	wantID   uint64 // a reader waits for rows up to this id
	loadErr  error  // the last load's error, nil after a success
	changed  chan struct{}
	stopping bool
}

// pendingRows is the number of rows acknowledged but not yet in DuckDB.
func (s *Store) pendingRows() int {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	return s.ev.ld.pending
}

// UnloadedEvents is the number of acknowledged events (durable in the
// journal) that the loader has not yet moved into DuckDB.
func (s *Store) UnloadedEvents() int { return s.pendingRows() }

// MaxBacklog is the number of unloaded events at which writers are paced
// (Options.MaxBacklog).
func (s *Store) MaxBacklog() int { return s.o.MaxBacklog }

// SpilledEvents is the number of unloaded events held only in the journal's
// files, not in memory: the backlog beyond MaxPending.
func (s *Store) SpilledEvents() int {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	return s.ev.ld.spilled
}

// LostEvents is the number of acknowledged events that could not be
// loaded because their journal segment was damaged on disk when the loader
// read it back (logged, and the file kept beside the journal).
func (s *Store) LostEvents() int {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	return s.ev.ld.lost
}

// committed hands a journal commit's record (its payload, n rows up to lastID)
// to the loader; the caller holds commitMu. Once the open segment holds
// LoadRows rows it is closed and queued for loading whole.
func (s *Store) committed(rec []byte, n int, lastID uint64) {
	s.ev.lmu.Lock()
	ld := &s.ev.ld
	if ld.cur.rows == 0 {
		ld.cur.firstAt = time.Now()
	}
	ld.cur.recs = append(ld.cur.recs, rec)
	ld.cur.rows += n
	ld.cur.lastID = lastID
	ld.pending += n
	ld.memRows += n
	ld.lastID = lastID
	full := ld.cur.rows >= s.o.LoadRows
	if full {
		full = s.closeSegmentLocked() == nil
	}
	s.ev.lmu.Unlock()
	if full {
		s.kickLoader()
	}
}

// closeSegmentLocked starts a new journal segment and queues the records
// of the one it closes; the caller holds commitMu and lmu. On error the
// records stay in the open segment. While more than MaxPending rows are
// held in memory, the closed segment is spilled: its records are dropped
// and the loader reads its file when its turn comes, so a loader that
// falls behind costs disk, not memory, and writers are paced only at
// MaxBacklog. The newest segment is the one spilled: the oldest are loaded
// first and stay in memory.
func (s *Store) closeSegmentLocked() error {
	ld := &s.ev.ld
	old, err := s.ev.jn.rotate()
	if err != nil {
		return err
	}
	ld.cur.seq = old
	if s.ev.jn.dir != "" && ld.memRows > s.o.MaxPending && !ld.cur.pinned {
		ld.cur.recs, ld.cur.spilled = nil, true
		ld.memRows -= ld.cur.rows
		ld.spilled += ld.cur.rows
	}
	ld.segs = append(ld.segs, ld.cur)
	ld.cur = loadSeg{}
	return nil
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
		pending := ld.pending
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

// AwaitSearchable waits at most wait for every event acknowledged before
// the call to be loaded into DuckDB, where searches see it, and returns how
// many of those are still not loaded: 0 once all are. A search made next
// with NoWait sees at least everything loaded by then, so the count bounds
// what it misses. While the loader keeps up this returns within one load
// (milliseconds); it reaches wait only when the loader has fallen behind.
func (s *Store) AwaitSearchable(ctx context.Context, wait time.Duration) (int, error) {
	s.ev.lmu.Lock()
	target := s.ev.ld.lastID
	idle := s.ev.ld.loadedID >= target
	s.ev.lmu.Unlock()
	if idle {
		return 0, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := s.waitLoaded(wctx, 0)
	switch {
	case ctx.Err() != nil:
		return 0, fmt.Errorf("eventstore: await searchable: %w", ctx.Err())
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		return 0, fmt.Errorf("eventstore: await searchable: %w", err)
	}
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	if loaded := s.ev.ld.loadedID; loaded < target {
		return int(target - loaded), nil
	}
	return 0, nil
}

// runLoader stores journaled rows (storeRecords): when LoadRows are pending,
// when the oldest has waited LoadEvery, when a reader asks, and at Close.
func (s *Store) runLoader() {
	defer close(s.ev.loaderDone)
	if err := lowerLoaderPriority(); err != nil {
		s.log.Warn("the event loader runs at the process's priority", "err", err)
	}
	if n, err := threadNice(); err == nil {
		s.ev.loaderNice.Store(int32(n))
	}
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
		for !stop && !s.loadDue(false) && s.mergeOnce() {
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

// mergeOnce merges the oldest run of small event files that is due
// (pickMerge) and says whether it merged. It runs on the loader when it
// has nothing to load: a merge copies bytes and costs little CPU, but it
// must not delay a load.
func (s *Store) mergeOnce() bool {
	fs := s.ev.files
	if fs == nil || time.Now().Before(s.ev.mergeAfter) {
		return false
	}
	fs.changeMu.Lock()
	defer fs.changeMu.Unlock()
	fs.mu.Lock()
	run := slices.Clone(pickMerge(fs.files, int64(s.o.MergeRows)))
	fs.mu.Unlock()
	if run == nil {
		return false
	}
	// Files of full segments are concatenated as they are. Smaller ones
	// (the loader's timer at a low rate) would make a merged file of many
	// tiny row groups, each of which every scan pays for (about 0.16 ms
	// a row group and full scan, docs/BENCHMARKS.md): those are re-encoded
	// into large row groups, which at such rates costs little.
	merge := mergeFiles
	for _, f := range run {
		if f.rows < int64(s.o.LoadRows)/2 {
			merge = func(dir string, files []*eventFile) (*eventFile, error) {
				nf, _, err := rewriteFiles(dir, files, nil)
				return nf, err
			}
			break
		}
	}
	nf, err := merge(fs.dir, run)
	if err != nil {
		s.log.Error("merging event files failed; they stay as they are, and merging pauses for a minute", "files", len(run), "err", err)
		s.ev.mergeAfter = time.Now().Add(time.Minute)
		return false
	}
	fs.replace(run, nf)
	if s.o.OnMerge != nil {
		s.o.OnMerge(len(run), nf.rows)
	}
	return true
}

// loadDue says whether a load should run now.
func (s *Store) loadDue(stop bool) bool {
	s.ev.lmu.Lock()
	defer s.ev.lmu.Unlock()
	ld := &s.ev.ld
	switch {
	case ld.pending == 0:
		return false
	case len(ld.segs) > 0, stop, ld.wantID > ld.loadedID:
		return true
	}
	return time.Since(ld.cur.firstAt) >= s.o.LoadEvery
}

// loadOnce stores the oldest waiting segment's rows (one event file, or
// one DuckDB transaction in an in-memory store), closing the open segment
// first when none is waiting; once they are durable the segment is
// deleted.
func (s *Store) loadOnce() error {
	s.ev.commitMu.Lock()
	s.ev.lmu.Lock()
	ld := &s.ev.ld
	if len(ld.segs) == 0 && ld.cur.rows > 0 {
		if err := s.closeSegmentLocked(); err != nil {
			s.ev.lmu.Unlock()
			s.ev.commitMu.Unlock()
			return err
		}
	}
	var seg loadSeg
	if len(ld.segs) > 0 {
		seg = ld.segs[0]
	}
	s.ev.lmu.Unlock()
	s.ev.commitMu.Unlock()
	if seg.rows == 0 {
		return nil
	}

	if s.o.beforeLoad != nil {
		s.o.beforeLoad()
	}
	start := time.Now()
	recs, damaged, err := s.segmentRecords(seg)
	if err == nil {
		_, _, err = s.storeRecords(context.Background(), recs, eventCols, 0)
	}
	if err == nil {
		if s.o.OnLoad != nil {
			s.o.OnLoad(seg.rows, time.Since(start))
		}
		// Durable in a file (or DuckDB): the segment is no longer needed. Deleted
		// (a damaged one set aside) before its rows count as loaded, so a
		// reader that saw them loaded also sees the journal without them.
		if damaged != nil {
			s.setAside(seg, damaged)
		} else if rerr := removeSegment(s.ev.jn.dir, seg.seq); rerr != nil {
			s.log.Warn("could not delete a loaded journal segment; its rows are skipped when replayed", "err", rerr)
		}
	}
	s.ev.lmu.Lock()
	if err != nil {
		// It stays first in line for the next attempt.
		ld.loadErr = err
	} else {
		if len(ld.segs) > 0 && ld.segs[0].seq == seg.seq { // (a test's crash may have dropped it)
			ld.segs[0] = loadSeg{}
			ld.segs = ld.segs[1:]
			ld.pending -= seg.rows
			if seg.spilled {
				ld.spilled -= seg.rows
			} else {
				ld.memRows -= seg.rows
			}
			if damaged != nil {
				ld.lost += seg.rows - damaged.rows
			}
		}
		ld.loadedID = max(ld.loadedID, seg.lastID)
		ld.loadErr = nil
	}
	close(ld.changed)
	ld.changed = make(chan struct{})
	s.ev.lmu.Unlock()
	return err
}

// segmentRecords returns the records of a segment to load: held in
// memory, or read back from its file once spilled. A spilled file that no
// longer holds every row it was written with (damaged on disk; every
// record in it was synced before it was acknowledged) gives its intact
// records and damaged describing the file; the caller loads those and sets
// the file aside. A missing file counts as damaged, without records.
func (s *Store) segmentRecords(seg loadSeg) (recs [][]byte, damaged *segRecords, err error) {
	if !seg.spilled {
		return seg.recs, nil, nil
	}
	sr, err := readRecords(segmentPath(s.ev.jn.dir, seg.seq))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &sr, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if sr.rows < seg.rows {
		// (A torn end after all of its rows is a write that failed and
		// was never acknowledged.)
		return sr.payloads, &sr, nil
	}
	return sr.payloads, nil, nil
}

// setAside keeps a damaged segment file beside the journal, renamed so that
// no replay reads it again, and reports what it lacked.
func (s *Store) setAside(seg loadSeg, d *segRecords) {
	path := segmentPath(s.ev.jn.dir, seg.seq)
	kept := path + damagedExt
	if err := os.Rename(path, kept); err != nil {
		kept = ""
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not set aside a damaged journal segment", "segment", path, "err", err)
			if rerr := removeSegment(s.ev.jn.dir, seg.seq); rerr != nil {
				s.log.Warn("could not delete a loaded journal segment; its rows are skipped when replayed", "err", rerr)
			}
		}
	}
	s.log.Error("journal segment damaged on disk: acknowledged events lost",
		"segment", path, "kept_as", kept, "intact_bytes", d.intact, "events_loaded", d.rows, "events_lost", seg.rows-d.rows)
}

// storeRecords stores the rows of journal record payloads with an id above
// afterID: as one event file when the store has them, else in the events
// table. It returns how many rows it stored and the last one's id.
func (s *Store) storeRecords(ctx context.Context, recs [][]byte, cols int, afterID uint64) (n int, lastID uint64, err error) {
	if s.ev.files == nil {
		return appendRecords(ctx, s.ev.lconn, recs, cols, afterID)
	}
	f, err := writeRecords(s.ev.files.dir, recs, cols, afterID)
	if err != nil || f == nil {
		return 0, 0, err
	}
	s.ev.files.add(f)
	return int(f.rows), f.last, nil
}

// appendRecords appends the rows of journal record payloads (ids set),
// rows of cols values, to the events table in one transaction, decoding
// them row by row; rows with an id up to afterID are skipped (DuckDB has
// them). It returns how many rows it appended and the last one's id.
func appendRecords(ctx context.Context, conn *sql.Conn, recs [][]byte, cols int, afterID uint64) (n int, lastID uint64, err error) {
	err = withAppender(ctx, conn, "events", func(a *duckdb.Appender) error {
		for _, rec := range recs {
			if err := eachRowCols(rec, cols, false, nil, func(row []driver.Value) error {
				id, _ := row[colID].(uint64)
				if id <= afterID {
					return nil
				}
				if err := a.AppendRow(row...); err != nil {
					return fmt.Errorf("events[%d]: %w", n, err)
				}
				n, lastID = n+1, id
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n, lastID, nil
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
	if s.o.Path != "" && s.o.Path != ":memory:" && !s.o.tableOnly {
		fs, lost, err := openEventFiles(s.o.Path+".events", s.log)
		if err != nil {
			return err
		}
		s.ev.files = fs
		s.ev.ld.lost += int(lost)
		_, _, _, _, _, last := fs.totals()
		maxID = max(maxID, last)
	}
	s.ev.nextID = maxID + 1
	s.ev.ld.loadedID, s.ev.ld.lastID = maxID, maxID
	s.ev.ld.changed = make(chan struct{})
	s.ev.kick = make(chan struct{}, 1)
	s.ev.stop = make(chan struct{})
	s.ev.loaderDone = make(chan struct{})
	s.ev.loaderNice.Store(-100)
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
		// Segments of an older build (legacyJournalExt) came first: a
		// build writes only its own kind, and replays and deletes all of
		// them when it opens.
		legacy, err := segmentsExt(dir, legacyJournalExt)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		seqs, err := segments(dir)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		// Each segment is replayed in its own transaction, one at a time,
		// so a long backlog (spilled segments) never has to fit in memory;
		// a crash during the replay leaves DuckDB with a prefix of the ids,
		// which the next replay skips.
		var paths []string
		replayed := 0
		for _, sg := range slices.Concat(segFiles(dir, legacy, legacyJournalExt, legacyEventCols), segFiles(dir, seqs, journalExt, eventCols)) {
			paths = append(paths, sg.path)
			sr, err := readRecords(sg.path)
			if err != nil {
				return err
			}
			if sr.torn {
				s.log.Warn("journal segment ends in a torn record (a write cut short by a crash; it was never acknowledged)", "segment", sg.path, "intact_bytes", sr.intact)
			}
			n, last, err := s.storeRecords(ctx, sr.payloads, sg.cols, maxID)
			if err != nil {
				return fmt.Errorf("replay journal segment %s: %w", sg.path, err)
			}
			if n > 0 {
				replayed += n
				maxID = last
			}
			next = max(next, sg.seq+1)
		}
		if replayed > 0 {
			s.log.Info("replayed journaled events into the event store", "events", replayed)
			s.ev.nextID = maxID + 1
			s.ev.ld.loadedID, s.ev.ld.lastID = maxID, maxID
		}
		for _, p := range paths {
			if err := removeFile(p); err != nil {
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

// segFile is a journal segment file found at Open.
type segFile struct {
	seq  uint64
	path string
	cols int
}

func segFiles(dir string, seqs []uint64, ext string, cols int) []segFile {
	out := make([]segFile, len(seqs))
	for i, seq := range seqs {
		out[i] = segFile{seq: seq, path: segmentPathExt(dir, seq, ext), cols: cols}
	}
	return out
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
