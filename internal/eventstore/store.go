// Package eventstore owns nocsoc's time series (check results today; log
// events and metric samples later) in an embedded DuckDB file,
// <data>/events.duckdb. Writes go through a bounded in-process queue and are
// appended in batches with DuckDB's appender; queries are hand-written SQL
// that aggregate inside DuckDB.
//
// # Uptime semantics
//
// Each check result covers the time from its own timestamp until the next
// result of the same check, but at most 1.5 × the check's interval + 5s (the
// coverage cap; the interval is the one recorded with the result). Time in
// [from, end) not covered by any result is Unknown, where end is to clipped
// to the current time: this is how periods when nocsoc itself was not running
// count as unknown, never as up. A result before from whose coverage reaches
// into the range counts for the overlapping part. The state of the covering
// result decides where its time goes:
//
//   - up → Up
//   - down, unreachable → Down (the service was unavailable even when the
//     root cause was elsewhere)
//   - flapping → Up if that result was OK, else Down
//   - maintenance → Maintenance (excluded from the ratio)
//   - unknown → Unknown
//
// Up + Down + Maintenance + Unknown = end − from. Ratio = Up / (Up + Down),
// nil when Up + Down is zero. Results and Failures (results with OK false)
// count results timestamped in [from, to), maintenance included; latency
// percentiles are taken over the same results minus those in maintenance,
// as discrete quantiles (always a measured value, never an interpolation).
//
// StateChanges follow the same model: a change is recorded where a result's
// state differs from the state before it (unknown when no earlier result
// still covers it), and where a result's coverage cap runs out before the
// next result (a change to unknown at that instant). They are returned
// newest first.
//
// # Storage
//
// Rows are appended in arrival (time) order to check_results_recent. Once an
// hour is more than five minutes past, the writer moves it to
// check_results_archive sorted by (check id, time), so that a query for one
// check reads one row group per hour instead of every row group; queries read
// both through the check_results view. Timestamps are stored with
// microsecond precision, in UTC; durations in nanoseconds.
package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Defaults for Options.
const (
	// DefaultMemoryLimit bounds DuckDB's buffer pool: the rows appended
	// since the last checkpoint (about a checkpoint threshold's worth) and
	// a cache of the table's blocks for searches. 384MB keeps the whole
	// server under 1 GB resident at full log load on 2 cores; 512MB let
	// the cache grow it to 1.0-1.1 GB, and searches over 10M events took
	// the same time either way (docs/BENCHMARKS.md).
	DefaultMemoryLimit = "384MB"
	// DefaultCheckpointThreshold: DuckDB checkpoints when its WAL passes
	// this size, and each checkpoint re-compresses the event table's
	// unfinished last row group, so small thresholds compress every row
	// several times. Against DuckDB's 16MB, 64MB measured about a fifth
	// less CPU per appended event, and 256MB about 25 % more events/s
	// again; 128MB measured as fast as 256MB (1GB no faster) and holds
	// half the rows in memory (docs/BENCHMARKS.md). After a crash at most this much WAL is
	// replayed at start (seconds).
	DefaultCheckpointThreshold = "128MB"
	DefaultThreads             = 2
	DefaultBatchSize           = 5000
	DefaultFlushEvery          = time.Second
	DefaultQueueSize           = 100000
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("eventstore: store is closed")

// Options configures Open.
type Options struct {
	// Path is the database file, normally <data>/events.duckdb; "" opens an
	// in-memory database (tests).
	Path string
	// MemoryLimit is DuckDB's memory_limit (default DefaultMemoryLimit).
	MemoryLimit string
	// CheckpointThreshold is DuckDB's checkpoint_threshold, the WAL size
	// at which it checkpoints (default DefaultCheckpointThreshold).
	CheckpointThreshold string
	// Threads is DuckDB's threads setting (default 2).
	Threads int
	// BatchSize is the number of rows written per append batch (default 5000).
	BatchSize int
	// FlushEvery bounds how long a partial batch waits in the queue
	// (default 1s).
	FlushEvery time.Duration
	// QueueSize is the number of rows that may wait to be written (default
	// 100000); AppendResults blocks while the queue is full.
	QueueSize int
	// Logger receives write errors; nil discards them.
	Logger *slog.Logger
	// OnWrite, if set, is called after each committed batch with its row
	// count and write latency (for metrics). It runs on the writer goroutine
	// and must be quick.
	OnWrite func(rows int, d time.Duration)
	// LoadRows is how many journaled events the loader gathers before it
	// moves them into DuckDB (default DefaultLoadRows); LoadEvery bounds
	// how long a smaller number waits (default DefaultLoadEvery).
	// MaxPending bounds the events acknowledged but not yet loaded whose
	// journal records the loader holds in memory (default LoadRows +
	// PendingSlack, so that a DuckDB checkpoint, which can hold the loader
	// for seconds, costs no disk reads); beyond it closed journal segments
	// are spilled: the loader reads them back from their files.
	// MaxBacklog bounds all events acknowledged but not yet loaded
	// (default DefaultMaxBacklog): beyond it AppendEvents waits for the
	// loader (Pace). Reads load the whole backlog first, so it also bounds
	// how long a search under overload waits, unless it is bounded by
	// SearchWait. An in-memory store cannot spill and paces at the smaller
	// of the two.
	LoadRows   int
	LoadEvery  time.Duration
	MaxPending int
	MaxBacklog int
	// SearchWait is how long the interactive searches (the API's search,
	// stats and pivot, the console's Investigate and pivot pages) wait
	// for the events acknowledged before them to be loaded (default
	// DefaultSearchWait); after it they answer from what is loaded and
	// say how many events they could not see (AwaitSearchable).
	SearchWait time.Duration
	// MergeRows is the size up to which the loader merges small event
	// files into larger ones (default DefaultMergeRows; eventfiles.go).
	MergeRows int
	// OnMerge, if set, is called after each merge of event files with the
	// files merged and the rows of the new file (metrics, tests).
	OnMerge func(files int, rows int64)
	// OnLoad, if set, is called after each load with its row count and
	// duration (for metrics).
	OnLoad func(rows int, d time.Duration)
	// Now is the clock used to clip the open end of Uptime and StateChanges;
	// nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time

	// beforeLoad, if set (tests), runs on the loader before each load.
	beforeLoad func()
	// tableOnly stores events in the events table even when Path is a
	// file, as stores did before event files (benchmarks).
	tableOnly bool
}

// memoryLimitRE accepts what DuckDB accepts for memory_limit in the common
// forms, so a typo fails here with a clear message rather than deep inside
// DuckDB's config parser.
var memoryLimitRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`)

func (o *Options) normalize() error {
	if strings.ContainsAny(o.Path, "?#") {
		// The path goes into a DSN whose query string carries settings.
		return fmt.Errorf("Path: %q must not contain '?' or '#'", o.Path)
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if !memoryLimitRE.MatchString(o.MemoryLimit) {
		return fmt.Errorf("MemoryLimit: %q is not a size like \"512MB\" or \"2GiB\"", o.MemoryLimit)
	}
	if o.CheckpointThreshold == "" {
		o.CheckpointThreshold = DefaultCheckpointThreshold
	}
	if !memoryLimitRE.MatchString(o.CheckpointThreshold) {
		return fmt.Errorf("CheckpointThreshold: %q is not a size like \"256MB\"", o.CheckpointThreshold)
	}
	if o.Threads == 0 {
		o.Threads = DefaultThreads
	}
	if o.Threads < 0 {
		return fmt.Errorf("Threads: must not be negative (got %d)", o.Threads)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchSize < 0 {
		return fmt.Errorf("BatchSize: must not be negative (got %d)", o.BatchSize)
	}
	if o.FlushEvery == 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.FlushEvery < 0 {
		return fmt.Errorf("FlushEvery: must not be negative (got %s)", o.FlushEvery)
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.QueueSize < 0 {
		return fmt.Errorf("QueueSize: must not be negative (got %d)", o.QueueSize)
	}
	if o.LoadRows == 0 {
		o.LoadRows = DefaultLoadRows
	}
	if o.LoadEvery == 0 {
		o.LoadEvery = DefaultLoadEvery
	}
	if o.MaxPending == 0 {
		o.MaxPending = o.LoadRows + PendingSlack
	}
	if o.MaxBacklog == 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.SearchWait == 0 {
		o.SearchWait = DefaultSearchWait
	}
	if o.MergeRows == 0 {
		o.MergeRows = DefaultMergeRows
	}
	if o.LoadRows < 0 || o.LoadEvery < 0 || o.MaxPending < 0 || o.MaxBacklog < 0 || o.SearchWait < 0 || o.MergeRows < 0 {
		return fmt.Errorf("LoadRows, LoadEvery, MaxPending, MaxBacklog, SearchWait, MergeRows: must not be negative")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Store is the DuckDB time-series store. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	o   Options
	log *slog.Logger

	// wconn is the writer's own connection: the appender needs a raw driver
	// connection, and keeping one for the store's lifetime avoids competing
	// with queries for the pool. wmu serializes its users (batches and
	// compaction).
	wmu   sync.Mutex
	wconn *sql.Conn

	mu         sync.Mutex
	queue      []ResultRow
	enqueued   uint64        // sequence number of the last enqueued row
	done       uint64        // sequence number of the last row written (or failed)
	drainTo    uint64        // write partial batches until done reaches this
	space      chan struct{} // closed (and replaced) when rows leave the queue
	progress   chan struct{} // closed (and replaced) when done advances
	closing    bool
	failErr    error  // last write error
	failSeq    uint64 // done value after the last failed batch
	kick       chan struct{}
	writerDone chan struct{}

	dict dictionary

	ev   eventWriter // log events (events_append.go)
	span tsSpan      // the events' time range, for windowed searches
}

// PendingSlack is how many events beyond a full segment the loader holds
// in memory before it reads further ones back from the journal's files:
// seconds of input at the rates one server sustains (a DuckDB checkpoint
// holds the loader 3-4 s), about 80 MB as encoded journal records.
const PendingSlack = 114688

// DefaultMaxBacklog is how many acknowledged events may wait for the
// loader, in memory and spilled to the journal's files together, before
// writers are paced: about 300 MB of journal (some 600 bytes an event),
// and half a minute or more of input beyond what the loader keeps up with
// at 50,000 events/s on 2 cores. A search waits for the whole backlog, so
// it is also what bounds that wait (about 10 s on 2 cores once the input
// stops, docs/BENCHMARKS.md); interactive searches wait at most
// SearchWait for it.
const DefaultMaxBacklog = 1 << 19

// DefaultSearchWait bounds how long an interactive search waits for the
// loader: while it keeps up, a search waits one load (milliseconds); when
// it is behind, the whole backlog would take seconds to tens of seconds.
const DefaultSearchWait = 2 * time.Second

// SearchWait is the wait for AwaitSearchable that the store was opened
// with (Options.SearchWait).
func (s *Store) SearchWait() time.Duration { return s.o.SearchWait }

// Open opens (creating if needed) the store and brings its schema up to date.
func Open(ctx context.Context, o Options) (*Store, error) {
	if err := o.normalize(); err != nil {
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	q := url.Values{}
	q.Set("memory_limit", o.MemoryLimit)
	q.Set("threads", fmt.Sprint(o.Threads))
	q.Set("checkpoint_threshold", o.CheckpointThreshold)
	// Never fetch an extension over the network: what the store uses
	// (parquet, json) is built in.
	q.Set("autoinstall_known_extensions", "false")
	connector, err := duckdb.NewConnector(o.Path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %q: %w", o.Path, err)
	}
	db := sql.OpenDB(connector)
	s := &Store{
		db:         db,
		o:          o,
		log:        o.Logger.With("component", "eventstore"),
		space:      make(chan struct{}),
		progress:   make(chan struct{}),
		kick:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	// Event files never change once written (eventfiles.go): their
	// footers are parsed once, not at every query. DuckDB reads a row
	// group's column chunks whole instead of a page header at a time, in
	// small reads, from local files too: that halved a field query over
	// 10M events in files (288 to 118 ms). (These settings belong to the
	// built-in parquet extension, so they cannot go in the DSN.)
	if _, err := db.ExecContext(ctx, `SET GLOBAL parquet_metadata_cache = true; SET GLOBAL prefetch_all_parquet_files = true`); err != nil {
		db.Close()
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	if err := s.dict.load(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	s.wconn, err = db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("eventstore: open: writer connection: %w", err)
	}
	if err := s.openJournal(ctx); err != nil {
		s.wconn.Close()
		db.Close()
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	go s.run()
	return s, nil
}

// Close writes everything queued, stops the writer and closes the database.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.writerDone
		return nil
	}
	s.closing = true
	s.mu.Unlock()
	s.wake()
	<-s.writerDone
	err := errors.Join(s.closeJournal(), s.wconn.Close(), s.db.Close())
	if err != nil {
		return fmt.Errorf("eventstore: close: %w", err)
	}
	s.mu.Lock()
	failErr, failed := s.failErr, s.failSeq > 0
	s.mu.Unlock()
	if failed {
		// Rows were lost at some point; Close is the last chance to say so.
		return fmt.Errorf("eventstore: close: an earlier write failed: %w", failErr)
	}
	return nil
}

// QueueDepth is the number of rows waiting to be written.
func (s *Store) QueueDepth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Flush returns when every row enqueued before the call has been written and
// committed, or with the error of a batch that failed meanwhile.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	target, start := s.enqueued, s.done
	if s.done >= target {
		s.mu.Unlock()
		return nil
	}
	s.drainTo = max(s.drainTo, target)
	s.mu.Unlock()
	s.wake()
	for {
		s.mu.Lock()
		if s.done >= target {
			var err error
			if s.failSeq > start {
				err = fmt.Errorf("eventstore: flush: %w", s.failErr)
			}
			s.mu.Unlock()
			return err
		}
		ch := s.progress
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("eventstore: flush: %w", ctx.Err())
		}
	}
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// enqueue adds rows to the queue, waiting for space when it is full. Rows
// larger than the queue are enqueued in parts, so on a ctx error the rows
// before the returned count are already queued.
func (s *Store) enqueue(ctx context.Context, rows []ResultRow) (int, error) {
	n := 0
	for n < len(rows) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return n, ErrClosed
		}
		free := s.o.QueueSize - len(s.queue)
		if free <= 0 {
			ch := s.space
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return n, ctx.Err()
			}
		}
		k := min(free, len(rows)-n)
		s.queue = append(s.queue, rows[n:n+k]...)
		s.enqueued += uint64(k)
		full := len(s.queue) >= s.o.BatchSize
		s.mu.Unlock()
		if full {
			s.wake()
		}
		n += k
	}
	return n, nil
}

// run is the writer goroutine: it writes full batches as soon as they are
// there, partial batches on each FlushEvery tick, on Flush and on Close.
func (s *Store) run() {
	defer close(s.writerDone)
	ticker := time.NewTicker(s.o.FlushEvery)
	defer ticker.Stop()
	ctx := context.Background()
	var compactedTo time.Time
	for {
		s.mu.Lock()
		n := len(s.queue)
		urgent := s.closing || s.drainTo > s.done
		if n >= s.o.BatchSize || (n > 0 && urgent) {
			k := min(n, s.o.BatchSize)
			// The batch keeps pointing into the queue's backing array; the
			// queue moves past it and never writes there again (appends go
			// beyond its length), so no copy is needed.
			batch := s.queue[:k:k]
			s.queue = s.queue[k:]
			if len(s.queue) == 0 {
				s.queue = nil
			}
			close(s.space)
			s.space = make(chan struct{})
			s.mu.Unlock()

			err := s.writeResults(ctx, batch)

			s.mu.Lock()
			s.done += uint64(k)
			if err != nil {
				s.failErr, s.failSeq = err, s.done
			}
			close(s.progress)
			s.progress = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				s.log.Error("writing check results failed; batch dropped", "rows", k, "err", err)
			}
			continue
		}
		if s.closing {
			// Wake any appender still waiting for space: it will see closing.
			close(s.space)
			s.space = make(chan struct{})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		select {
		case <-s.kick:
		case <-ticker.C:
			s.mu.Lock()
			s.drainTo = max(s.drainTo, s.enqueued)
			s.mu.Unlock()
			if cut := compactCutoff(s.o.Now()); cut.After(compactedTo) {
				// Advance even on failure: the next cutoff retries every older
				// row anyway, and a persistent error should not log every tick.
				compactedTo = cut
				start := time.Now()
				if n, err := s.compact(ctx, cut); err != nil {
					s.log.Error("compacting check results failed", "before", cut, "err", err)
				} else if n > 0 {
					s.log.Info("compacted check results", "before", cut, "rows", n, "took", time.Since(start))
				}
			}
		}
	}
}

// withAppender runs fill with a fresh appender on table using conn (the
// writer connection; the caller holds wmu), and commits what fill appended;
// on error nothing is committed.
func withAppender(ctx context.Context, wconn *sql.Conn, table string, fill func(a *duckdb.Appender) error) error {
	return wconn.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		a, err := duckdb.NewAppender(conn, "", "", table)
		if err != nil {
			return fmt.Errorf("appender for %s: %w", table, err)
		}
		if err := fill(a); err != nil {
			// Discard the rows appended so far so the batch stays all-or-nothing.
			return errors.Join(err, a.Clear(), a.Close())
		}
		if err := a.CloseWithCancel(ctx); err != nil {
			return fmt.Errorf("append to %s: %w", table, err)
		}
		return nil
	})
}
