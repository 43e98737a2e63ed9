package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/nocsoc/nocsoc/internal/check"
)

// ResultRow is one check result as stored.
type ResultRow struct {
	Time       time.Time
	Check      string
	OK         bool
	State      check.State // the check's state after this result
	RootCause  string      // the parent check blamed when State is unreachable
	Duration   time.Duration
	Error      string
	StatusCode int
	Detail     string
	// Interval is the check's interval when the result was taken; it sets
	// the result's coverage cap (see the package doc).
	Interval time.Duration
}

// Limits for Results and StateChanges.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// coverageCap is how long a result taken at the given interval can vouch for
// the check's state when no newer result follows.
func coverageCap(interval time.Duration) time.Duration {
	return interval*3/2 + 5*time.Second
}

// coverageCapSQL is coverageCap over the interval_ns column, in microseconds.
const coverageCapSQL = `(interval_ns * 3 // 2000 + 5000000)`

func validateResult(i int, r ResultRow) error {
	field := func(name string) string { return fmt.Sprintf("rows[%d].%s", i, name) }
	switch {
	case r.Check == "":
		return &check.FieldError{Field: field("Check"), Reason: "is required"}
	case r.Time.IsZero():
		return &check.FieldError{Field: field("Time"), Reason: "is required"}
	case !slices.Contains(check.States, r.State):
		return &check.FieldError{Field: field("State"), Reason: fmt.Sprintf("unknown state %q", r.State)}
	case r.Interval <= 0:
		return &check.FieldError{Field: field("Interval"), Reason: "must be positive"}
	case r.Duration < 0:
		return &check.FieldError{Field: field("Duration"), Reason: "must not be negative"}
	}
	return nil
}

// AppendResults validates rows and queues them for writing. It blocks while
// the queue is full until there is room or ctx is done. A row that fails
// validation rejects the whole call (a *check.FieldError naming the row and
// field) and queues nothing. Rows become visible to queries once written;
// call Flush to wait for that. When ctx ends while waiting, the rows before
// the point reported in the error are already queued.
func (s *Store) AppendResults(ctx context.Context, rows ...ResultRow) error {
	for i, r := range rows {
		if err := validateResult(i, r); err != nil {
			return fmt.Errorf("eventstore: append results: %w", err)
		}
	}
	n, err := s.enqueue(ctx, rows)
	if err != nil {
		return fmt.Errorf("eventstore: append results: %d of %d rows queued: %w", n, len(rows), err)
	}
	return nil
}

// writeResults writes one batch: new check names first, then the rows in one
// appender flush (one commit).
func (s *Store) writeResults(ctx context.Context, rows []ResultRow) error {
	start := time.Now()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ids, err := s.dict.ensure(ctx, s.wconn, rows)
	if err != nil {
		return err
	}
	err = withAppender(ctx, s.wconn, "check_results_recent", func(a *duckdb.Appender) error {
		for i, r := range rows {
			if err := a.AppendRow(r.Time, ids[i], r.OK, string(r.State), r.RootCause, int64(r.Duration),
				r.Error, int32(r.StatusCode), r.Detail, int64(r.Interval)); err != nil {
				return fmt.Errorf("append result of %q: %w", r.Check, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.o.OnWrite != nil {
		s.o.OnWrite(len(rows), time.Since(start))
	}
	return nil
}

// ResultFilter selects check results. Zero fields do not filter.
type ResultFilter struct {
	Check    string    // one check; "" means all checks
	From, To time.Time // results in [From, To)
	// Limit caps the rows returned: 0 means DefaultLimit; at most MaxLimit.
	Limit int
	// Before asks for rows strictly older than it (keyset paging: pass the
	// Time of the last row of the previous page). Rows that share that exact
	// microsecond with it are skipped, which only matters across checks.
	Before       time.Time
	OnlyFailures bool // only results with OK false
}

func normLimit(field string, limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, &check.FieldError{Field: field, Reason: "must not be negative"}
	case limit == 0:
		return DefaultLimit, nil
	case limit > MaxLimit:
		return 0, &check.FieldError{Field: field, Reason: fmt.Sprintf("must be at most %d", MaxLimit)}
	}
	return limit, nil
}

func checkRange(from, to time.Time) error {
	if from.IsZero() {
		return &check.FieldError{Field: "from", Reason: "is required"}
	}
	if to.IsZero() {
		return &check.FieldError{Field: "to", Reason: "is required"}
	}
	if !to.After(from) {
		return &check.FieldError{Field: "to", Reason: "must be after from"}
	}
	return nil
}

// Results returns the check results matching f, newest first.
func (s *Store) Results(ctx context.Context, f ResultFilter) ([]ResultRow, error) {
	limit, err := normLimit("Limit", f.Limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: results: %w", err)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return nil, fmt.Errorf("eventstore: results: %w", &check.FieldError{Field: "To", Reason: "must be after From"})
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Check != "" {
		id, _, ok := s.dict.lookup(f.Check)
		if !ok {
			return []ResultRow{}, nil
		}
		add("check_id = $%d", id)
	}
	if !f.From.IsZero() {
		add("ts >= make_timestamp($%d)", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("ts < make_timestamp($%d)", f.To.UnixMicro())
	}
	if !f.Before.IsZero() {
		add("ts < make_timestamp($%d)", f.Before.UnixMicro())
	}
	if f.OnlyFailures {
		where = append(where, "NOT ok")
	}
	q := `SELECT ts, check_id, ok, state, root_cause, duration_ns, error, status_code, detail, interval_ns
		FROM check_results`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf("\nORDER BY ts DESC LIMIT $%d", len(args))

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: results: %w", err)
	}
	defer rows.Close()
	out := []ResultRow{}
	for rows.Next() {
		var (
			r        ResultRow
			id       int32
			state    string
			dur, ivl int64
			status   int32
		)
		if err := rows.Scan(&r.Time, &id, &r.OK, &state, &r.RootCause, &dur, &r.Error, &status, &r.Detail, &ivl); err != nil {
			return nil, fmt.Errorf("eventstore: results: %w", err)
		}
		r.Time = r.Time.UTC()
		r.Check = s.dict.name(id)
		r.State = check.State(state)
		r.Duration, r.Interval = time.Duration(dur), time.Duration(ivl)
		r.StatusCode = int(status)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: results: %w", err)
	}
	return out, nil
}

// Uptime is the availability of one check over [From, To); see the package
// doc for how time is attributed.
type Uptime struct {
	Check    string
	From, To time.Time

	Up, Down, Maintenance, Unknown time.Duration
	// Ratio is Up/(Up+Down); nil when Up+Down is zero.
	Ratio *float64

	Results, Failures int
	// Latency percentiles over the results in [From, To) outside maintenance.
	LatencyP50, LatencyP95, LatencyP99 time.Duration
}

// uptimeSQL attributes time to states with LEAD over the check's results,
// entirely inside DuckDB.
// $1 check id, $2 lookback start (µs), $3 to, $4 from, $5 end = min(to, now).
const uptimeSQL = `
WITH r AS (
	SELECT epoch_us(ts) AS t, ok, state, duration_ns, ` + coverageCapSQL + ` AS cap
	FROM check_results
	WHERE check_id = $1 AND ts >= make_timestamp($2) AND ts < make_timestamp($3)
), w AS (
	SELECT t, ok, duration_ns,
		greatest(t, $4) AS s,
		least(coalesce(lead(t) OVER (ORDER BY t), $5), t + cap, $5) AS e,
		CASE state
			WHEN 'up' THEN 'U'
			WHEN 'down' THEN 'D'
			WHEN 'unreachable' THEN 'D'
			WHEN 'flapping' THEN CASE WHEN ok THEN 'U' ELSE 'D' END
			WHEN 'maintenance' THEN 'M'
			ELSE 'X'
		END AS cls
	FROM r
), c AS (
	SELECT *, greatest(e - s, 0) AS cov, t >= $4 AS inrange FROM w
)
SELECT
	coalesce(sum(cov) FILTER (WHERE cls = 'U'), 0)::BIGINT,
	coalesce(sum(cov) FILTER (WHERE cls = 'D'), 0)::BIGINT,
	coalesce(sum(cov) FILTER (WHERE cls = 'M'), 0)::BIGINT,
	count(*) FILTER (WHERE inrange),
	count(*) FILTER (WHERE inrange AND NOT ok),
	quantile_disc(duration_ns, 0.50) FILTER (WHERE inrange AND cls <> 'M'),
	quantile_disc(duration_ns, 0.95) FILTER (WHERE inrange AND cls <> 'M'),
	quantile_disc(duration_ns, 0.99) FILTER (WHERE inrange AND cls <> 'M')
FROM c`

// Uptime computes the availability of a check over [from, to).
func (s *Store) Uptime(ctx context.Context, checkName string, from, to time.Time) (Uptime, error) {
	u := Uptime{Check: checkName, From: from, To: to}
	if checkName == "" {
		return u, fmt.Errorf("eventstore: uptime: %w", &check.FieldError{Field: "check", Reason: "is required"})
	}
	if err := checkRange(from, to); err != nil {
		return u, fmt.Errorf("eventstore: uptime: %w", err)
	}
	end := s.openEnd(to)
	span := max(end.Sub(from), 0)
	id, maxIv, ok := s.dict.lookup(checkName)
	if !ok {
		u.Unknown = span
		return u, nil
	}
	var (
		up, down, maint int64
		p50, p95, p99   sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, uptimeSQL, id, from.Add(-coverageCap(maxIv)).UnixMicro(), to.UnixMicro(),
		from.UnixMicro(), end.UnixMicro()).
		Scan(&up, &down, &maint, &u.Results, &u.Failures, &p50, &p95, &p99)
	if err != nil {
		return u, fmt.Errorf("eventstore: uptime of %q: %w", checkName, err)
	}
	u.Up = time.Duration(up) * time.Microsecond
	u.Down = time.Duration(down) * time.Microsecond
	u.Maintenance = time.Duration(maint) * time.Microsecond
	u.Unknown = span - u.Up - u.Down - u.Maintenance
	if up+down > 0 {
		r := float64(up) / float64(up+down)
		u.Ratio = &r
	}
	u.LatencyP50 = time.Duration(p50.Int64)
	u.LatencyP95 = time.Duration(p95.Int64)
	u.LatencyP99 = time.Duration(p99.Int64)
	return u, nil
}

// openEnd clips the end of a range to now: time that has not happened yet
// is neither up nor unknown.
func (s *Store) openEnd(to time.Time) time.Time {
	if now := s.o.Now(); now.Before(to) {
		return now
	}
	return to
}

// StateChange is a change of a check's state.
type StateChange struct {
	Time     time.Time
	From, To check.State
}

// stateChangesSQL finds state changes between consecutive results, and
// changes to unknown where a result's coverage cap runs out before the next
// result (or before the end of the range).
// $1 check id, $2 lookback start (µs), $3 to, $4 from, $5 end, $6 limit.
const stateChangesSQL = `
WITH r AS (
	SELECT epoch_us(ts) AS t, state, ` + coverageCapSQL + ` AS cap
	FROM check_results
	WHERE check_id = $1 AND ts >= make_timestamp($2) AND ts < make_timestamp($3)
), w AS (
	SELECT t, state, cap,
		lag(t) OVER o AS pt, lag(state) OVER o AS ps, lag(cap) OVER o AS pcap,
		lead(t) OVER o AS nt
	FROM r
	WINDOW o AS (ORDER BY t)
), ev AS (
	SELECT t,
		CASE WHEN pt IS NULL OR t - pt > pcap THEN 'unknown' ELSE ps END AS from_state,
		state AS to_state
	FROM w
	UNION ALL
	SELECT t + cap, state, 'unknown' FROM w WHERE t + cap < coalesce(nt, $5)
)
SELECT t, from_state, to_state FROM ev
WHERE from_state <> to_state AND t >= $4 AND t < $5
ORDER BY t DESC
LIMIT $6`

// StateChanges returns up to limit (0 means DefaultLimit) state changes of a
// check in [from, to), newest first.
func (s *Store) StateChanges(ctx context.Context, checkName string, from, to time.Time, limit int) ([]StateChange, error) {
	if checkName == "" {
		return nil, fmt.Errorf("eventstore: state changes: %w", &check.FieldError{Field: "check", Reason: "is required"})
	}
	if err := checkRange(from, to); err != nil {
		return nil, fmt.Errorf("eventstore: state changes: %w", err)
	}
	limit, err := normLimit("limit", limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: state changes: %w", err)
	}
	out := []StateChange{}
	id, maxIv, ok := s.dict.lookup(checkName)
	if !ok {
		return out, nil
	}
	end := s.openEnd(to)
	rows, err := s.db.QueryContext(ctx, stateChangesSQL, id, from.Add(-coverageCap(maxIv)).UnixMicro(), to.UnixMicro(),
		from.UnixMicro(), end.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: state changes of %q: %w", checkName, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t        int64
			from, to string
		)
		if err := rows.Scan(&t, &from, &to); err != nil {
			return nil, fmt.Errorf("eventstore: state changes of %q: %w", checkName, err)
		}
		out = append(out, StateChange{Time: time.UnixMicro(t).UTC(), From: check.State(from), To: check.State(to)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: state changes of %q: %w", checkName, err)
	}
	return out, nil
}
