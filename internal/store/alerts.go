package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Alerts are written by the pipeline, not by a person, so they carry no
// Actor and no audit entry.

func validateAlert(a *alert.Alert) error {
	if a.Fingerprint == "" {
		if len(a.Labels) == 0 {
			return invalid("fingerprint", "is required when there are no labels to derive it from")
		}
		a.Fingerprint = alert.Fingerprint(a.Labels)
	}
	switch {
	case a.Team != alert.TeamNOC && a.Team != alert.TeamSOC:
		return invalid("team", fmt.Sprintf("%q must be %q or %q", a.Team, alert.TeamNOC, alert.TeamSOC))
	case a.Origin != alert.OriginNatural && a.Origin != alert.OriginHuman:
		return invalid("origin", fmt.Sprintf("%q must be %q or %q", a.Origin, alert.OriginNatural, alert.OriginHuman))
	case a.Severity == "":
		return invalid("severity", "is required")
	case strings.TrimSpace(a.Title) == "":
		return invalid("title", "is required")
	case a.StartedAt.IsZero():
		return invalid("started_at", "is required")
	}
	return nil
}

const alertCols = `id, fingerprint, status, team, origin, severity, title, description, labels, source,
	started_at, resolved_at, last_seen_at, occurrences`

func scanAlert(row interface{ Scan(...any) error }) (alert.Alert, error) {
	var a alert.Alert
	var labels sql.NullString
	var started, seen int64
	var resolved sql.NullInt64
	if err := row.Scan(&a.ID, &a.Fingerprint, &a.Status, &a.Team, &a.Origin, &a.Severity, &a.Title,
		&a.Description, &labels, &a.Source, &started, &resolved, &seen, &a.Occurrences); err != nil {
		return alert.Alert{}, err
	}
	a.StartedAt, a.ResolvedAt, a.LastSeenAt = fromMS(started), fromMSPtr(resolved), fromMS(seen)
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
			return alert.Alert{}, fmt.Errorf("decode labels of alert %d: %w", a.ID, err)
		}
	}
	return a, nil
}

// OpenAlert raises a. If an alert with the same fingerprint is already
// firing, that alert is returned with created=false after counting one more
// occurrence and moving last_seen_at to a.LastSeenAt (or a.StartedAt when
// unset; it never moves backwards). Otherwise a new firing alert is stored
// and returned with created=true. A single upsert against the partial
// unique index does both, so concurrent calls, even from two processes,
// never open two firing alerts for one fingerprint. An empty Fingerprint is
// derived from Labels.
func (s *Store) OpenAlert(ctx context.Context, a alert.Alert) (alert.Alert, bool, error) {
	if err := validateAlert(&a); err != nil {
		return alert.Alert{}, false, fmt.Errorf("open alert: %w", err)
	}
	seen := a.LastSeenAt
	if seen.IsZero() || seen.Before(a.StartedAt) {
		seen = a.StartedAt
	}
	labels, err := jsonText(a.Labels)
	if err != nil {
		return alert.Alert{}, false, fmt.Errorf("open alert: encode labels: %w", err)
	}
	var out alert.Alert
	err = s.write(ctx, "alert.open", func(tx *sql.Tx) error {
		var err error
		out, err = scanAlert(tx.QueryRowContext(ctx, `INSERT INTO alerts
			(fingerprint, status, team, origin, severity, title, description, labels, source,
			 started_at, last_seen_at, occurrences)
			VALUES (?, 'firing', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (fingerprint) WHERE status = 'firing' DO UPDATE SET
				occurrences = occurrences + 1,
				last_seen_at = MAX(last_seen_at, excluded.last_seen_at)
			RETURNING `+alertCols,
			a.Fingerprint, a.Team, a.Origin, a.Severity, a.Title, a.Description, labels, a.Source,
			ms(a.StartedAt), ms(seen)))
		if err != nil {
			return fmt.Errorf("open alert %s: %w", a.Fingerprint, err)
		}
		return nil
	})
	if err != nil {
		return alert.Alert{}, false, err
	}
	// A fresh row starts at 1; the upsert branch always makes it at least 2.
	return out, out.Occurrences == 1, nil
}

// ResolveAlert resolves the firing alert with that fingerprint at at and
// returns it; ErrNotFound when none is firing.
func (s *Store) ResolveAlert(ctx context.Context, fingerprint string, at time.Time) (alert.Alert, error) {
	if at.IsZero() {
		return alert.Alert{}, fmt.Errorf("resolve alert: %w", invalid("resolved_at", "is required"))
	}
	var out alert.Alert
	err := s.write(ctx, "alert.resolve", func(tx *sql.Tx) error {
		var err error
		out, err = scanAlert(tx.QueryRowContext(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = ?
			WHERE fingerprint = ? AND status = 'firing' RETURNING `+alertCols, ms(at), fingerprint))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("resolve alert %s: no firing alert: %w", fingerprint, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("resolve alert %s: %w", fingerprint, err)
		}
		return nil
	})
	if err != nil {
		return alert.Alert{}, err
	}
	return out, nil
}

// AlertFilter selects alerts. Empty fields match everything. BeforeID
// pages backwards: pass the smallest ID of the previous page.
type AlertFilter struct {
	Status, Team, Severity, Source string
	Limit                          int // default 100, at most 1000; ignored by CountAlerts
	BeforeID                       int64
}

func (f AlertFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Team != "" {
		add("team = ?", f.Team)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListAlerts returns matching alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]alert.Alert, error) {
	where, args := f.where()
	rows, err := s.r.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts`+where+` ORDER BY id DESC LIMIT ?`,
		append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// GetAlert returns one alert by id.
func (s *Store) GetAlert(ctx context.Context, id int64) (alert.Alert, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Alert{}, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return alert.Alert{}, fmt.Errorf("alert %d: %w", id, err)
	}
	return a, nil
}

// CountAlerts returns how many alerts match f (Limit is ignored).
func (s *Store) CountAlerts(ctx context.Context, f AlertFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count alerts: %w", err)
	}
	return n, nil
}
