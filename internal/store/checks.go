package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
)

// Checks created through the API live here; provisioned checks live in the
// config file. The spec is stored as its JSON form. PushSpec.Token is not
// part of that JSON: when set, its hash is registered in push_tokens in the
// same transaction, and the plain secret is not kept. A push check created
// without a token gets no mapping: the caller generates one (so it can show
// it once) and registers it with SetPushToken.

func checkTarget(name string) string { return "check:" + name }

// prepareCheck fills in defaults and validates, so every stored spec is
// complete and valid. Dependencies are not checked: that needs the whole
// set, provisioned checks included, which only the caller has.
func prepareCheck(s *check.Spec) (string, error) {
	s.Normalize()
	if err := s.Validate(); err != nil {
		var fe *check.FieldError
		if errors.As(err, &fe) {
			return "", invalid(fe.Field, fe.Reason)
		}
		return "", invalid("spec", err.Error())
	}
	s.Provisioned = false
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode spec: %w", err)
	}
	return string(b), nil
}

// syncPushToken registers the hash of a push check's token, and drops the
// mapping when the check is no longer a push check.
func syncPushToken(ctx context.Context, tx *sql.Tx, s check.Spec) error {
	if s.Type != check.TypePush {
		_, err := tx.ExecContext(ctx, `DELETE FROM push_tokens WHERE check_name = ?`, s.Name)
		return err
	}
	if s.Push != nil && s.Push.Token != "" {
		return setPushToken(ctx, tx, s.Name, auth.HashToken(s.Push.Token))
	}
	return nil
}

// CreateCheck stores a new API check; ErrConflict if the name exists.
func (s *Store) CreateCheck(ctx context.Context, actor Actor, spec check.Spec) error {
	js, err := prepareCheck(&spec)
	if err != nil {
		return fmt.Errorf("create check: %w", err)
	}
	return s.write(ctx, "check.create", func(tx *sql.Tx) error {
		now := ms(s.now())
		_, err := tx.ExecContext(ctx, `INSERT INTO checks (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			spec.Name, js, now, now)
		if isUnique(err) {
			return fmt.Errorf("create check %q: name already taken: %w", spec.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create check %q: %w", spec.Name, err)
		}
		if err := syncPushToken(ctx, tx, spec); err != nil {
			return fmt.Errorf("create check %q: %w", spec.Name, err)
		}
		return s.audit(ctx, tx, actor, "check.create", checkTarget(spec.Name), nil, spec)
	})
}

// UpdateCheck replaces the spec of an existing API check; ErrNotFound if
// there is none of that name.
func (s *Store) UpdateCheck(ctx context.Context, actor Actor, spec check.Spec) error {
	js, err := prepareCheck(&spec)
	if err != nil {
		return fmt.Errorf("update check: %w", err)
	}
	return s.write(ctx, "check.update", func(tx *sql.Tx) error {
		before, err := getCheck(ctx, tx, spec.Name)
		if err != nil {
			return fmt.Errorf("update check: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE checks SET spec = ?, updated_at = ? WHERE name = ?`,
			js, ms(s.now()), spec.Name); err != nil {
			return fmt.Errorf("update check %q: %w", spec.Name, err)
		}
		if err := syncPushToken(ctx, tx, spec); err != nil {
			return fmt.Errorf("update check %q: %w", spec.Name, err)
		}
		return s.audit(ctx, tx, actor, "check.update", checkTarget(spec.Name), before, spec)
	})
}

// DeleteCheck removes an API check with its push token and saved status.
func (s *Store) DeleteCheck(ctx context.Context, actor Actor, name string) error {
	return s.write(ctx, "check.delete", func(tx *sql.Tx) error {
		before, err := getCheck(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("delete check: %w", err)
		}
		for _, q := range []string{
			`DELETE FROM checks WHERE name = ?`,
			`DELETE FROM push_tokens WHERE check_name = ?`,
			`DELETE FROM statuses WHERE check_name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return fmt.Errorf("delete check %q: %w", name, err)
			}
		}
		return s.audit(ctx, tx, actor, "check.delete", checkTarget(name), before, nil)
	})
}

// GetCheck returns an API check by name.
func (s *Store) GetCheck(ctx context.Context, name string) (check.Spec, error) {
	return getCheck(ctx, s.r, name)
}

func getCheck(ctx context.Context, q queryer, name string) (check.Spec, error) {
	var js string
	err := q.QueryRowContext(ctx, `SELECT spec FROM checks WHERE name = ?`, name).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return check.Spec{}, fmt.Errorf("check %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return check.Spec{}, fmt.Errorf("check %q: %w", name, err)
	}
	var spec check.Spec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		return check.Spec{}, fmt.Errorf("check %q: decode stored spec: %w", name, err)
	}
	return spec, nil
}

// ListChecks returns every API check ordered by name.
func (s *Store) ListChecks(ctx context.Context) ([]check.Spec, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, spec FROM checks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list checks: %w", err)
	}
	defer rows.Close()
	var out []check.Spec
	for rows.Next() {
		var name, js string
		if err := rows.Scan(&name, &js); err != nil {
			return nil, fmt.Errorf("list checks: %w", err)
		}
		var spec check.Spec
		if err := json.Unmarshal([]byte(js), &spec); err != nil {
			return nil, fmt.Errorf("list checks: decode stored spec of %q: %w", name, err)
		}
		out = append(out, spec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checks: %w", err)
	}
	return out, nil
}
