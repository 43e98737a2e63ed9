package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// uptimeAllSQL is uptimeSQL for every check at once: the same attribution
// of time with LEAD, partitioned by check, grouped by check. The latency
// percentiles come from uptimeAllLatencySQL: computed here, three filtered
// quantiles per group made the query several times slower than one
// list-quantile over pre-filtered rows.
//
// The state is reduced to a small class before the window, because the
// window operator sorts and carries every column it is given.
//
// The lookback ($1) is the one for the check with the largest interval.
// For any other check it reaches further back than its own query would,
// which changes nothing: a result older than from − cap(its max interval)
// has its coverage end before from (so it adds no time), is not in range
// (so it adds no count), and precedes every row of the check's own window
// (so it changes no other row's LEAD).
//
// $1 lookback start (µs), $2 to, $3 from, $4 end = min(to, now).
const uptimeAllSQL = `
WITH r AS (
	SELECT check_id, epoch_us(ts) AS t, ok, ` + coverageCapSQL + ` AS cap,
		CASE
			WHEN state = 'up' OR (state = 'flapping' AND ok) THEN 1
			WHEN state IN ('down', 'unreachable', 'flapping') THEN 2
			WHEN state = 'maintenance' THEN 3
			ELSE 0
		END::UTINYINT AS cls
	FROM check_results
	WHERE ts >= make_timestamp($1) AND ts < make_timestamp($2)
), c AS (
	SELECT check_id, t, ok, cls,
		greatest(least(coalesce(lead(t) OVER (PARTITION BY check_id ORDER BY t), $4), t + cap, $4) - greatest(t, $3), 0) AS cov
	FROM r
)
SELECT check_id,
	sum(CASE WHEN cls = 1 THEN cov ELSE 0 END)::BIGINT,
	sum(CASE WHEN cls = 2 THEN cov ELSE 0 END)::BIGINT,
	sum(CASE WHEN cls = 3 THEN cov ELSE 0 END)::BIGINT,
	count_if(t >= $3),
	count_if(t >= $3 AND NOT ok)
FROM c
GROUP BY check_id`

// uptimeAllLatencySQL is the latency percentiles of uptimeSQL for every
// check: results in [from, to) outside maintenance.
// $1 from (µs), $2 to.
const uptimeAllLatencySQL = `
SELECT check_id, quantile_disc(duration_ns, [0.50, 0.95, 0.99])
FROM check_results
WHERE ts >= make_timestamp($1) AND ts < make_timestamp($2) AND state <> 'maintenance'
GROUP BY check_id`

// UptimeAll computes the availability over [from, to) of every check that
// has ever stored a result, in one query, with the same semantics as Uptime
// (see the package doc): for every such check, UptimeAll(...)[name] equals
// Uptime(ctx, name, from, to). A check with no result covering the range is
// in the map with all of its time Unknown. A check that never stored a
// result is absent; Uptime would report its whole span as Unknown.
func (s *Store) UptimeAll(ctx context.Context, from, to time.Time) (map[string]Uptime, error) {
	if err := checkRange(from, to); err != nil {
		return nil, fmt.Errorf("eventstore: uptime of all checks: %w", err)
	}
	end := s.openEnd(to)
	span := max(end.Sub(from), 0)
	names, maxIv := s.dict.all()
	out := make(map[string]Uptime, len(names))
	for _, n := range names {
		out[n] = Uptime{Check: n, From: from, To: to, Unknown: span}
	}
	if len(names) == 0 {
		return out, nil
	}
	// One read transaction: both queries see the same rows.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("eventstore: uptime of all checks: %w", err)
	}
	defer tx.Rollback()
	if err := s.uptimeAllTimes(ctx, tx, out, from, to, end, span, maxIv); err != nil {
		return nil, fmt.Errorf("eventstore: uptime of all checks: %w", err)
	}
	if err := s.uptimeAllLatency(ctx, tx, out, from, to); err != nil {
		return nil, fmt.Errorf("eventstore: uptime of all checks: latency: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("eventstore: uptime of all checks: %w", err)
	}
	return out, nil
}

// nameOf resolves a check id from a result row. Names enter the dictionary
// before their rows are written, so an id without a name is a corrupt
// dictionary: say so rather than guess.
func (s *Store) nameOf(id int32) (string, error) {
	n := s.dict.name(id)
	if n == "" {
		return "", fmt.Errorf("result rows name unknown check id %d", id)
	}
	return n, nil
}

func (s *Store) uptimeAllTimes(ctx context.Context, tx *sql.Tx, out map[string]Uptime, from, to, end time.Time,
	span, maxIv time.Duration) error {
	rows, err := tx.QueryContext(ctx, uptimeAllSQL, from.Add(-coverageCap(maxIv)).UnixMicro(), to.UnixMicro(),
		from.UnixMicro(), end.UnixMicro())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id              int32
			up, down, maint int64
			u               = Uptime{From: from, To: to}
		)
		if err := rows.Scan(&id, &up, &down, &maint, &u.Results, &u.Failures); err != nil {
			return err
		}
		if u.Check, err = s.nameOf(id); err != nil {
			return err
		}
		u.Up = time.Duration(up) * time.Microsecond
		u.Down = time.Duration(down) * time.Microsecond
		u.Maintenance = time.Duration(maint) * time.Microsecond
		u.Unknown = span - u.Up - u.Down - u.Maintenance
		if up+down > 0 {
			r := float64(up) / float64(up+down)
			u.Ratio = &r
		}
		out[u.Check] = u
	}
	return rows.Err()
}

func (s *Store) uptimeAllLatency(ctx context.Context, tx *sql.Tx, out map[string]Uptime, from, to time.Time) error {
	rows, err := tx.QueryContext(ctx, uptimeAllLatencySQL, from.UnixMicro(), to.UnixMicro())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int32
			qs duckdb.Composite[[]int64]
		)
		if err := rows.Scan(&id, &qs); err != nil {
			return err
		}
		name, err := s.nameOf(id)
		if err != nil {
			return err
		}
		u, ok := out[name]
		if q := qs.Get(); ok && len(q) == 3 {
			u.LatencyP50, u.LatencyP95, u.LatencyP99 = time.Duration(q[0]), time.Duration(q[1]), time.Duration(q[2])
			out[name] = u
		}
	}
	return rows.Err()
}

// all returns every known check name and the largest interval recorded for
// any of them.
func (d *dictionary) all() (names []string, maxInterval time.Duration) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	names = make([]string, 0, len(d.ids))
	for id, n := range d.names {
		if n == "" {
			continue
		}
		names = append(names, n)
		maxInterval = max(maxInterval, d.maxInterval[id])
	}
	return names, maxInterval
}
