package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the ordered, append-only schema history: migrations[i]
// brings the schema to version i+1. Never edit or reorder an entry that
// has shipped; append a new one.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
	password_hash TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	hash         TEXT    NOT NULL UNIQUE,
	prefix       TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	expires_at   INTEGER,
	revoked_at   INTEGER
);
-- A user's live tokens have distinct names; a revoked token frees its name.
CREATE UNIQUE INDEX tokens_user_name ON tokens (user_id, name) WHERE revoked_at IS NULL;

-- AUTOINCREMENT so that ids are never reused: pagination and evidence
-- exports rely on ids only growing.
CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	time   INTEGER NOT NULL,
	actor  TEXT    NOT NULL,
	remote TEXT    NOT NULL DEFAULT '',
	action TEXT    NOT NULL,
	target TEXT    NOT NULL DEFAULT '',
	before TEXT,
	after  TEXT
);
CREATE INDEX audit_actor  ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_time   ON audit (time);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
	BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

CREATE TABLE checks (
	name       TEXT    PRIMARY KEY,
	spec       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- No foreign key to checks: provisioned checks (config file) register
-- their push tokens here too.
CREATE TABLE push_tokens (
	check_name TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE
);

CREATE TABLE statuses (
	check_name TEXT    PRIMARY KEY,
	state      TEXT    NOT NULL,
	root_cause TEXT    NOT NULL DEFAULT '',
	since      INTEGER NOT NULL,
	data       TEXT
);

CREATE TABLE windows (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL,
	start       INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	schedule    TEXT    NOT NULL DEFAULT '',
	timezone    TEXT    NOT NULL DEFAULT '',
	until       INTEGER,
	checks      TEXT,
	labels      TEXT,
	comment     TEXT    NOT NULL DEFAULT '',
	created_by  TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);

CREATE TABLE alerts (
	id           INTEGER PRIMARY KEY,
	fingerprint  TEXT    NOT NULL,
	status       TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
	team         TEXT    NOT NULL,
	origin       TEXT    NOT NULL,
	severity     TEXT    NOT NULL,
	title        TEXT    NOT NULL,
	description  TEXT    NOT NULL DEFAULT '',
	labels       TEXT,
	source       TEXT    NOT NULL DEFAULT '',
	started_at   INTEGER NOT NULL,
	resolved_at  INTEGER,
	last_seen_at INTEGER NOT NULL,
	occurrences  INTEGER NOT NULL DEFAULT 1
);
-- The same fingerprint never has two firing alerts, whatever the
-- concurrency: OpenAlert upserts against this index.
CREATE UNIQUE INDEX alerts_firing_fingerprint ON alerts (fingerprint) WHERE status = 'firing';
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id);
CREATE INDEX alerts_status   ON alerts (status, id);
CREATE INDEX alerts_team     ON alerts (team, id);
CREATE INDEX alerts_severity ON alerts (severity, id);
CREATE INDEX alerts_source   ON alerts (source, id);
`,
}

// migrate applies pending migrations, each in its own immediate
// transaction together with its schema_version row. The version is read
// inside that transaction, so two processes opening a fresh file at once
// apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_version: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		applied := false
		err := s.write(ctx, "migrate", func(tx *sql.Tx) error {
			cur, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if cur > len(migrations) {
				return fmt.Errorf("database schema version %d is newer than this binary knows (%d): refusing to run an older nocsoc on it", cur, len(migrations))
			}
			if cur >= version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return fmt.Errorf("apply migration %d: %w", version, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
				version, ms(s.now())); err != nil {
				return fmt.Errorf("record migration %d: %w", version, err)
			}
			applied = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if applied {
			s.log.Info("applied schema migration", "version", version)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, s.r)
	if err != nil {
		return 0, err
	}
	return v, nil
}

func schemaVersion(ctx context.Context, q queryer) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
