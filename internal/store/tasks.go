package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/nocsoc/nocsoc/internal/incident"
)

// Tasks are an incident's checklist; the service seeds them from the
// runbook and people tick them off.

const taskCols = `id, incident_id, title, done, done_by, done_at, position, from_runbook`

func scanTask(row rowScanner) (incident.Task, error) {
	var tk incident.Task
	var doneAt sql.NullInt64
	if err := row.Scan(&tk.ID, &tk.IncidentID, &tk.Title, &tk.Done, &tk.DoneBy, &doneAt, &tk.Position, &tk.FromRunbook); err != nil {
		return incident.Task{}, err
	}
	tk.DoneAt = fromMSPtr(doneAt)
	return tk, nil
}

func validateTask(tk incident.Task) error {
	switch {
	case tk.IncidentID == 0:
		return invalid("incident_id", "is required")
	case strings.TrimSpace(tk.Title) == "":
		return invalid("title", "is required")
	case tk.Done && tk.DoneAt == nil:
		return invalid("done_at", "is required when done")
	}
	return nil
}

// AddTask adds a task to its incident and returns it with its ID;
// ErrNotFound when the incident does not exist.
func (t *Tx) AddTask(tk incident.Task) (incident.Task, error) {
	if err := validateTask(tk); err != nil {
		return incident.Task{}, fmt.Errorf("add task: %w", err)
	}
	out, err := scanTask(t.tx.QueryRowContext(t.ctx, `INSERT INTO tasks
		(incident_id, title, done, done_by, done_at, position, from_runbook)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+taskCols,
		tk.IncidentID, tk.Title, tk.Done, tk.DoneBy, msPtr(tk.DoneAt), tk.Position, tk.FromRunbook))
	if isForeignKey(err) {
		return incident.Task{}, fmt.Errorf("add task: incident %d: %w", tk.IncidentID, ErrNotFound)
	}
	if err != nil {
		return incident.Task{}, fmt.Errorf("add task to incident %d: %w", tk.IncidentID, err)
	}
	return out, nil
}

// UpdateTask replaces task tk.ID (its incident cannot change);
// ErrNotFound if it does not exist.
func (t *Tx) UpdateTask(tk incident.Task) error {
	// The incident is fixed, so callers that only know the task id need
	// not pass it.
	probe := tk
	probe.IncidentID = max(probe.IncidentID, 1)
	if err := validateTask(probe); err != nil {
		return fmt.Errorf("update task %d: %w", tk.ID, err)
	}
	res, err := t.tx.ExecContext(t.ctx, `UPDATE tasks SET title = ?, done = ?, done_by = ?, done_at = ?,
		position = ?, from_runbook = ? WHERE id = ?`,
		tk.Title, tk.Done, tk.DoneBy, msPtr(tk.DoneAt), tk.Position, tk.FromRunbook, tk.ID)
	return oneRow(res, err, fmt.Sprintf("update task %d", tk.ID))
}

// Tasks returns an incident's tasks by position, then id.
func (s *Store) Tasks(ctx context.Context, incidentID int64) ([]incident.Task, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE incident_id = ? ORDER BY position, id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("tasks of incident %d: %w", incidentID, err)
	}
	defer rows.Close()
	var out []incident.Task
	for rows.Next() {
		tk, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("tasks of incident %d: %w", incidentID, err)
		}
		out = append(out, tk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tasks of incident %d: %w", incidentID, err)
	}
	return out, nil
}

// GetTask returns one task.
func (s *Store) GetTask(ctx context.Context, id int64) (incident.Task, error) {
	tk, err := scanTask(s.r.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return incident.Task{}, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return incident.Task{}, fmt.Errorf("task %d: %w", id, err)
	}
	return tk, nil
}
