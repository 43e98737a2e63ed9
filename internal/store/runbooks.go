package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/runbook"
)

// Runbooks come from two places: the API, and a directory provisioned at
// start and on reload (SyncProvisionedRunbooks). Each side only ever
// changes its own: the API cannot edit or delete a provisioned runbook
// (the next sync would undo it), and a sync never touches API runbooks.

func runbookTarget(id int64) string { return "runbook:" + strconv.FormatInt(id, 10) }

// provisioner is the audit actor of directory provisioning.
func provisionerActor() Actor { return Actor{Name: "system"} }

const runbookCols = `id, name, title, markdown, checks, rules, matchers, team, updated_at, updated_by, provisioned`

func scanRunbook(row rowScanner) (runbook.Runbook, error) {
	var rb runbook.Runbook
	var checks, rules, matchers sql.NullString
	var updated int64
	if err := row.Scan(&rb.ID, &rb.Name, &rb.Title, &rb.Markdown, &checks, &rules, &matchers, &rb.Team,
		&updated, &rb.UpdatedBy, &rb.Provisioned); err != nil {
		return runbook.Runbook{}, err
	}
	rb.UpdatedAt = fromMS(updated)
	for _, f := range []struct {
		col sql.NullString
		dst *[]string
	}{{checks, &rb.Checks}, {rules, &rb.Rules}, {matchers, &rb.Matchers}} {
		if f.col.Valid {
			if err := json.Unmarshal([]byte(f.col.String), f.dst); err != nil {
				return runbook.Runbook{}, fmt.Errorf("decode runbook %d: %w", rb.ID, err)
			}
		}
	}
	return rb, nil
}

// runbookArgs validates rb and returns name … provisioned in column order
// (without id).
func runbookArgs(rb runbook.Runbook) ([]any, error) {
	if strings.TrimSpace(rb.Name) == "" {
		return nil, invalid("name", "is required")
	}
	var cols [3]sql.NullString
	for i, v := range [][]string{rb.Checks, rb.Rules, rb.Matchers} {
		if len(v) == 0 {
			continue
		}
		var err error
		if cols[i], err = jsonText(v); err != nil {
			return nil, fmt.Errorf("encode runbook links: %w", err)
		}
	}
	return []any{rb.Name, rb.Title, rb.Markdown, cols[0], cols[1], cols[2], rb.Team, ms(rb.UpdatedAt),
		rb.UpdatedBy, rb.Provisioned}, nil
}

// stampRunbook sets the update time and author for a write by actor.
func (s *Store) stampRunbook(rb *runbook.Runbook, actor Actor) {
	if rb.UpdatedAt.IsZero() {
		rb.UpdatedAt = s.now()
	}
	rb.UpdatedAt = fromMS(ms(rb.UpdatedAt))
	if rb.UpdatedBy == "" {
		rb.UpdatedBy = actor.Name
	}
}

func insertRunbook(ctx context.Context, tx *sql.Tx, rb *runbook.Runbook) error {
	args, err := runbookArgs(*rb)
	if err != nil {
		return err
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO runbooks (name, title, markdown, checks, rules, matchers, team,
		updated_at, updated_by, provisioned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, args...).Scan(&rb.ID)
	if isUnique(err) {
		return fmt.Errorf("runbook %q: name already taken: %w", rb.Name, ErrConflict)
	}
	return err
}

func updateRunbook(ctx context.Context, tx *sql.Tx, rb runbook.Runbook) error {
	args, err := runbookArgs(rb)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE runbooks SET name = ?, title = ?, markdown = ?, checks = ?, rules = ?,
		matchers = ?, team = ?, updated_at = ?, updated_by = ?, provisioned = ? WHERE id = ?`, append(args, rb.ID)...)
	if isUnique(err) {
		return fmt.Errorf("runbook %d: name %q already taken: %w", rb.ID, rb.Name, ErrConflict)
	}
	return err
}

// CreateRunbook stores a new API runbook and returns it with its ID;
// ErrConflict when the name (any case) is taken.
func (s *Store) CreateRunbook(ctx context.Context, actor Actor, rb runbook.Runbook) (runbook.Runbook, error) {
	rb.Provisioned = false
	s.stampRunbook(&rb, actor)
	if _, err := runbookArgs(rb); err != nil {
		return runbook.Runbook{}, fmt.Errorf("create runbook: %w", err)
	}
	err := s.write(ctx, "runbook.create", func(tx *sql.Tx) error {
		if err := insertRunbook(ctx, tx, &rb); err != nil {
			return fmt.Errorf("create runbook: %w", err)
		}
		return s.audit(ctx, tx, actor, "runbook.create", runbookTarget(rb.ID), nil, rb)
	})
	if err != nil {
		return runbook.Runbook{}, err
	}
	return rb, nil
}

// UpdateRunbook replaces API runbook rb.ID. ErrNotFound if it does not
// exist; ErrConflict when it is provisioned or the new name is taken.
func (s *Store) UpdateRunbook(ctx context.Context, actor Actor, rb runbook.Runbook) (runbook.Runbook, error) {
	rb.Provisioned = false
	rb.UpdatedAt, rb.UpdatedBy = s.now(), ""
	s.stampRunbook(&rb, actor)
	if _, err := runbookArgs(rb); err != nil {
		return runbook.Runbook{}, fmt.Errorf("update runbook: %w", err)
	}
	err := s.write(ctx, "runbook.update", func(tx *sql.Tx) error {
		before, err := getRunbook(ctx, tx, `id = ?`, rb.ID)
		if err != nil {
			return fmt.Errorf("update runbook: %w", err)
		}
		if before.Provisioned {
			return fmt.Errorf("update runbook %q: it is provisioned from the runbook directory: %w", before.Name, ErrConflict)
		}
		if err := updateRunbook(ctx, tx, rb); err != nil {
			return fmt.Errorf("update runbook: %w", err)
		}
		return s.audit(ctx, tx, actor, "runbook.update", runbookTarget(rb.ID), before, rb)
	})
	if err != nil {
		return runbook.Runbook{}, err
	}
	return rb, nil
}

// DeleteRunbook removes an API runbook. ErrNotFound if it does not exist;
// ErrConflict when it is provisioned.
func (s *Store) DeleteRunbook(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "runbook.delete", func(tx *sql.Tx) error {
		before, err := getRunbook(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete runbook: %w", err)
		}
		if before.Provisioned {
			return fmt.Errorf("delete runbook %q: it is provisioned from the runbook directory: %w", before.Name, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM runbooks WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete runbook %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "runbook.delete", runbookTarget(id), before, nil)
	})
}

// GetRunbook returns one runbook.
func (s *Store) GetRunbook(ctx context.Context, id int64) (runbook.Runbook, error) {
	return getRunbook(ctx, s.r, `id = ?`, id)
}

// RunbookByName returns the runbook with that name (any case).
func (s *Store) RunbookByName(ctx context.Context, name string) (runbook.Runbook, error) {
	return getRunbook(ctx, s.r, `name = ?`, name)
}

func getRunbook(ctx context.Context, q queryer, where string, key any) (runbook.Runbook, error) {
	rb, err := scanRunbook(q.QueryRowContext(ctx, `SELECT `+runbookCols+` FROM runbooks WHERE `+where, key))
	if errors.Is(err, sql.ErrNoRows) {
		return runbook.Runbook{}, fmt.Errorf("runbook %v: %w", key, ErrNotFound)
	}
	if err != nil {
		return runbook.Runbook{}, fmt.Errorf("runbook %v: %w", key, err)
	}
	return rb, nil
}

// ListRunbooks returns every runbook by name.
func (s *Store) ListRunbooks(ctx context.Context) ([]runbook.Runbook, error) {
	return listRunbooks(ctx, s.r)
}

func listRunbooks(ctx context.Context, q queryer) ([]runbook.Runbook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+runbookCols+` FROM runbooks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list runbooks: %w", err)
	}
	defer rows.Close()
	var out []runbook.Runbook
	for rows.Next() {
		rb, err := scanRunbook(rows)
		if err != nil {
			return nil, fmt.Errorf("list runbooks: %w", err)
		}
		out = append(out, rb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runbooks: %w", err)
	}
	return out, nil
}

// sameRunbook reports whether a stored runbook already has rb's content,
// so an unchanged directory re-sync writes nothing and audits nothing.
func sameRunbook(a, b runbook.Runbook) bool {
	return a.Name == b.Name && a.Title == b.Title && a.Markdown == b.Markdown && a.Team == b.Team &&
		slices.Equal(a.Checks, b.Checks) && slices.Equal(a.Rules, b.Rules) && slices.Equal(a.Matchers, b.Matchers)
}

// SyncProvisionedRunbooks makes the provisioned runbooks equal to rbs, in
// one transaction: new names are inserted, changed ones updated, and
// provisioned runbooks absent from rbs deleted. API-created runbooks are
// never touched; a name in rbs that belongs to one is ErrConflict and
// nothing changes. Every change is audited as actor "system".
func (s *Store) SyncProvisionedRunbooks(ctx context.Context, rbs []runbook.Runbook) error {
	want := make(map[string]int, len(rbs))
	for i, rb := range rbs {
		if _, err := runbookArgs(rb); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				err = invalid(fmt.Sprintf("runbooks[%d].%s", i, fe.Field), fe.Reason)
			}
			return fmt.Errorf("sync runbooks: %w", err)
		}
		key := strings.ToLower(rb.Name)
		if j, dup := want[key]; dup {
			return fmt.Errorf("sync runbooks: %w", invalid(fmt.Sprintf("runbooks[%d].name", i),
				fmt.Sprintf("%q repeats runbooks[%d]", rb.Name, j)))
		}
		want[key] = i
	}
	return s.write(ctx, "runbook.sync", func(tx *sql.Tx) error {
		stored, err := listRunbooks(ctx, tx)
		if err != nil {
			return fmt.Errorf("sync runbooks: %w", err)
		}
		have := make(map[string]runbook.Runbook, len(stored))
		for _, old := range stored {
			key := strings.ToLower(old.Name)
			if i, ok := want[key]; ok && !old.Provisioned {
				return fmt.Errorf("sync runbooks: %q is also an API-created runbook: %w", rbs[i].Name, ErrConflict)
			}
			if !old.Provisioned {
				continue
			}
			if _, ok := want[key]; !ok {
				if _, err := tx.ExecContext(ctx, `DELETE FROM runbooks WHERE id = ?`, old.ID); err != nil {
					return fmt.Errorf("sync runbooks: delete %q: %w", old.Name, err)
				}
				if err := s.audit(ctx, tx, provisionerActor(), "runbook.delete", runbookTarget(old.ID), old, nil); err != nil {
					return err
				}
				continue
			}
			have[key] = old
		}
		for _, rb := range rbs {
			rb.Provisioned = true
			s.stampRunbook(&rb, provisionerActor())
			old, ok := have[strings.ToLower(rb.Name)]
			switch {
			case ok && sameRunbook(old, rb):
				continue
			case ok:
				rb.ID = old.ID
				if err := updateRunbook(ctx, tx, rb); err != nil {
					return fmt.Errorf("sync runbooks: %w", err)
				}
				if err := s.audit(ctx, tx, provisionerActor(), "runbook.update", runbookTarget(rb.ID), old, rb); err != nil {
					return err
				}
			default:
				if err := insertRunbook(ctx, tx, &rb); err != nil {
					return fmt.Errorf("sync runbooks: %w", err)
				}
				if err := s.audit(ctx, tx, provisionerActor(), "runbook.create", runbookTarget(rb.ID), nil, rb); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
