package eventstore

import (
	"context"
	"fmt"
	"time"
)

// Compaction moves check results out of the time-ordered append table into
// the archive table sorted by (check_id, ts), one hour at a time (see the
// schema comment for why). It runs on the writer goroutine, so it never
// races an append.
const (
	compactUnit = time.Hour
	// compactGrace leaves late results of a just-finished hour a few minutes
	// to arrive before the hour is sorted; later stragglers are moved by the
	// next compaction as a small run of their own.
	compactGrace = 5 * time.Minute
)

// compactDue returns the cutoff to compact before when now has moved past
// the last one, or the zero time.
func compactCutoff(now time.Time) time.Time {
	return now.Add(-compactGrace).Truncate(compactUnit)
}

// compact moves every recent row older than before into the archive, one
// hour per transaction so memory stays bounded however much is pending. It
// returns the number of rows moved.
func (s *Store) compact(ctx context.Context, before time.Time) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rows, err := s.wconn.QueryContext(ctx, `
		SELECT DISTINCT epoch_us(date_trunc('hour', ts)) AS h
		FROM check_results_recent WHERE ts < make_timestamp($1) ORDER BY h`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("compact: list hours: %w", err)
	}
	var hours []int64
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return 0, fmt.Errorf("compact: list hours: %w", err)
		}
		hours = append(hours, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("compact: list hours: %w", err)
	}
	var moved int64
	for _, lo := range hours {
		hi := min(lo+compactUnit.Microseconds(), before.UnixMicro())
		n, err := s.compactRange(ctx, lo, hi)
		if err != nil {
			return moved, fmt.Errorf("compact hour %s: %w", time.UnixMicro(lo).UTC().Format(time.RFC3339), err)
		}
		moved += n
	}
	return moved, nil
}

func (s *Store) compactRange(ctx context.Context, lo, hi int64) (int64, error) {
	tx, err := s.wconn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `
		INSERT INTO check_results_archive
		SELECT * FROM check_results_recent
		WHERE ts >= make_timestamp($1) AND ts < make_timestamp($2)
		ORDER BY check_id, ts`, lo, hi)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM check_results_recent
		WHERE ts >= make_timestamp($1) AND ts < make_timestamp($2)`, lo, hi); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
