package eventstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Retention is the policy for how long events are kept. Zero fields do not
// limit.
type Retention struct {
	// MaxAge: events whose time is older than now − MaxAge may be deleted.
	MaxAge time.Duration
	// MaxBytes: when the database file uses more than this, the oldest
	// events may be deleted until the estimate fits. The size is the whole
	// DuckDB file's used blocks (events dominate it); the bytes an event
	// takes are estimated as that size over the number of events.
	MaxBytes int64
}

// RetentionPlan says what ApplyRetention will delete: the events with time
// before DeleteBefore and id at most UpToID (the last id when the plan was
// made, so events that arrive later, however old their timestamp, are kept
// until the next plan). A zero DeleteBefore deletes nothing.
type RetentionPlan struct {
	DeleteBefore time.Time
	UpToID       uint64
	Rows         int64
	Bytes        int64 // estimated
	Reason       string
}

// PlanRetention works out what r allows deleting at now. It deletes
// nothing. Each rule is applied on its own and the plan takes the later
// cutoff, so every planned row is allowed by at least one rule; the size
// rule never cuts inside a run of events that share a timestamp, so it may
// plan slightly fewer rows than the excess.
func (s *Store) PlanRetention(ctx context.Context, r Retention, now time.Time) (RetentionPlan, error) {
	var p RetentionPlan
	if err := s.syncEvents(ctx); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if r.MaxAge < 0 {
		return p, fmt.Errorf("eventstore: plan retention: %w", &check.FieldError{Field: "max_age", Reason: "must not be negative"})
	}
	if r.MaxBytes < 0 {
		return p, fmt.Errorf("eventstore: plan retention: %w", &check.FieldError{Field: "max_bytes", Reason: "must not be negative"})
	}
	var (
		total   int64
		maxID   uint64
		used    int64
		reasons []string
	)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM events`).Scan(&total, &maxID); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT used_blocks * block_size FROM pragma_database_size()`).Scan(&used); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: database size: %w", err)
	}
	p.UpToID = maxID
	if total == 0 {
		return p, nil
	}
	perRow := float64(used) / float64(total)
	if r.MaxAge > 0 {
		cut := now.Add(-r.MaxAge).UTC().Truncate(time.Microsecond)
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE ts < make_timestamp(?) AND id <= ?`,
			cut.UnixMicro(), maxID).Scan(&n); err != nil {
			return p, fmt.Errorf("eventstore: plan retention: %w", err)
		}
		if n > 0 {
			p.DeleteBefore = cut
			reasons = append(reasons, fmt.Sprintf("max age %s: %d events before %s", r.MaxAge, n, cut.Format(time.RFC3339)))
		}
	}
	if r.MaxBytes > 0 && used > r.MaxBytes {
		excess := int64(float64(used-r.MaxBytes)/perRow + 0.999999)
		var cut time.Time
		if excess >= total {
			var last time.Time
			if err := s.db.QueryRowContext(ctx, `SELECT max(ts) FROM events`).Scan(&last); err != nil {
				return p, fmt.Errorf("eventstore: plan retention: %w", err)
			}
			cut = last.UTC().Add(time.Microsecond)
		} else {
			// The (excess+1)-th oldest event: strictly older ones number
			// at most excess.
			if err := s.db.QueryRowContext(ctx, `SELECT ts FROM events ORDER BY ts LIMIT 1 OFFSET ?`, excess).Scan(&cut); err != nil {
				return p, fmt.Errorf("eventstore: plan retention: %w", err)
			}
			cut = cut.UTC()
		}
		if cut.After(p.DeleteBefore) {
			p.DeleteBefore = cut
		}
		reasons = append(reasons, fmt.Sprintf("max bytes %d: database uses %d bytes, about %d oldest events over", r.MaxBytes, used, excess))
	}
	if p.DeleteBefore.IsZero() {
		return p, nil
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE ts < make_timestamp(?) AND id <= ?`,
		p.DeleteBefore.UnixMicro(), maxID).Scan(&p.Rows); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if p.Rows == 0 {
		return RetentionPlan{UpToID: maxID}, nil
	}
	p.Bytes = int64(perRow * float64(p.Rows))
	p.Reason = strings.Join(reasons, "; ")
	return p, nil
}

// ApplyRetention deletes exactly the events p covers (see RetentionPlan),
// logging the plan first, and returns the number deleted. It then
// checkpoints so that the space of emptied row groups is freed.
func (s *Store) ApplyRetention(ctx context.Context, p RetentionPlan) (int64, error) {
	if p.DeleteBefore.IsZero() {
		return 0, nil
	}
	if err := s.syncEvents(ctx); err != nil {
		return 0, fmt.Errorf("eventstore: apply retention: %w", err)
	}
	s.log.Info("deleting events by retention policy", "before", p.DeleteBefore, "up_to_id", p.UpToID,
		"planned_rows", p.Rows, "estimated_bytes", p.Bytes, "reason", p.Reason)
	q := `DELETE FROM events WHERE ts < make_timestamp(?)`
	args := []any{p.DeleteBefore.UnixMicro()}
	if p.UpToID > 0 {
		q += ` AND id <= ?`
		args = append(args, p.UpToID)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("eventstore: apply retention: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("eventstore: apply retention: %w", err)
	}
	s.log.Info("deleted events by retention policy", "rows", n)
	if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		// The rows are gone either way; the space comes back at the next
		// checkpoint.
		s.log.Warn("checkpoint after retention failed", "err", err)
	}
	return n, nil
}
