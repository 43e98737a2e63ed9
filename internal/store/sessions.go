package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Web console session lifetimes: a session ends after SessionIdleTimeout
// without a request, and SessionMaxAge after sign-in whatever its use.
const (
	SessionIdleTimeout = 12 * time.Hour
	SessionMaxAge      = 7 * 24 * time.Hour
)

// Session is a signed-in web console session. Only a SHA-256 hash of the
// session token is stored, so a copy of the database cannot be used to
// sign in.
type Session struct {
	ID     int64
	UserID int64
	// TokenHash is auth.HashToken(token), 64 hex characters.
	TokenHash string
	// CSRF is the session's anti-forgery token, echoed in every form.
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time
}

// CreateSession stores a new session for userID, created at now and ending
// at expires at the latest. ErrNotFound if the user does not exist; a
// *FieldError for a malformed hash, an empty CSRF token or expires not after
// now.
func (s *Store) CreateSession(ctx context.Context, userID int64, tokenHash, csrf string, now, expires time.Time) (Session, error) {
	switch {
	case !validHash(tokenHash):
		return Session{}, fmt.Errorf("create session: %w", invalid("token_hash", "must be a hex SHA-256 (64 characters)"))
	case csrf == "":
		return Session{}, fmt.Errorf("create session: %w", invalid("csrf", "is required"))
	case !expires.After(now):
		return Session{}, fmt.Errorf("create session: %w", invalid("expires", "must be after now"))
	}
	se := Session{UserID: userID, TokenHash: tokenHash, CSRF: csrf,
		CreatedAt: fromMS(ms(now)), LastSeenAt: fromMS(ms(now)), ExpiresAt: fromMS(ms(expires))}
	err := s.write(ctx, "session.create", func(tx *sql.Tx) error {
		if _, err := userByID(ctx, tx, userID); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO sessions (user_id, token_hash, csrf, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			userID, tokenHash, csrf, ms(se.CreatedAt), ms(se.LastSeenAt), ms(se.ExpiresAt)).Scan(&se.ID)
		if isUnique(err) {
			return fmt.Errorf("create session: token hash already in use: %w", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return se, nil
}

// SessionByHash returns the live session with that token hash and its
// user. A session that is past ExpiresAt, idle for SessionIdleTimeout at
// now, or whose user is disabled is reported as ErrNotFound, exactly like
// an unknown one, so callers have one path for "sign in again".
func (s *Store) SessionByHash(ctx context.Context, tokenHash string, now time.Time) (Session, User, error) {
	var (
		se                     Session
		created, seen, expires int64
		uid                    int64
		name, role, pwHash     string
		uCreated               int64
		disabled               bool
	)
	err := s.r.QueryRowContext(ctx, `SELECT s.id, s.user_id, s.token_hash, s.csrf, s.created_at, s.last_seen_at, s.expires_at,
			u.id, u.name, u.role, u.password_hash, u.created_at, u.disabled
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ?`, tokenHash).
		Scan(&se.ID, &se.UserID, &se.TokenHash, &se.CSRF, &created, &seen, &expires,
			&uid, &name, &role, &pwHash, &uCreated, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", err)
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = fromMS(created), fromMS(seen), fromMS(expires)
	u := User{ID: uid, Name: name, Role: role, PasswordHash: pwHash, CreatedAt: fromMS(uCreated), Disabled: disabled}
	switch {
	case !now.Before(se.ExpiresAt):
		return Session{}, User{}, fmt.Errorf("session: expired: %w", ErrNotFound)
	case !now.Before(se.LastSeenAt.Add(SessionIdleTimeout)):
		return Session{}, User{}, fmt.Errorf("session: idle too long: %w", ErrNotFound)
	case u.Disabled:
		return Session{}, User{}, fmt.Errorf("session: user %q is disabled: %w", u.Name, ErrNotFound)
	}
	return se, u, nil
}

// TouchSession records activity on a session at at, extending its idle
// deadline (never past ExpiresAt). Callers rate-limit it (the console
// writes at most once a minute per session); ErrNotFound if the session is
// gone.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	return s.write(ctx, "session.touch", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id = ?`, ms(at), id)
		if err != nil {
			return fmt.Errorf("touch session %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("touch session %d: %w", id, ErrNotFound)
		}
		return nil
	})
}

// DeleteSession ends the session with that token hash (logout). Deleting
// a session that does not exist is not an error: logging out twice is
// harmless.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	return s.write(ctx, "session.delete", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}

// DeleteUserSessions ends every session of a user except keepID (0 keeps
// none); used after a password change so a stolen session dies with the
// old password. It returns the number of sessions ended.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, keepID int64) (int, error) {
	var n int64
	err := s.write(ctx, "session.delete_user", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keepID)
		if err != nil {
			return fmt.Errorf("delete sessions of user %d: %w", userID, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// DeleteExpiredSessions removes sessions that are past their absolute or
// idle end at now, returning how many it removed.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "session.expire", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?`,
			ms(now), ms(now.Add(-SessionIdleTimeout)))
		if err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
