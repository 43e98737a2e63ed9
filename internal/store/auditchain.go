package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The audit log is a hash chain: every entry stores the hash of the entry
// before it (prev_hash) and its own hash over its content and prev_hash.
// Changing, removing or inserting an entry anywhere but at the end breaks
// the chain from that point on, which VerifyAudit finds. See
// docs/compliance.md for what this does and does not prove.

// GenesisHash is the prev_hash of the first audit entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditChainVersion is the schema version of the migration that adds
// prev_hash and hash to audit and fills them for existing entries.
const auditChainVersion = 7

// auditHashDomain prefixes every hashed entry so that the encoding can be
// versioned and never collides with some other use of SHA-256.
const auditHashDomain = "nocsoc-audit-v1\x00"

// auditRow is an audit entry as stored, with NULLs kept distinct from
// empty strings so the hash covers exactly what is in the file.
type auditRow struct {
	id                    int64
	time                  int64
	actor, remote, action string
	target                string
	before, after         sql.NullString
	prevHash, hash        sql.NullString
}

// auditHash returns hex(SHA-256) of the canonical encoding of an entry:
// the domain string, then id and time as 8-byte big-endian integers, then
// actor, remote, action, target, before, after and prevHash, each as a
// presence byte (0 for NULL, 1 otherwise) followed by an 8-byte big-endian
// length and the bytes. Length prefixes make the encoding unambiguous: no
// two different entries encode to the same bytes.
func auditHash(r auditRow, prevHash string) string {
	h := sha256.New()
	var n [8]byte
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	putStr := func(s sql.NullString) {
		if !s.Valid {
			h.Write([]byte{0})
			return
		}
		h.Write([]byte{1})
		putInt(int64(len(s.String)))
		h.Write([]byte(s.String))
	}
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	h.Write([]byte(auditHashDomain))
	putInt(r.id)
	putInt(r.time)
	putStr(str(r.actor))
	putStr(str(r.remote))
	putStr(str(r.action))
	putStr(str(r.target))
	putStr(r.before)
	putStr(r.after)
	putStr(str(prevHash))
	return hex.EncodeToString(h.Sum(nil))
}

// nextAuditLink returns the id the next audit entry gets and the hash it
// links to. It must run inside the write transaction that inserts the
// entry: writes are serialised (one writer connection, immediate
// transactions across processes), so nothing can slip in between.
func nextAuditLink(ctx context.Context, tx *sql.Tx) (int64, string, error) {
	var lastID int64
	var lastHash sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&lastID, &lastHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		lastHash = sql.NullString{String: GenesisHash, Valid: true}
	case err != nil:
		return 0, "", fmt.Errorf("read last audit hash: %w", err)
	}
	// AUTOINCREMENT never reuses an id, even one whose row is gone; the
	// explicit id keeps that promise (and a gap stays visible to Verify).
	seq, err := auditSequence(ctx, tx)
	if err != nil {
		return 0, "", err
	}
	return max(lastID, seq) + 1, lastHash.String, nil
}

// auditSequence is the highest audit id ever handed out.
func auditSequence(ctx context.Context, q queryer) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'audit'`).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read audit sequence: %w", err)
	}
	return seq, nil
}

// afterMigration runs the Go part of a migration, in the migration's
// transaction, after its SQL. Only migrations that cannot be written in
// SQL alone have one.
func afterMigration(ctx context.Context, tx *sql.Tx, version int) error {
	switch version {
	case auditChainVersion:
		return backfillAuditChain(ctx, tx)
	}
	return nil
}

// backfillAuditChain fills prev_hash and hash for every existing audit
// entry in id order. The append-only trigger is dropped for the duration
// and recreated unchanged, all inside the migration's transaction, so the
// log is never updatable by anyone else.
func backfillAuditChain(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DROP TRIGGER audit_no_update`); err != nil {
		return fmt.Errorf("backfill audit chain: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, time, actor, remote, action, target, before, after FROM audit ORDER BY id`)
	if err != nil {
		return fmt.Errorf("backfill audit chain: %w", err)
	}
	type link struct {
		id             int64
		prevHash, hash string
	}
	// Hashes are collected first: the single writer connection cannot
	// update while it still iterates the same table.
	var links []link
	prev := GenesisHash
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.id, &r.time, &r.actor, &r.remote, &r.action, &r.target, &r.before, &r.after); err != nil {
			rows.Close()
			return fmt.Errorf("backfill audit chain: %w", err)
		}
		h := auditHash(r, prev)
		links = append(links, link{r.id, prev, h})
		prev = h
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("backfill audit chain: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backfill audit chain: %w", err)
	}
	for _, l := range links {
		if _, err := tx.ExecContext(ctx, `UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?`, l.prevHash, l.hash, l.id); err != nil {
			return fmt.Errorf("backfill audit chain: entry %d: %w", l.id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`); err != nil {
		return fmt.Errorf("backfill audit chain: recreate trigger: %w", err)
	}
	return nil
}

// VerifyResult is the outcome of VerifyAudit.
type VerifyResult struct {
	// Entries is the number of entries in the log.
	Entries int
	// FirstBroken is the id of the first entry at which the chain breaks
	// (for a missing entry, the missing id); 0 means the chain is intact.
	FirstBroken int64
	// Reason says what is wrong at FirstBroken: "hash mismatch: entry
	// content changed", "prev_hash does not match entry N-1" or "entry
	// ids not contiguous: N missing". Empty when intact.
	Reason string
}

// Intact reports whether the whole chain verified.
func (r VerifyResult) Intact() bool { return r.FirstBroken == 0 }

// VerifyAudit recomputes the audit hash chain from the first entry and
// reports the first entry where it breaks. It reads one snapshot, so it
// can run while the server writes. A broken chain is a result, not an
// error; the error is for failing to read the log.
func (s *Store) VerifyAudit(ctx context.Context) (VerifyResult, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo
	rows, err := tx.QueryContext(ctx, `SELECT id, time, actor, remote, action, target, before, after, prev_hash, hash
		FROM audit ORDER BY id`)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	var res VerifyResult
	broken := func(id int64, reason string) {
		if res.FirstBroken == 0 {
			res.FirstBroken, res.Reason = id, reason
		}
	}
	var lastID int64
	prev := GenesisHash
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.id, &r.time, &r.actor, &r.remote, &r.action, &r.target, &r.before, &r.after, &r.prevHash, &r.hash); err != nil {
			return VerifyResult{}, fmt.Errorf("verify audit: entry after %d: %w", lastID, err)
		}
		res.Entries++
		if res.FirstBroken == 0 {
			switch {
			case r.id != lastID+1:
				broken(lastID+1, fmt.Sprintf("entry ids not contiguous: %d missing", lastID+1))
			case !r.hash.Valid || auditHash(r, r.prevHash.String) != r.hash.String || !r.prevHash.Valid:
				broken(r.id, "hash mismatch: entry content changed")
			case r.prevHash.String != prev:
				broken(r.id, fmt.Sprintf("prev_hash does not match entry %d", lastID))
			}
		}
		lastID, prev = r.id, r.hash.String
	}
	if err := rows.Err(); err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit: %w", err)
	}
	// Entries cut off the end leave the chain before them intact; the
	// AUTOINCREMENT sequence still remembers the ids handed out.
	seq, err := auditSequence(ctx, tx)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify audit: %w", err)
	}
	if seq > lastID {
		broken(lastID+1, fmt.Sprintf("entry ids not contiguous: %d missing", lastID+1))
	}
	return res, nil
}

// String renders the result as the CLI prints it.
func (r VerifyResult) String() string {
	if r.Intact() {
		return fmt.Sprintf("audit log intact: %d entries", r.Entries)
	}
	return fmt.Sprintf("audit log broken at entry %d: %s", r.FirstBroken, strings.TrimSpace(r.Reason))
}
