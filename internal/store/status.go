package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// SavedStatus is the last known state of one check, persisted so that a
// restart keeps states and open alerts consistent.
type SavedStatus struct {
	Check     string          `json:"check"`
	State     string          `json:"state"`
	RootCause string          `json:"root_cause,omitempty"`
	Since     time.Time       `json:"since"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// SaveStatuses upserts a batch of statuses in one transaction. The whole
// batch is checked first: one bad entry rejects it and nothing is written.
func (s *Store) SaveStatuses(ctx context.Context, sts []SavedStatus) error {
	for i, st := range sts {
		if st.Check == "" {
			return fmt.Errorf("save statuses: %w", invalid(fmt.Sprintf("[%d].check", i), "is required"))
		}
		if !slices.Contains(check.States, check.State(st.State)) {
			return fmt.Errorf("save statuses: %w", invalid(fmt.Sprintf("[%d].state", i), fmt.Sprintf("unknown state %q", st.State)))
		}
		if st.Since.IsZero() {
			return fmt.Errorf("save statuses: %w", invalid(fmt.Sprintf("[%d].since", i), "is required"))
		}
		if len(st.Data) > 0 && !json.Valid(st.Data) {
			return fmt.Errorf("save statuses: %w", invalid(fmt.Sprintf("[%d].data", i), "is not valid JSON"))
		}
	}
	if len(sts) == 0 {
		return nil
	}
	return s.write(ctx, "status.save", func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO statuses (check_name, state, root_cause, since, data)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (check_name) DO UPDATE SET state = excluded.state, root_cause = excluded.root_cause,
				since = excluded.since, data = excluded.data`)
		if err != nil {
			return fmt.Errorf("save statuses: %w", err)
		}
		defer stmt.Close()
		for _, st := range sts {
			var data sql.NullString
			if len(st.Data) > 0 {
				data = sql.NullString{String: string(st.Data), Valid: true}
			}
			if _, err := stmt.ExecContext(ctx, st.Check, st.State, st.RootCause, ms(st.Since), data); err != nil {
				return fmt.Errorf("save status of %q: %w", st.Check, err)
			}
		}
		return nil
	})
}

// LoadStatuses returns every saved status ordered by check name.
func (s *Store) LoadStatuses(ctx context.Context) ([]SavedStatus, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT check_name, state, root_cause, since, data FROM statuses ORDER BY check_name`)
	if err != nil {
		return nil, fmt.Errorf("load statuses: %w", err)
	}
	defer rows.Close()
	var out []SavedStatus
	for rows.Next() {
		var st SavedStatus
		var since int64
		var data sql.NullString
		if err := rows.Scan(&st.Check, &st.State, &st.RootCause, &since, &data); err != nil {
			return nil, fmt.Errorf("load statuses: %w", err)
		}
		st.Since = fromMS(since)
		if data.Valid {
			st.Data = json.RawMessage(data.String)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load statuses: %w", err)
	}
	return out, nil
}
