// Package store owns nocsoc's state: users, API tokens, the audit log,
// API-created checks and maintenance windows, push tokens, saved check
// statuses and alerts, kept in one SQLite file (<data>/state.db).
//
// Writes go through a single connection so they queue inside the process
// instead of failing with SQLITE_BUSY; reads use a separate pool and, thanks
// to WAL, never wait for writers. Another process (the CLI) may open the same
// file at the same time: immediate transactions and busy_timeout serialise
// it with the server.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change would break a uniqueness rule (duplicate
	// name, second firing alert) or another invariant (last admin).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed; the error is a *FieldError.
	ErrInvalid = errors.New("invalid input")
)

// FieldError names the input field that is wrong and why. It matches
// ErrInvalid under errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true for every *FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// Actor is who a change is made on behalf of; it is written to the audit log.
type Actor struct {
	// Name is a user name, "token:<token name>" or "system".
	Name string
	// Remote is the client address, empty for local actions.
	Remote string
}

// busyTimeout is how long a connection waits for another process's write
// lock before giving up. Writers in this process never wait on each other
// (they share one connection); this only covers the CLI running alongside.
const busyTimeout = 10 * time.Second

// Store is the SQLite state store. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // exactly one connection: every write
	r   *sql.DB // read pool, query_only
	log *slog.Logger

	onWrite atomic.Pointer[func(op string, d time.Duration)]
	// integrationsGen counts integration disables (see
	// IntegrationsGeneration).
	integrationsGen atomic.Uint64
	// now is the clock for audit timestamps and defaults; tests replace it.
	now func() time.Time

	// touched remembers when TouchToken last wrote each token, so most
	// calls return without touching the database.
	touchMu sync.Mutex
	touched map[int64]time.Time

	// stmts are the hot statements of the ingest path, prepared once on
	// the writer connection at Open; a Tx binds them with tx.StmtContext,
	// which reuses the connection's prepared statement.
	stmts map[string]*sql.Stmt
}

// Open opens (creating if needed) the SQLite database at path and applies
// any pending migrations.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: path is empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		log:     logger.With("component", "store"),
		now:     func() time.Time { return time.Now().UTC() },
		touched: make(map[int64]time.Time),
	}
	var err error
	// _txlock=immediate takes the write lock at BEGIN: a deferred
	// transaction that later upgrades can fail with SQLITE_BUSY at once,
	// without waiting, when another process wrote in between.
	//
	// temp_store(MEMORY) keeps statement journals (written by upserts and
	// trigger-bearing statements inside a batch) off disk: on files they
	// cost a pwrite per changed page and halved batch throughput.
	//
	// The writer keeps up to 32 MiB of pages (SQLite's default is 2 MiB)
	// and checkpoints the WAL every 8,000 pages (32 MiB) instead of 1,000:
	// under an alert storm (300 new alerts and 120 new incidents a
	// second) the pages it reads back fell by three quarters and the
	// pages it writes by a fifth, and HTTP intake took 5-20 % less time
	// an alert (BenchmarkIntakeEvents, docs/BENCHMARKS.md).
	s.w, err = sql.Open("sqlite", dsn(path, "_txlock=immediate",
		"_pragma=journal_mode(WAL)", "_pragma=foreign_keys(1)", "_pragma=temp_store(MEMORY)",
		"_pragma=cache_size(-32768)", "_pragma=wal_autocheckpoint(8000)"))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// The read pool is opened after migrations so that it only ever sees
	// a WAL-mode, fully migrated file.
	s.r, err = sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	n := max(4, runtime.NumCPU())
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// dsn builds a modernc.org/sqlite DSN with the settings every connection
// shares plus extra.
func dsn(path string, extra ...string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	params := append([]string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=synchronous(NORMAL)",
	}, extra...)
	return "file:" + esc + "?" + strings.Join(params, "&")
}

// Close closes both connection pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// OnWrite installs fn to be called after every write transaction with an
// operation name ("user.create", "alert.open" …) and how long it took,
// including waiting for the writer connection. It lets the app export write
// latency without this package importing Prometheus. fn must be fast and
// safe for concurrent use; nil removes the hook.
func (s *Store) OnWrite(fn func(op string, d time.Duration)) {
	if fn == nil {
		s.onWrite.Store(nil)
		return
	}
	s.onWrite.Store(&fn)
}

// write runs fn in one immediate transaction on the writer connection and
// commits it, or rolls back if fn fails: a failed change leaves nothing,
// not even its audit entry.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) (err error) {
	start := time.Now()
	defer func() {
		if h := s.onWrite.Load(); h != nil {
			(*h)(op, time.Since(start))
		}
	}()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			s.log.Error("rollback failed", "op", op, "err", rbErr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// isForeignKey reports whether err is a FOREIGN KEY violation: the row
// referred to does not exist.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// queryer is what both *sql.DB and *sql.Tx offer, so a lookup can run on
// the read pool or inside a write transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Times are stored as INTEGER unix milliseconds, UTC.

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func msPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMSPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// jsonText marshals v for a TEXT column; nil maps and slices become NULL
// rather than "null" so they read back as nil.
func jsonText(v any) (sql.NullString, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, err
	}
	if string(b) == "null" {
		return sql.NullString{}, nil
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// limit clamps a caller's page size.
func limit(n int) int {
	const def, maxLimit = 100, 1000
	if n <= 0 {
		return def
	}
	return min(n, maxLimit)
}
