package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Integrations are intake endpoints for external alerts. Only the key's
// hash is stored; the caller generates the key, shows it once and passes
// its hash.

func integrationTarget(id int64) string { return "integration:" + strconv.FormatInt(id, 10) }

const integrationCols = `id, name, type, key_hash, key_prefix, created_by, created_at, disabled`

func scanIntegration(row rowScanner) (alert.Integration, error) {
	var it alert.Integration
	var created int64
	if err := row.Scan(&it.ID, &it.Name, &it.Type, &it.KeyHash, &it.KeyPrefix, &it.CreatedBy, &created, &it.Disabled); err != nil {
		return alert.Integration{}, err
	}
	it.CreatedAt = fromMS(created)
	return it, nil
}

// CreateIntegration stores a new integration and returns it with its ID.
// CreatedBy defaults to the actor. ErrConflict when the name (any case) or
// the key hash is taken.
func (s *Store) CreateIntegration(ctx context.Context, actor Actor, it alert.Integration) (alert.Integration, error) {
	switch {
	case strings.TrimSpace(it.Name) == "":
		return alert.Integration{}, fmt.Errorf("create integration: %w", invalid("name", "is required"))
	case it.Type != alert.IntegrationEvents && it.Type != alert.IntegrationAlertmanager && it.Type != alert.IntegrationWebhook:
		return alert.Integration{}, fmt.Errorf("create integration: %w", invalid("type", fmt.Sprintf("%q must be %s, %s or %s",
			it.Type, alert.IntegrationEvents, alert.IntegrationAlertmanager, alert.IntegrationWebhook)))
	case it.KeyHash == "":
		return alert.Integration{}, fmt.Errorf("create integration: %w", invalid("key_hash", "is required"))
	}
	if it.CreatedBy == "" {
		it.CreatedBy = actor.Name
	}
	if it.CreatedAt.IsZero() {
		it.CreatedAt = s.now()
	}
	it.CreatedAt = fromMS(ms(it.CreatedAt))
	err := s.write(ctx, "integration.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO integrations (name, type, key_hash, key_prefix, created_by, created_at, disabled)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			it.Name, it.Type, it.KeyHash, it.KeyPrefix, it.CreatedBy, ms(it.CreatedAt), it.Disabled).Scan(&it.ID)
		if isUnique(err) {
			return fmt.Errorf("create integration %q: name or key already in use: %w", it.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create integration %q: %w", it.Name, err)
		}
		// Integration tags KeyHash json:"-": the audit never sees it.
		return s.audit(ctx, tx, actor, "integration.create", integrationTarget(it.ID), nil, it)
	})
	if err != nil {
		return alert.Integration{}, err
	}
	return it, nil
}

// IntegrationByKeyHash returns the integration whose key hashes to hash,
// disabled or not (the caller refuses disabled ones with its own message);
// ErrNotFound when none does.
func (s *Store) IntegrationByKeyHash(ctx context.Context, hash string) (alert.Integration, error) {
	it, err := scanIntegration(s.r.QueryRowContext(ctx, `SELECT `+integrationCols+` FROM integrations WHERE key_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Integration{}, fmt.Errorf("integration by key: %w", ErrNotFound)
	}
	if err != nil {
		return alert.Integration{}, fmt.Errorf("integration by key: %w", err)
	}
	return it, nil
}

// GetIntegration returns one integration.
func (s *Store) GetIntegration(ctx context.Context, id int64) (alert.Integration, error) {
	return getIntegration(ctx, s.r, id)
}

func getIntegration(ctx context.Context, q queryer, id int64) (alert.Integration, error) {
	it, err := scanIntegration(q.QueryRowContext(ctx, `SELECT `+integrationCols+` FROM integrations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Integration{}, fmt.Errorf("integration %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return alert.Integration{}, fmt.Errorf("integration %d: %w", id, err)
	}
	return it, nil
}

// ListIntegrations returns every integration by name.
func (s *Store) ListIntegrations(ctx context.Context) ([]alert.Integration, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+integrationCols+` FROM integrations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	defer rows.Close()
	var out []alert.Integration
	for rows.Next() {
		it, err := scanIntegration(rows)
		if err != nil {
			return nil, fmt.Errorf("list integrations: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}

// DisableIntegration stops an integration's key from being accepted. The
// row is kept so alerts keep naming it. ErrNotFound if it does not exist;
// disabling a disabled integration changes nothing and is not audited.
func (s *Store) DisableIntegration(ctx context.Context, actor Actor, id int64) error {
	// Whoever caches keys (the intake endpoints) sees the change at once,
	// whether it was made through the API or the console.
	defer s.integrationsGen.Add(1)
	return s.write(ctx, "integration.disable", func(tx *sql.Tx) error {
		before, err := getIntegration(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("disable integration: %w", err)
		}
		if before.Disabled {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE integrations SET disabled = 1 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("disable integration %d: %w", id, err)
		}
		after := before
		after.Disabled = true
		return s.audit(ctx, tx, actor, "integration.disable", integrationTarget(id), before, after)
	})
}

// IntegrationsGeneration changes whenever an integration is disabled in
// this process; key caches compare it to drop stale entries.
func (s *Store) IntegrationsGeneration() uint64 { return s.integrationsGen.Load() }
