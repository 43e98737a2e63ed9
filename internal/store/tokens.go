package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Token is an API token. Only its SHA-256 hash is stored; the plain token
// is shown once, when created.
type Token struct {
	ID       int64  `json:"id"`
	UserID   int64  `json:"user_id"`
	UserName string `json:"user_name"`
	Name     string `json:"name"`
	// Hash is auth.HashToken(plain). Never serialised.
	Hash string `json:"-"`
	// Prefix is the first 8 characters of the plain token, for display.
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// touchInterval bounds how often TouchToken writes last_used_at per token.
const touchInterval = time.Minute

func tokenTarget(id int64) string { return "token:" + strconv.FormatInt(id, 10) }

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// CreateToken stores a token for t.UserID. ErrNotFound if the user does
// not exist; ErrConflict if the user already has a live token of that name
// or the hash is already stored.
func (s *Store) CreateToken(ctx context.Context, actor Actor, t Token) (Token, error) {
	switch {
	case t.Name == "":
		return Token{}, fmt.Errorf("create token: %w", invalid("name", "is required"))
	case len(t.Name) > 64:
		return Token{}, fmt.Errorf("create token: %w", invalid("name", "must be at most 64 characters"))
	case !validHash(t.Hash):
		return Token{}, fmt.Errorf("create token: %w", invalid("hash", "must be a hex SHA-256 (64 characters)"))
	case t.Prefix == "" || len(t.Prefix) > 8:
		return Token{}, fmt.Errorf("create token: %w", invalid("prefix", "must be 1-8 characters"))
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	t.CreatedAt = fromMS(ms(t.CreatedAt))
	t.LastUsedAt, t.RevokedAt = nil, nil
	err := s.write(ctx, "token.create", func(tx *sql.Tx) error {
		u, err := userByID(ctx, tx, t.UserID)
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		t.UserName = u.Name
		err = tx.QueryRowContext(ctx, `INSERT INTO tokens (user_id, name, hash, prefix, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			t.UserID, t.Name, t.Hash, t.Prefix, ms(t.CreatedAt), msPtr(t.ExpiresAt)).Scan(&t.ID)
		if isUnique(err) {
			return fmt.Errorf("create token %q for %q: name or hash already in use: %w", t.Name, u.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create token %q: %w", t.Name, err)
		}
		return s.audit(ctx, tx, actor, "token.create", tokenTarget(t.ID), nil, t)
	})
	if err != nil {
		return Token{}, err
	}
	if t.ExpiresAt != nil {
		e := fromMS(ms(*t.ExpiresAt))
		t.ExpiresAt = &e
	}
	return t, nil
}

const tokenCols = `t.id, t.user_id, u.name, t.name, t.hash, t.prefix, t.created_at, t.last_used_at, t.expires_at, t.revoked_at`

func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var t Token
	var created int64
	var used, expires, revoked sql.NullInt64
	dest := append([]any{&t.ID, &t.UserID, &t.UserName, &t.Name, &t.Hash, &t.Prefix, &created, &used, &expires, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Token{}, err
	}
	t.CreatedAt = fromMS(created)
	t.LastUsedAt, t.ExpiresAt, t.RevokedAt = fromMSPtr(used), fromMSPtr(expires), fromMSPtr(revoked)
	return t, nil
}

// TokenByHash returns the token with that hash and its user, revoked and
// expired ones included: the caller checks RevokedAt, ExpiresAt and
// User.Disabled, so it can say why a token was refused.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, User, error) {
	var u User
	var ucreated int64
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+`, u.role, u.password_hash, u.created_at, u.disabled
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, hash),
		&u.Role, &u.PasswordHash, &ucreated, &u.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, User{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, User{}, fmt.Errorf("token by hash: %w", err)
	}
	u.ID, u.Name, u.CreatedAt = t.UserID, t.UserName, fromMS(ucreated)
	return t, u, nil
}

// TouchToken records that the token was used at at. It is called on every
// authenticated request, so it writes at most once per minute per token:
// an in-memory check skips the database entirely, and the UPDATE's own
// condition covers other processes. A missing token is not an error.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	s.touchMu.Lock()
	last, ok := s.touched[id]
	if ok && at.Sub(last) < touchInterval {
		s.touchMu.Unlock()
		return nil
	}
	s.touched[id] = at
	s.touchMu.Unlock()
	err := s.write(ctx, "token.touch", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`,
			ms(at), id, ms(at.Add(-touchInterval)))
		return err
	})
	if err != nil {
		// Forget the attempt so the next request retries the write.
		s.touchMu.Lock()
		if s.touched[id].Equal(at) {
			delete(s.touched, id)
		}
		s.touchMu.Unlock()
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// ListTokens returns the tokens of userID (0: of everyone), oldest first.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if userID != 0 {
		q += ` WHERE t.user_id = ?`
		args = append(args, userID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// GetToken returns one token by id.
func (s *Store) GetToken(ctx context.Context, id int64) (Token, error) {
	return getToken(ctx, s.r, id)
}

func getToken(ctx context.Context, q queryer, id int64) (Token, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenCols+`
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("token %d: %w", id, err)
	}
	return t, nil
}

// RevokeToken marks a token revoked at at. Revoking an already revoked
// token changes nothing and succeeds, so a retried request is harmless.
func (s *Store) RevokeToken(ctx context.Context, actor Actor, id int64, at time.Time) error {
	return s.write(ctx, "token.revoke", func(tx *sql.Tx) error {
		before, err := getToken(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if before.RevokedAt != nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, ms(at), id); err != nil {
			return fmt.Errorf("revoke token %d: %w", id, err)
		}
		after := before
		r := fromMS(ms(at))
		after.RevokedAt = &r
		return s.audit(ctx, tx, actor, "token.revoke", tokenTarget(id), before, after)
	})
}
