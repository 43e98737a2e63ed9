package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/oncall"
)

// On-call schedules created through the API. The whole struct is kept as
// JSON, with name, team and tier in columns for lookups; rotation rules
// are validated by package oncall, which the caller runs first.

func scheduleTarget(id int64) string { return "schedule:" + strconv.FormatInt(id, 10) }

func encodeSchedule(sc oncall.Schedule) (string, error) {
	switch {
	case strings.TrimSpace(sc.Name) == "":
		return "", invalid("name", "is required")
	case sc.Team != alert.TeamNOC && sc.Team != alert.TeamSOC:
		return "", invalid("team", fmt.Sprintf("%q must be %q or %q", sc.Team, alert.TeamNOC, alert.TeamSOC))
	case len(sc.Users) == 0:
		return "", invalid("users", "at least one is required")
	}
	sc.ID = 0 // the column is the truth
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("encode schedule: %w", err)
	}
	return string(b), nil
}

func scanSchedule(row rowScanner) (oncall.Schedule, error) {
	var id int64
	var spec string
	var prov bool
	if err := row.Scan(&id, &spec, &prov); err != nil {
		return oncall.Schedule{}, err
	}
	var sc oncall.Schedule
	if err := json.Unmarshal([]byte(spec), &sc); err != nil {
		return oncall.Schedule{}, fmt.Errorf("decode schedule %d: %w", id, err)
	}
	sc.ID, sc.Provisioned = id, prov
	return sc, nil
}

// CreateSchedule stores a new schedule and returns it with its ID;
// ErrConflict when the name (any case) is taken.
func (s *Store) CreateSchedule(ctx context.Context, actor Actor, sc oncall.Schedule) (oncall.Schedule, error) {
	spec, err := encodeSchedule(sc)
	if err != nil {
		return oncall.Schedule{}, fmt.Errorf("create schedule: %w", err)
	}
	err = s.write(ctx, "schedule.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO schedules (name, team, tier, spec, provisioned) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			sc.Name, sc.Team, sc.Tier, spec, sc.Provisioned).Scan(&sc.ID)
		if isUnique(err) {
			return fmt.Errorf("create schedule %q: name already taken: %w", sc.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create schedule %q: %w", sc.Name, err)
		}
		return s.audit(ctx, tx, actor, "schedule.create", scheduleTarget(sc.ID), nil, sc)
	})
	if err != nil {
		return oncall.Schedule{}, err
	}
	return sc, nil
}

// UpdateSchedule replaces schedule sc.ID; ErrNotFound if it does not
// exist, ErrConflict when the new name is taken.
func (s *Store) UpdateSchedule(ctx context.Context, actor Actor, sc oncall.Schedule) (oncall.Schedule, error) {
	spec, err := encodeSchedule(sc)
	if err != nil {
		return oncall.Schedule{}, fmt.Errorf("update schedule: %w", err)
	}
	err = s.write(ctx, "schedule.update", func(tx *sql.Tx) error {
		before, err := getSchedule(ctx, tx, sc.ID)
		if err != nil {
			return fmt.Errorf("update schedule: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE schedules SET name = ?, team = ?, tier = ?, spec = ?, provisioned = ? WHERE id = ?`,
			sc.Name, sc.Team, sc.Tier, spec, sc.Provisioned, sc.ID)
		if isUnique(err) {
			return fmt.Errorf("update schedule %d: name %q already taken: %w", sc.ID, sc.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update schedule %d: %w", sc.ID, err)
		}
		return s.audit(ctx, tx, actor, "schedule.update", scheduleTarget(sc.ID), before, sc)
	})
	if err != nil {
		return oncall.Schedule{}, err
	}
	return sc, nil
}

// DeleteSchedule removes a schedule; ErrNotFound if it does not exist.
func (s *Store) DeleteSchedule(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "schedule.delete", func(tx *sql.Tx) error {
		before, err := getSchedule(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete schedule: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete schedule %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "schedule.delete", scheduleTarget(id), before, nil)
	})
}

// GetSchedule returns one schedule.
func (s *Store) GetSchedule(ctx context.Context, id int64) (oncall.Schedule, error) {
	return getSchedule(ctx, s.r, id)
}

func getSchedule(ctx context.Context, q queryer, id int64) (oncall.Schedule, error) {
	sc, err := scanSchedule(q.QueryRowContext(ctx, `SELECT id, spec, provisioned FROM schedules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return oncall.Schedule{}, fmt.Errorf("schedule %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return oncall.Schedule{}, fmt.Errorf("schedule %d: %w", id, err)
	}
	return sc, nil
}

// ListSchedules returns every schedule by team, tier, then name.
func (s *Store) ListSchedules(ctx context.Context) ([]oncall.Schedule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, spec, provisioned FROM schedules ORDER BY team, tier, name`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []oncall.Schedule
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}
