package eventstore

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the ordered, append-only list of schema changes; entry i
// brings the schema to version i+1. Never edit an entry once released: add
// a new one.
func migrations() []string {
	const resultColumns = `(
			ts          TIMESTAMP NOT NULL,
			check_id    INTEGER NOT NULL,
			ok          BOOLEAN NOT NULL,
			state       VARCHAR NOT NULL,
			root_cause  VARCHAR NOT NULL,
			duration_ns BIGINT NOT NULL,
			error       VARCHAR NOT NULL,
			status_code INTEGER NOT NULL,
			detail      VARCHAR NOT NULL,
			interval_ns BIGINT NOT NULL
		)`
	return []string{
		// 1: check results. check_id refers to check_names, a small
		// dictionary: an integer compresses and compares far better than the
		// name in a column of billions of rows. max_interval_ns is the
		// largest interval ever recorded for the check, which bounds how far
		// before a query's start a result can still cover it.
		//
		// Results arrive in time order, every check interleaved with every
		// other, so DuckDB's zone maps (min/max per row group) prune well on
		// ts but not at all on check_id. New rows are appended to
		// check_results_recent; once an hour has passed, compaction moves it
		// to check_results_archive sorted by (check_id, ts), where a check's
		// hour sits in one row group instead of all of them. The view
		// check_results is what queries read. No index: an ART index would
		// slow appends and must live in memory.
		`CREATE TABLE check_names (
			id              INTEGER PRIMARY KEY,
			name            VARCHAR NOT NULL UNIQUE,
			max_interval_ns BIGINT NOT NULL
		);
		CREATE TABLE check_results_recent ` + resultColumns + `;
		CREATE TABLE check_results_archive ` + resultColumns + `;
		CREATE VIEW check_results AS
			SELECT * FROM check_results_archive
			UNION ALL
			SELECT * FROM check_results_recent;`,
		// 2: log events (events.go).
		eventsSchema,
		// 3: one searched text column, IP hash columns (events_search.go).
		eventsSearchSchema,
		// 4: endpoint metric samples from agents (metrics.go).
		metricsSchema,
		// 5: the packed column: what an event row stores derived
		// (events_packed.go).
		eventsPackedSchema,
	}
}

// migrate applies the migrations the database has not seen yet, each in its
// own transaction together with its schema_version row.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL,
		applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_version: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	all := migrations()
	if current > len(all) {
		return fmt.Errorf("migrate: database schema version %d is newer than this build knows (%d)", current, len(all))
	}
	for i := current; i < len(all); i++ {
		if err := applyMigration(ctx, s.db, i+1, all[i]); err != nil {
			return err
		}
		s.log.Info("applied schema migration", "version", i+1)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, stmt string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, version); err != nil {
		return fmt.Errorf("migrate to %d: record version: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to %d: commit: %w", version, err)
	}
	return nil
}
