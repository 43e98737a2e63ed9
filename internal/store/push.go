package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SetPushToken maps a heartbeat token hash (auth.HashToken of the secret in
// the heartbeat URL) to a check, replacing the check's previous token.
// Provisioned checks register here at start-up as well as API-created ones.
// ErrConflict if another check already uses the hash.
func (s *Store) SetPushToken(ctx context.Context, checkName, tokenHash string) error {
	if checkName == "" {
		return fmt.Errorf("set push token: %w", invalid("check", "is required"))
	}
	if !validHash(tokenHash) {
		return fmt.Errorf("set push token: %w", invalid("token_hash", "must be a hex SHA-256 (64 characters)"))
	}
	return s.write(ctx, "push.set", func(tx *sql.Tx) error {
		return setPushToken(ctx, tx, checkName, tokenHash)
	})
}

func setPushToken(ctx context.Context, tx *sql.Tx, checkName, tokenHash string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO push_tokens (check_name, token_hash) VALUES (?, ?)
		ON CONFLICT (check_name) DO UPDATE SET token_hash = excluded.token_hash`, checkName, tokenHash)
	if isUnique(err) {
		return fmt.Errorf("set push token of %q: token already used by another check: %w", checkName, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("set push token of %q: %w", checkName, err)
	}
	return nil
}

// PushCheckByTokenHash returns the name of the check a heartbeat token
// belongs to.
func (s *Store) PushCheckByTokenHash(ctx context.Context, hash string) (string, error) {
	var name string
	err := s.r.QueryRowContext(ctx, `SELECT check_name FROM push_tokens WHERE token_hash = ?`, hash).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("push token: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("push token: %w", err)
	}
	return name, nil
}

// DeletePushToken removes a check's heartbeat token; ErrNotFound if it had
// none.
func (s *Store) DeletePushToken(ctx context.Context, checkName string) error {
	return s.write(ctx, "push.delete", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM push_tokens WHERE check_name = ?`, checkName)
		if err != nil {
			return fmt.Errorf("delete push token of %q: %w", checkName, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("push token of %q: %w", checkName, ErrNotFound)
		}
		return nil
	})
}
