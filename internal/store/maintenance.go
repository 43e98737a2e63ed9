package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/maintenance"
)

// Maintenance windows created through the API. The store checks only what
// keeps rows meaningful; cron and time-zone validation belong to package
// maintenance, which the caller runs first.

func windowTarget(id int64) string { return "maintenance:" + strconv.FormatInt(id, 10) }

func validateWindow(w maintenance.Window) error {
	switch {
	case strings.TrimSpace(w.Name) == "":
		return invalid("name", "is required")
	case w.Start.IsZero():
		return invalid("start", "is required")
	case w.Duration.D() < time.Second:
		return invalid("duration", "must be at least 1s")
	case w.Until != nil && !w.Until.After(w.Start):
		return invalid("until", "must be after start")
	}
	return nil
}

// CreateWindow stores a new window and returns it with its ID. CreatedBy
// defaults to the actor's name.
func (s *Store) CreateWindow(ctx context.Context, actor Actor, w maintenance.Window) (maintenance.Window, error) {
	if err := validateWindow(w); err != nil {
		return maintenance.Window{}, fmt.Errorf("create window: %w", err)
	}
	w.Provisioned = false
	if w.CreatedBy == "" {
		w.CreatedBy = actor.Name
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = s.now()
	}
	w = roundWindow(w)
	checks, labels, err := windowJSON(w)
	if err != nil {
		return maintenance.Window{}, fmt.Errorf("create window: %w", err)
	}
	err = s.write(ctx, "maintenance.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO windows
			(name, start, duration_ms, schedule, timezone, until, checks, labels, comment, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			w.Name, ms(w.Start), w.Duration.D().Milliseconds(), w.Schedule, w.TimeZone, msPtr(w.Until),
			checks, labels, w.Comment, w.CreatedBy, ms(w.CreatedAt)).Scan(&w.ID)
		if err != nil {
			return fmt.Errorf("create window %q: %w", w.Name, err)
		}
		return s.audit(ctx, tx, actor, "maintenance.create", windowTarget(w.ID), nil, w)
	})
	if err != nil {
		return maintenance.Window{}, err
	}
	return w, nil
}

// UpdateWindow replaces window w.ID (keeping its CreatedBy and CreatedAt)
// and returns the stored result; ErrNotFound if it does not exist.
func (s *Store) UpdateWindow(ctx context.Context, actor Actor, w maintenance.Window) (maintenance.Window, error) {
	if err := validateWindow(w); err != nil {
		return maintenance.Window{}, fmt.Errorf("update window: %w", err)
	}
	w.Provisioned = false
	w = roundWindow(w)
	checks, labels, err := windowJSON(w)
	if err != nil {
		return maintenance.Window{}, fmt.Errorf("update window: %w", err)
	}
	err = s.write(ctx, "maintenance.update", func(tx *sql.Tx) error {
		before, err := getWindow(ctx, tx, w.ID)
		if err != nil {
			return fmt.Errorf("update window: %w", err)
		}
		w.CreatedBy, w.CreatedAt = before.CreatedBy, before.CreatedAt
		if _, err := tx.ExecContext(ctx, `UPDATE windows SET name = ?, start = ?, duration_ms = ?, schedule = ?,
			timezone = ?, until = ?, checks = ?, labels = ?, comment = ? WHERE id = ?`,
			w.Name, ms(w.Start), w.Duration.D().Milliseconds(), w.Schedule, w.TimeZone, msPtr(w.Until),
			checks, labels, w.Comment, w.ID); err != nil {
			return fmt.Errorf("update window %d: %w", w.ID, err)
		}
		return s.audit(ctx, tx, actor, "maintenance.update", windowTarget(w.ID), before, w)
	})
	if err != nil {
		return maintenance.Window{}, err
	}
	return w, nil
}

// DeleteWindow removes a window; ErrNotFound if it does not exist.
func (s *Store) DeleteWindow(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "maintenance.delete", func(tx *sql.Tx) error {
		before, err := getWindow(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete window: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM windows WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete window %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "maintenance.delete", windowTarget(id), before, nil)
	})
}

// GetWindow returns one window.
func (s *Store) GetWindow(ctx context.Context, id int64) (maintenance.Window, error) {
	return getWindow(ctx, s.r, id)
}

const windowCols = `id, name, start, duration_ms, schedule, timezone, until, checks, labels, comment, created_by, created_at`

func getWindow(ctx context.Context, q queryer, id int64) (maintenance.Window, error) {
	w, err := scanWindow(q.QueryRowContext(ctx, `SELECT `+windowCols+` FROM windows WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return maintenance.Window{}, fmt.Errorf("window %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return maintenance.Window{}, fmt.Errorf("window %d: %w", id, err)
	}
	return w, nil
}

// ListWindows returns every window ordered by start, then id.
func (s *Store) ListWindows(ctx context.Context) ([]maintenance.Window, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+windowCols+` FROM windows ORDER BY start, id`)
	if err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	defer rows.Close()
	var out []maintenance.Window
	for rows.Next() {
		w, err := scanWindow(rows)
		if err != nil {
			return nil, fmt.Errorf("list windows: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	return out, nil
}

func scanWindow(row interface{ Scan(...any) error }) (maintenance.Window, error) {
	var w maintenance.Window
	var start, dur, created int64
	var until sql.NullInt64
	var checks, labels sql.NullString
	if err := row.Scan(&w.ID, &w.Name, &start, &dur, &w.Schedule, &w.TimeZone, &until,
		&checks, &labels, &w.Comment, &w.CreatedBy, &created); err != nil {
		return maintenance.Window{}, err
	}
	w.Start, w.CreatedAt, w.Until = fromMS(start), fromMS(created), fromMSPtr(until)
	w.Duration = check.Duration(time.Duration(dur) * time.Millisecond)
	if checks.Valid {
		if err := json.Unmarshal([]byte(checks.String), &w.Checks); err != nil {
			return maintenance.Window{}, fmt.Errorf("decode checks of window %d: %w", w.ID, err)
		}
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &w.Labels); err != nil {
			return maintenance.Window{}, fmt.Errorf("decode labels of window %d: %w", w.ID, err)
		}
	}
	return w, nil
}

func windowJSON(w maintenance.Window) (checks, labels sql.NullString, err error) {
	if len(w.Checks) > 0 {
		if checks, err = jsonText(w.Checks); err != nil {
			return
		}
	}
	if len(w.Labels) > 0 {
		labels, err = jsonText(w.Labels)
	}
	return
}

// roundWindow truncates times to the stored millisecond precision and UTC,
// so the value returned equals what a later Get returns.
func roundWindow(w maintenance.Window) maintenance.Window {
	w.Start = fromMS(ms(w.Start))
	w.CreatedAt = fromMS(ms(w.CreatedAt))
	if w.Until != nil {
		u := fromMS(ms(*w.Until))
		w.Until = &u
	}
	w.Duration = check.Duration(w.Duration.D().Truncate(time.Millisecond))
	if len(w.Checks) == 0 {
		w.Checks = nil
	}
	if len(w.Labels) == 0 {
		w.Labels = nil
	}
	return w
}
