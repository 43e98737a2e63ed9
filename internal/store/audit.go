package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one row of the append-only audit log.
type AuditEntry struct {
	ID     int64           `json:"id"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`
	Remote string          `json:"remote,omitempty"`
	Action string          `json:"action"`
	Target string          `json:"target,omitempty"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// PrevHash is the previous entry's Hash (GenesisHash for the first);
	// Hash covers this entry and PrevHash (see auditchain.go).
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// AppendAudit records an action that changes nothing else in the store
// (a login, a failed login, an export). Changes made through the store
// write their own entries in the same transaction.
func (s *Store) AppendAudit(ctx context.Context, actor Actor, action, target string, before, after any) error {
	if action == "" {
		return invalid("action", "is required")
	}
	return s.write(ctx, "audit.append", func(tx *sql.Tx) error {
		return s.audit(ctx, tx, actor, action, target, before, after)
	})
}

// audit writes one entry inside tx. before and after are marshalled as
// JSON: types passed here must keep secrets out of their JSON form (User
// and Token tag their hashes json:"-").
func (s *Store) audit(ctx context.Context, tx *sql.Tx, actor Actor, action, target string, before, after any) error {
	if strings.TrimSpace(actor.Name) == "" {
		return invalid("actor", "is required for an audited change")
	}
	b, err := jsonText(before)
	if err != nil {
		return fmt.Errorf("audit %s: encode before: %w", action, err)
	}
	a, err := jsonText(after)
	if err != nil {
		return fmt.Errorf("audit %s: encode after: %w", action, err)
	}
	id, prev, err := nextAuditLink(ctx, tx)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	r := auditRow{id: id, time: ms(s.now()), actor: actor.Name, remote: actor.Remote,
		action: action, target: target, before: b, after: a}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit (id, time, actor, remote, action, target, before, after, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.id, r.time, r.actor, r.remote, r.action, r.target, r.before, r.after, prev, auditHash(r, prev)); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditFilter selects audit entries. Empty fields match everything; From
// is inclusive, To exclusive. BeforeID pages backwards: pass the smallest
// ID of the previous page.
type AuditFilter struct {
	Actor, Action, Target string
	From, To              time.Time
	Limit                 int // default 100, at most 1000
	BeforeID              int64
}

// ListAudit returns matching entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if !f.From.IsZero() {
		add("time >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		add("time < ?", ms(f.To))
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT id, time, actor, remote, action, target, before, after, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit(f.Limit))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t int64
		var b, a, ph, h sql.NullString
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.Remote, &e.Action, &e.Target, &b, &a, &ph, &h); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Time = fromMS(t)
		e.PrevHash, e.Hash = ph.String, h.String
		if b.Valid {
			e.Before = json.RawMessage(b.String)
		}
		if a.Valid {
			e.After = json.RawMessage(a.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
