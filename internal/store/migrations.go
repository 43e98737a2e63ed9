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

	// 2: alert management and incident response.
	`
-- AUTOINCREMENT so that incident ids are never reused: links, exports and
-- pagination rely on it.
CREATE TABLE incidents (
	id                 INTEGER PRIMARY KEY AUTOINCREMENT,
	title              TEXT    NOT NULL,
	severity           TEXT    NOT NULL,
	team               TEXT    NOT NULL,
	origin             TEXT    NOT NULL,
	joint              INTEGER NOT NULL DEFAULT 0,
	status             TEXT    NOT NULL CHECK (status IN ('triggered', 'acknowledged', 'investigating', 'mitigated', 'resolved', 'closed')),
	owner              TEXT    NOT NULL DEFAULT '',
	tier               INTEGER NOT NULL DEFAULT 0,
	policy_id          INTEGER NOT NULL DEFAULT 0,
	group_key          TEXT    NOT NULL DEFAULT '',
	service            TEXT    NOT NULL DEFAULT '',
	labels             TEXT,
	runbook_id         INTEGER NOT NULL DEFAULT 0,
	channels           TEXT,
	triggered_at       INTEGER NOT NULL,
	acknowledged_at    INTEGER,
	mitigated_at       INTEGER,
	resolved_at        INTEGER,
	closed_at          INTEGER,
	next_escalation_at INTEGER,
	escalation_round   INTEGER NOT NULL DEFAULT 0,
	escalations        INTEGER NOT NULL DEFAULT 0,
	handoffs           INTEGER NOT NULL DEFAULT 0,
	-- Maintained by the triggers on alerts below, never by callers.
	alert_count        INTEGER NOT NULL DEFAULT 0,
	merged_into        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_status    ON incidents (status, id);
CREATE INDEX incidents_team      ON incidents (team, id);
CREATE INDEX incidents_group_key ON incidents (group_key) WHERE group_key != '';
CREATE INDEX incidents_policy    ON incidents (policy_id) WHERE policy_id != 0;
CREATE INDEX incidents_triggered ON incidents (triggered_at);
CREATE INDEX incidents_acked     ON incidents (acknowledged_at) WHERE acknowledged_at IS NOT NULL;
CREATE INDEX incidents_resolved  ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;

ALTER TABLE alerts ADD COLUMN annotations TEXT;
ALTER TABLE alerts ADD COLUMN integration TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN dedup_key TEXT NOT NULL DEFAULT '';
-- NULL, not 0, means "no incident", so the foreign key holds.
ALTER TABLE alerts ADD COLUMN incident_id INTEGER REFERENCES incidents(id);
ALTER TABLE alerts ADD COLUMN suppressed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN acknowledged_at INTEGER;
-- An incident's alerts page by id: its first page of 10,000 is one range scan.
CREATE INDEX alerts_incident    ON alerts (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX alerts_integration ON alerts (integration, id) WHERE integration != '';
CREATE INDEX alerts_started     ON alerts (started_at);

-- incidents.alert_count follows attachments whatever path changes them
-- (upsert, attach, detach, merge), so it can never drift.
CREATE TRIGGER alerts_count_insert AFTER INSERT ON alerts WHEN NEW.incident_id IS NOT NULL
	BEGIN UPDATE incidents SET alert_count = alert_count + 1 WHERE id = NEW.incident_id; END;
CREATE TRIGGER alerts_count_move AFTER UPDATE OF incident_id ON alerts
	WHEN OLD.incident_id IS NOT NEW.incident_id
	BEGIN
		UPDATE incidents SET alert_count = alert_count - 1 WHERE id = OLD.incident_id;
		UPDATE incidents SET alert_count = alert_count + 1 WHERE id = NEW.incident_id;
	END;
CREATE TRIGGER alerts_count_delete AFTER DELETE ON alerts WHEN OLD.incident_id IS NOT NULL
	BEGIN UPDATE incidents SET alert_count = alert_count - 1 WHERE id = OLD.incident_id; END;

CREATE TABLE timeline (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id INTEGER NOT NULL REFERENCES incidents(id),
	time        INTEGER NOT NULL,
	actor       TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	message     TEXT    NOT NULL DEFAULT '',
	data        TEXT
);
CREATE INDEX timeline_incident ON timeline (incident_id, id);
CREATE TRIGGER timeline_no_update BEFORE UPDATE ON timeline
	BEGIN SELECT RAISE(ABORT, 'incident timeline is append-only'); END;
CREATE TRIGGER timeline_no_delete BEFORE DELETE ON timeline
	BEGIN SELECT RAISE(ABORT, 'incident timeline is append-only'); END;

CREATE TABLE tasks (
	id           INTEGER PRIMARY KEY,
	incident_id  INTEGER NOT NULL REFERENCES incidents(id),
	title        TEXT    NOT NULL,
	done         INTEGER NOT NULL DEFAULT 0,
	done_by      TEXT    NOT NULL DEFAULT '',
	done_at      INTEGER,
	position     INTEGER NOT NULL DEFAULT 0,
	from_runbook INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_incident ON tasks (incident_id, position, id);

CREATE TABLE observables (
	id          INTEGER PRIMARY KEY,
	incident_id INTEGER NOT NULL REFERENCES incidents(id),
	type        TEXT    NOT NULL,
	value       TEXT    NOT NULL,
	tlp         TEXT    NOT NULL,
	note        TEXT    NOT NULL DEFAULT '',
	added_by    TEXT    NOT NULL DEFAULT '',
	added_at    INTEGER NOT NULL,
	UNIQUE (incident_id, type, value)
);

CREATE TABLE postmortems (
	incident_id          INTEGER PRIMARY KEY REFERENCES incidents(id),
	category             TEXT    NOT NULL,
	summary              TEXT    NOT NULL DEFAULT '',
	contributing_factors TEXT,
	action_items         TEXT,
	author               TEXT    NOT NULL DEFAULT '',
	updated_at           INTEGER NOT NULL
);

CREATE TABLE integrations (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	type       TEXT    NOT NULL,
	key_hash   TEXT    NOT NULL UNIQUE,
	key_prefix TEXT    NOT NULL DEFAULT '',
	created_by TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	disabled   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE silences (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	matchers   TEXT    NOT NULL,
	starts_at  INTEGER NOT NULL,
	ends_at    INTEGER NOT NULL,
	created_by TEXT    NOT NULL DEFAULT '',
	comment    TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expired_at INTEGER
);
CREATE INDEX silences_ends ON silences (ends_at);

-- Secrets live in their own columns so that the JSON of a channel never
-- carries them by accident.
CREATE TABLE channels (
	id             INTEGER PRIMARY KEY,
	name           TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	type           TEXT    NOT NULL,
	url            TEXT    NOT NULL DEFAULT '',
	secret         TEXT    NOT NULL DEFAULT '',
	email          TEXT,
	email_password TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	provisioned    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE deliveries (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id INTEGER NOT NULL DEFAULT 0,
	channel     TEXT    NOT NULL,
	event       TEXT    NOT NULL DEFAULT '',
	attempt     INTEGER NOT NULL DEFAULT 1,
	status      TEXT    NOT NULL CHECK (status IN ('sent', 'failed', 'dead')),
	error       TEXT    NOT NULL DEFAULT '',
	http_status INTEGER NOT NULL DEFAULT 0,
	latency_ms  REAL    NOT NULL DEFAULT 0,
	time        INTEGER NOT NULL
);
CREATE INDEX deliveries_incident ON deliveries (incident_id, id);
CREATE INDEX deliveries_status   ON deliveries (status, id);
CREATE INDEX deliveries_channel  ON deliveries (channel, id);

CREATE TABLE schedules (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	team        TEXT    NOT NULL,
	tier        TEXT    NOT NULL DEFAULT '',
	spec        TEXT    NOT NULL,
	provisioned INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE policies (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	spec        TEXT    NOT NULL,
	provisioned INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE runbooks (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
	title       TEXT    NOT NULL DEFAULT '',
	markdown    TEXT    NOT NULL DEFAULT '',
	checks      TEXT,
	rules       TEXT,
	matchers    TEXT,
	team        TEXT    NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL,
	updated_by  TEXT    NOT NULL DEFAULT '',
	provisioned INTEGER NOT NULL DEFAULT 0
);
`,
	// 3: incidents remember their escalation policy by name (provisioned
	// policies have no id).
	`ALTER TABLE incidents ADD COLUMN policy TEXT NOT NULL DEFAULT '';`,
	// 4: web console sessions (sessions.go). Only a hash of the session
	// token is stored; deleting a user ends their sessions.
	`CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token_hash   TEXT    NOT NULL UNIQUE,
	csrf         TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);`,
	// 5: detection rules switched off in the console (rules.go). Only
	// the exceptions are stored: a rule without a row runs.
	`CREATE TABLE disabled_rules (
	rule_id     TEXT    PRIMARY KEY,
	disabled_by TEXT    NOT NULL,
	disabled_at INTEGER NOT NULL
);`,
	// 6: endpoint agents (endpoints.go): single-use enrollment tokens and
	// enrolled endpoints, both stored as hashes only; the batch ids an
	// endpoint has had applied, so that a replay is answered without
	// being applied twice.
	`CREATE TABLE enrollment_tokens (
	id          INTEGER PRIMARY KEY,
	hash        TEXT    NOT NULL UNIQUE,
	prefix      TEXT    NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER,
	endpoint_id TEXT
);
CREATE TABLE endpoints (
	id              TEXT    PRIMARY KEY,
	credential_hash TEXT    NOT NULL UNIQUE,
	hostname        TEXT    NOT NULL,
	os              TEXT    NOT NULL DEFAULT '',
	platform        TEXT    NOT NULL DEFAULT '',
	kernel          TEXT    NOT NULL DEFAULT '',
	arch            TEXT    NOT NULL DEFAULT '',
	agent_version   TEXT    NOT NULL DEFAULT '',
	remote          TEXT    NOT NULL DEFAULT '',
	interval_ms     INTEGER NOT NULL DEFAULT 30000,
	status          TEXT    NOT NULL DEFAULT 'online',
	enrolled_at     INTEGER NOT NULL,
	last_seen_at    INTEGER NOT NULL,
	revoked_at      INTEGER,
	last_seq        INTEGER NOT NULL DEFAULT 0,
	batches         INTEGER NOT NULL DEFAULT 0,
	samples         INTEGER NOT NULL DEFAULT 0,
	duplicates      INTEGER NOT NULL DEFAULT 0,
	buffered        INTEGER NOT NULL DEFAULT 0,
	dropped         INTEGER NOT NULL DEFAULT 0,
	inventory       TEXT,
	inventory_at    INTEGER
);
CREATE TABLE endpoint_batches (
	endpoint_id TEXT    NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	batch_id    TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	applied_at  INTEGER NOT NULL,
	PRIMARY KEY (endpoint_id, batch_id)
);`,
	// 7: tamper-evident audit log (auditchain.go): each entry carries the
	// previous entry's hash and its own. backfillAuditChain then fills
	// both for existing entries in this same transaction.
	`ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;`,
	// 8: active-response decisions and CrowdSec-compatible bouncers
	// (decisions.go). rev and revoked_rev come from one counter that only
	// grows, so a bouncer's stream cursor never misses a change committed
	// while it was reading; endpoints is a JSON array, NULL for fleet-wide.
	`CREATE TABLE decisions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	type        TEXT    NOT NULL,
	scope       TEXT    NOT NULL CHECK (scope IN ('ip', 'range')),
	value       TEXT    NOT NULL,
	endpoints   TEXT,
	reason      TEXT    NOT NULL DEFAULT '',
	origin      TEXT    NOT NULL,
	origin_ref  TEXT    NOT NULL DEFAULT '',
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	until       INTEGER NOT NULL,
	revoked_at  INTEGER,
	revoked_by  TEXT    NOT NULL DEFAULT '',
	rev         INTEGER NOT NULL,
	revoked_rev INTEGER
);
CREATE INDEX decisions_active ON decisions (until) WHERE revoked_at IS NULL;
CREATE INDEX decisions_rev ON decisions (rev);
CREATE INDEX decisions_revoked_rev ON decisions (revoked_rev) WHERE revoked_rev IS NOT NULL;
CREATE TABLE bouncers (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	name         TEXT    NOT NULL COLLATE NOCASE,
	key_hash     TEXT    NOT NULL UNIQUE,
	key_prefix   TEXT    NOT NULL,
	endpoint_id  TEXT    NOT NULL DEFAULT '',
	created_by   TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	revoked_at   INTEGER,
	last_pull_at INTEGER,
	last_pull_ip TEXT    NOT NULL DEFAULT '',
	cursor       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX bouncers_name ON bouncers (name) WHERE revoked_at IS NULL;`,
	// 9: agent jobs, pending updates, software lists (jobs.go).
	jobsSchema,
	// 10: backups, mail posture, file integrity (backups.go).
	backupsSchema,
	// 11: compliance policies, results, exceptions (compliance.go).
	complianceSchema,
	// 12: automatic response and approvals (response.go).
	responseSchema,
	// 13: endpoint threshold rules and forecasts (thresholds.go).
	thresholdsSchema,
	// 14: endpoint labels and label-scoped decisions and responses;
	// automatic responses remember their alert to find its incident
	// (endpoints.go, decisions.go, response.go).
	labelsSchema,
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
			if err := afterMigration(ctx, tx, version); err != nil {
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
