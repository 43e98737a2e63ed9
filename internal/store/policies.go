package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/oncall"
)

// Escalation policies created through the API, kept as JSON with the name
// in a column. Incidents refer to a policy by id, so a policy that an open
// incident follows cannot be deleted.

func policyTarget(id int64) string { return "policy:" + strconv.FormatInt(id, 10) }

func encodePolicy(p oncall.Policy) (string, error) {
	switch {
	case strings.TrimSpace(p.Name) == "":
		return "", invalid("name", "is required")
	case len(p.Tiers) == 0:
		return "", invalid("tiers", "at least one is required")
	case p.Repeat < 0:
		return "", invalid("repeat", "must not be negative")
	}
	for i, t := range p.Tiers {
		if t.Timeout.D() <= 0 {
			return "", invalid(fmt.Sprintf("tiers[%d].timeout", i), "must be positive")
		}
	}
	p.ID = 0
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	return string(b), nil
}

func scanPolicy(row rowScanner) (oncall.Policy, error) {
	var id int64
	var spec string
	var prov bool
	if err := row.Scan(&id, &spec, &prov); err != nil {
		return oncall.Policy{}, err
	}
	var p oncall.Policy
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return oncall.Policy{}, fmt.Errorf("decode policy %d: %w", id, err)
	}
	p.ID, p.Provisioned = id, prov
	return p, nil
}

// CreatePolicy stores a new policy and returns it with its ID;
// ErrConflict when the name (any case) is taken.
func (s *Store) CreatePolicy(ctx context.Context, actor Actor, p oncall.Policy) (oncall.Policy, error) {
	spec, err := encodePolicy(p)
	if err != nil {
		return oncall.Policy{}, fmt.Errorf("create policy: %w", err)
	}
	err = s.write(ctx, "policy.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO policies (name, spec, provisioned) VALUES (?, ?, ?) RETURNING id`,
			p.Name, spec, p.Provisioned).Scan(&p.ID)
		if isUnique(err) {
			return fmt.Errorf("create policy %q: name already taken: %w", p.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create policy %q: %w", p.Name, err)
		}
		return s.audit(ctx, tx, actor, "policy.create", policyTarget(p.ID), nil, p)
	})
	if err != nil {
		return oncall.Policy{}, err
	}
	return p, nil
}

// UpdatePolicy replaces policy p.ID; ErrNotFound if it does not exist,
// ErrConflict when the new name is taken.
func (s *Store) UpdatePolicy(ctx context.Context, actor Actor, p oncall.Policy) (oncall.Policy, error) {
	spec, err := encodePolicy(p)
	if err != nil {
		return oncall.Policy{}, fmt.Errorf("update policy: %w", err)
	}
	err = s.write(ctx, "policy.update", func(tx *sql.Tx) error {
		before, err := getPolicy(ctx, tx, `id = ?`, p.ID)
		if err != nil {
			return fmt.Errorf("update policy: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE policies SET name = ?, spec = ?, provisioned = ? WHERE id = ?`,
			p.Name, spec, p.Provisioned, p.ID)
		if isUnique(err) {
			return fmt.Errorf("update policy %d: name %q already taken: %w", p.ID, p.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update policy %d: %w", p.ID, err)
		}
		return s.audit(ctx, tx, actor, "policy.update", policyTarget(p.ID), before, p)
	})
	if err != nil {
		return oncall.Policy{}, err
	}
	return p, nil
}

// DeletePolicy removes a policy. ErrNotFound if it does not exist;
// ErrConflict while an open incident follows it.
func (s *Store) DeletePolicy(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "policy.delete", func(tx *sql.Tx) error {
		before, err := getPolicy(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete policy: %w", err)
		}
		var inUse int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM incidents WHERE policy_id = ?
			AND status NOT IN ('resolved', 'closed') LIMIT 1`, id).Scan(&inUse)
		switch {
		case err == nil:
			return fmt.Errorf("delete policy %q: open incident %d follows it: %w", before.Name, inUse, ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("delete policy %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete policy %d: %w", id, err)
		}
		return s.audit(ctx, tx, actor, "policy.delete", policyTarget(id), before, nil)
	})
}

// GetPolicy returns one policy.
func (s *Store) GetPolicy(ctx context.Context, id int64) (oncall.Policy, error) {
	return getPolicy(ctx, s.r, `id = ?`, id)
}

// PolicyByName returns the policy with that name (any case).
func (s *Store) PolicyByName(ctx context.Context, name string) (oncall.Policy, error) {
	return getPolicy(ctx, s.r, `name = ?`, name)
}

func getPolicy(ctx context.Context, q queryer, where string, key any) (oncall.Policy, error) {
	p, err := scanPolicy(q.QueryRowContext(ctx, `SELECT id, spec, provisioned FROM policies WHERE `+where, key))
	if errors.Is(err, sql.ErrNoRows) {
		return oncall.Policy{}, fmt.Errorf("policy %v: %w", key, ErrNotFound)
	}
	if err != nil {
		return oncall.Policy{}, fmt.Errorf("policy %v: %w", key, err)
	}
	return p, nil
}

// ListPolicies returns every policy by name.
func (s *Store) ListPolicies(ctx context.Context) ([]oncall.Policy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, spec, provisioned FROM policies ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	var out []oncall.Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}
