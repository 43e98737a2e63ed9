package eventstore

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Retention is the policy for how long events are kept. Zero fields do not
// limit.
type Retention struct {
	// MaxAge: events whose time is older than now − MaxAge may be deleted.
	MaxAge time.Duration
	// MaxBytes: when the store uses more than this, the oldest events may
	// be deleted until the estimate fits. The size is the DuckDB file's
	// used blocks plus the event files (events dominate both); the bytes
	// an event takes are estimated as that size over the number of events.
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
		err     error
	)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(id), 0) FROM events`).Scan(&total, &maxID); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if used, err = s.usedBytes(ctx); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if s.ev.files != nil {
		_, rows, _, _, _, last := s.ev.files.totals()
		total, maxID = total+rows, max(maxID, last)
	}
	// A cut at or before the oldest event is read over the files whose
	// events may lie before it.
	count := func(cut time.Time) (int64, error) {
		sc := allFiles
		sc.hi = cut.UnixMicro() - 1
		rel, release := s.eventsFrom(sc)
		defer release()
		var n int64
		err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+rel+` WHERE ts < make_timestamp(?) AND id <= ?`,
			cut.UnixMicro(), maxID).Scan(&n)
		return n, err
	}
	p.UpToID = maxID
	if total == 0 {
		return p, nil
	}
	perRow := float64(used) / float64(total)
	if r.MaxAge > 0 {
		cut := now.Add(-r.MaxAge).UTC().Truncate(time.Microsecond)
		n, err := count(cut)
		if err != nil {
			return p, fmt.Errorf("eventstore: plan retention: %w", err)
		}
		if n > 0 {
			p.DeleteBefore = cut
			reasons = append(reasons, fmt.Sprintf("max age %s: %d events before %s", r.MaxAge, n, cut.Format(time.RFC3339)))
		}
	}
	if r.MaxBytes > 0 && used > r.MaxBytes {
		excess := int64(float64(used-r.MaxBytes)/perRow + 0.999999)
		cut, err := s.sizeCut(ctx, excess, total)
		if err != nil {
			return p, fmt.Errorf("eventstore: plan retention: %w", err)
		}
		if cut.After(p.DeleteBefore) {
			p.DeleteBefore = cut
		}
		reasons = append(reasons, fmt.Sprintf("max bytes %d: database uses %d bytes, about %d oldest events over", r.MaxBytes, used, excess))
	}
	if p.DeleteBefore.IsZero() {
		return p, nil
	}
	if p.Rows, err = count(p.DeleteBefore); err != nil {
		return p, fmt.Errorf("eventstore: plan retention: %w", err)
	}
	if p.Rows == 0 {
		return RetentionPlan{UpToID: maxID}, nil
	}
	p.Bytes = int64(perRow * float64(p.Rows))
	p.Reason = strings.Join(reasons, "; ")
	return p, nil
}

// usedBytes is the storage the size rule limits: the DuckDB file's used
// blocks and the event files.
func (s *Store) usedBytes(ctx context.Context) (int64, error) {
	var used int64
	if err := s.db.QueryRowContext(ctx, `SELECT used_blocks * block_size FROM pragma_database_size()`).Scan(&used); err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	if s.ev.files != nil {
		_, _, bytes, _, _, _ := s.ev.files.totals()
		used += bytes
	}
	return used, nil
}

// sizeCut returns the time before which the excess oldest of total events
// lie: strictly older events number at most excess.
func (s *Store) sizeCut(ctx context.Context, excess, total int64) (time.Time, error) {
	rel, release := s.eventsFrom(allFiles)
	defer release()
	var cut time.Time
	if excess >= total {
		if err := s.db.QueryRowContext(ctx, `SELECT max(ts) FROM `+rel).Scan(&cut); err != nil {
			return cut, err
		}
		return cut.UTC().Add(time.Microsecond), nil
	}
	// The (excess+1)-th oldest event.
	if err := s.db.QueryRowContext(ctx, `SELECT ts FROM `+rel+` ORDER BY ts LIMIT 1 OFFSET ?`, excess).Scan(&cut); err != nil {
		return cut, err
	}
	return cut.UTC(), nil
}

// retainFiles applies p to the event files: a file whose events all fall
// under p is deleted, one that holds events on both sides of the cut is
// rewritten without those that do. It returns the events deleted.
func (s *Store) retainFiles(p RetentionPlan) (int64, error) {
	fs := s.ev.files
	if fs == nil {
		return 0, nil
	}
	fs.changeMu.Lock()
	defer fs.changeMu.Unlock()
	cut, upTo := p.DeleteBefore.UnixMicro(), p.UpToID
	if upTo == 0 {
		upTo = math.MaxUint64
	}
	fs.mu.Lock()
	var hit []*eventFile
	for _, f := range fs.files {
		if f.minTS < cut && f.first <= upTo {
			hit = append(hit, f)
		}
	}
	fs.mu.Unlock()
	var n int64
	for _, f := range hit {
		if f.maxTS < cut && f.last <= upTo {
			fs.replace([]*eventFile{f}, nil)
			n += f.rows
			continue
		}
		nf, dropped, err := rewriteFiles(fs.dir, []*eventFile{f}, func(id uint64, ts int64) bool { return ts < cut && id <= upTo })
		if err != nil {
			return n, err
		}
		if dropped > 0 {
			fs.replace([]*eventFile{f}, nf)
			n += dropped
		} else if nf != nil {
			fs.remove([]string{nf.path}) // nothing to drop after all
		}
	}
	return n, nil
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
	fn, ferr := s.retainFiles(p)
	n += fn
	s.log.Info("deleted events by retention policy", "rows", n)
	if ferr != nil {
		return n, fmt.Errorf("eventstore: apply retention: %w", ferr)
	}
	if _, err := s.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		// The rows are gone either way; the space comes back at the next
		// checkpoint.
		s.log.Warn("checkpoint after retention failed", "err", err)
	}
	return n, nil
}
