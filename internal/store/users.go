package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
)

// User is a person (or service identity) who can sign in or own tokens.
type User struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// PasswordHash is an auth.HashPassword string; empty means the user
	// cannot sign in with a password (token-only). Never serialised.
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	Disabled     bool      `json:"disabled"`
}

// userNameRE allows plain names and e-mail addresses. Names compare
// case-insensitively so "Admin" and "admin" cannot both exist.
var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$`)

func validateUser(u User) error {
	if u.Name == "" {
		return invalid("name", "is required")
	}
	if !userNameRE.MatchString(u.Name) {
		return invalid("name", fmt.Sprintf("%q must be 1-64 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit", u.Name))
	}
	if !auth.ValidRole(u.Role) {
		return invalid("role", fmt.Sprintf("unknown role %q (one of admin, operator, viewer)", u.Role))
	}
	return nil
}

func userTarget(name string) string { return "user:" + name }

// CreateUser adds a user; ErrConflict if the name is taken (in any case).
func (s *Store) CreateUser(ctx context.Context, actor Actor, u User) (User, error) {
	if err := validateUser(u); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.CreatedAt = fromMS(ms(u.CreatedAt))
	err := s.write(ctx, "user.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (name, role, password_hash, created_at, disabled)
			VALUES (?, ?, ?, ?, ?) RETURNING id`,
			u.Name, u.Role, u.PasswordHash, ms(u.CreatedAt), u.Disabled).Scan(&u.ID)
		if isUnique(err) {
			return fmt.Errorf("create user %q: name already taken: %w", u.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create user %q: %w", u.Name, err)
		}
		return s.audit(ctx, tx, actor, "user.create", userTarget(u.Name), nil, u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

const userCols = `id, name, role, password_hash, created_at, disabled`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.Role, &u.PasswordHash, &created, &u.Disabled); err != nil {
		return User{}, err
	}
	u.CreatedAt = fromMS(created)
	return u, nil
}

// UserByName returns the user with that name, compared case-insensitively.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with that id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return userByID(ctx, s.r, id)
}

func userByID(ctx context.Context, q queryer, id int64) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// CountUsers returns the number of users (0 means: create the first admin).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash. The audit entry records
// that it changed, never the hash.
func (s *Store) SetPassword(ctx context.Context, actor Actor, userID int64, hash string) error {
	if hash == "" {
		return fmt.Errorf("set password: %w", invalid("password_hash", "is required"))
	}
	return s.write(ctx, "user.set_password", func(tx *sql.Tx) error {
		u, err := userByID(ctx, tx, userID)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID); err != nil {
			return fmt.Errorf("set password of %q: %w", u.Name, err)
		}
		return s.audit(ctx, tx, actor, "user.set_password", userTarget(u.Name), nil, nil)
	})
}

// SetRole changes a user's role. Demoting the last enabled admin is
// refused with ErrConflict, so the instance always keeps an administrator.
func (s *Store) SetRole(ctx context.Context, actor Actor, userID int64, role string) error {
	if !auth.ValidRole(role) {
		return fmt.Errorf("set role: %w", invalid("role", fmt.Sprintf("unknown role %q (one of admin, operator, viewer)", role)))
	}
	return s.write(ctx, "user.set_role", func(tx *sql.Tx) error {
		before, err := userByID(ctx, tx, userID)
		if err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		if role != auth.RoleAdmin {
			if err := lastAdminGuard(ctx, tx, before); err != nil {
				return fmt.Errorf("set role of %q: %w", before.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID); err != nil {
			return fmt.Errorf("set role of %q: %w", before.Name, err)
		}
		after := before
		after.Role = role
		return s.audit(ctx, tx, actor, "user.set_role", userTarget(before.Name), before, after)
	})
}

// SetUserDisabled disables or re-enables a user. Disabling the last enabled
// admin is refused with ErrConflict.
func (s *Store) SetUserDisabled(ctx context.Context, actor Actor, userID int64, disabled bool) error {
	return s.write(ctx, "user.set_disabled", func(tx *sql.Tx) error {
		before, err := userByID(ctx, tx, userID)
		if err != nil {
			return fmt.Errorf("set disabled: %w", err)
		}
		if disabled {
			if err := lastAdminGuard(ctx, tx, before); err != nil {
				return fmt.Errorf("disable %q: %w", before.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, userID); err != nil {
			return fmt.Errorf("set disabled of %q: %w", before.Name, err)
		}
		after := before
		after.Disabled = disabled
		return s.audit(ctx, tx, actor, "user.set_disabled", userTarget(before.Name), before, after)
	})
}

// DeleteUser removes a user and, by cascade, their tokens. Deleting the
// last enabled admin is refused with ErrConflict.
func (s *Store) DeleteUser(ctx context.Context, actor Actor, id int64) error {
	return s.write(ctx, "user.delete", func(tx *sql.Tx) error {
		before, err := userByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if err := lastAdminGuard(ctx, tx, before); err != nil {
			return fmt.Errorf("delete user %q: %w", before.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete user %q: %w", before.Name, err)
		}
		return s.audit(ctx, tx, actor, "user.delete", userTarget(before.Name), before, nil)
	})
}

// lastAdminGuard fails when u is the only enabled admin.
func lastAdminGuard(ctx context.Context, tx *sql.Tx, u User) error {
	if u.Role != auth.RoleAdmin || u.Disabled {
		return nil
	}
	var others int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?`,
		u.ID).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return fmt.Errorf("it would leave no enabled admin: %w", ErrConflict)
	}
	return nil
}
