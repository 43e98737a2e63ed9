package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/decision"
)

// Decisions are validated by internal/decision before they get here; the
// store checks what only it can (the endpoints and incident exist), keeps
// the change counter bouncers stream from, and audits every change.

func decisionTarget(id int64) string { return "decision:" + strconv.FormatInt(id, 10) }

func bouncerTarget(id int64) string { return "bouncer:" + strconv.FormatInt(id, 10) }

const decisionCols = `id, type, scope, value, endpoints, reason, origin, origin_ref, created_by, created_at, until, revoked_at, revoked_by, labels`

func scanDecision(row rowScanner) (decision.Decision, error) {
	var d decision.Decision
	var eps, labels sql.NullString
	var created, until int64
	var revoked sql.NullInt64
	if err := row.Scan(&d.ID, &d.Type, &d.Scope, &d.Value, &eps, &d.Reason, &d.Origin, &d.OriginRef,
		&d.CreatedBy, &created, &until, &revoked, &d.RevokedBy, &labels); err != nil {
		return decision.Decision{}, err
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &d.Labels); err != nil {
			return decision.Decision{}, fmt.Errorf("decision %d: labels: %w", d.ID, err)
		}
	}
	if eps.Valid {
		if err := json.Unmarshal([]byte(eps.String), &d.Endpoints); err != nil {
			return decision.Decision{}, fmt.Errorf("decision %d: endpoints: %w", d.ID, err)
		}
	}
	d.CreatedAt, d.Until, d.RevokedAt = fromMS(created), fromMS(until), fromMSPtr(revoked)
	return d, nil
}

func scanDecisions(rows *sql.Rows, err error) ([]decision.Decision, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []decision.Decision
	for rows.Next() {
		d, err := scanDecision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// nextRev is the next value of the decisions change counter. Writes are
// serialised on one connection, so MAX+1 inside the transaction is unique.
const nextRev = `(SELECT COALESCE(MAX(MAX(rev), COALESCE(MAX(revoked_rev), 0)), 0) + 1 FROM decisions)`

// CreateDecision stores d (already validated by decision.Policy) and
// returns it with its ID. Listed endpoints must be enrolled and not
// revoked, and an incident origin must name an existing incident;
// otherwise ErrInvalid naming the field.
func (s *Store) CreateDecision(ctx context.Context, actor Actor, d decision.Decision) (decision.Decision, error) {
	switch {
	case d.Type == "", d.Scope == "", d.Value == "":
		return decision.Decision{}, fmt.Errorf("create decision: %w", invalid("decision", "type, scope and value are required"))
	case d.Origin == "":
		return decision.Decision{}, fmt.Errorf("create decision: %w", invalid("origin", "is required"))
	case !d.Until.After(d.CreatedAt):
		return decision.Decision{}, fmt.Errorf("create decision: %w", invalid("duration", "must be positive: every decision expires"))
	}
	if d.CreatedBy == "" {
		d.CreatedBy = actor.Name
	}
	d.CreatedAt, d.Until = fromMS(ms(d.CreatedAt)), fromMS(ms(d.Until))
	if d.Labels != nil && d.Endpoints != nil {
		return decision.Decision{}, fmt.Errorf("create decision: %w", invalid("labels", "give either endpoints or labels, not both"))
	}
	eps, err := jsonText(d.Endpoints)
	if err != nil {
		return decision.Decision{}, fmt.Errorf("create decision: %w", err)
	}
	var labels sql.NullString
	if d.Labels != nil {
		labels = sql.NullString{String: labelsText(d.Labels), Valid: true}
	}
	err = s.write(ctx, "decision.create", func(tx *sql.Tx) error {
		for i, e := range d.Endpoints {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM endpoints WHERE id = ? AND revoked_at IS NULL`, e).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("create decision: %w", invalid(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("no enrolled endpoint %q", e)))
			}
			if err != nil {
				return fmt.Errorf("create decision: endpoint %q: %w", e, err)
			}
		}
		if d.Origin == decision.OriginIncident {
			id, _ := strconv.ParseInt(strings.TrimPrefix(d.OriginRef, "incident:"), 10, 64)
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM incidents WHERE id = ?`, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("create decision: %w", invalid("incident_id", fmt.Sprintf("no incident %d", id)))
			}
			if err != nil {
				return fmt.Errorf("create decision: incident %d: %w", id, err)
			}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO decisions (type, scope, value, endpoints, labels, reason, origin, origin_ref, created_by, created_at, until, rev)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, `+nextRev+`) RETURNING id`,
			d.Type, d.Scope, d.Value, eps, labels, d.Reason, d.Origin, d.OriginRef, d.CreatedBy, ms(d.CreatedAt), ms(d.Until)).Scan(&d.ID)
		if err != nil {
			return fmt.Errorf("create decision: %w", err)
		}
		return s.audit(ctx, tx, actor, "decision.create", decisionTarget(d.ID), nil, d)
	})
	if err != nil {
		return decision.Decision{}, err
	}
	return d, nil
}

// GetDecision returns one decision, whatever its status.
func (s *Store) GetDecision(ctx context.Context, id int64) (decision.Decision, error) {
	return getDecision(ctx, s.r, id)
}

func getDecision(ctx context.Context, q queryer, id int64) (decision.Decision, error) {
	d, err := scanDecision(q.QueryRowContext(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return decision.Decision{}, fmt.Errorf("decision %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return decision.Decision{}, fmt.Errorf("decision %d: %w", id, err)
	}
	return d, nil
}

// RevokeDecision ends an active decision at now. ErrNotFound when it does
// not exist, ErrConflict when it has already expired or been revoked.
func (s *Store) RevokeDecision(ctx context.Context, actor Actor, id int64, now time.Time) (decision.Decision, error) {
	now = fromMS(ms(now))
	var after decision.Decision
	err := s.write(ctx, "decision.revoke", func(tx *sql.Tx) error {
		before, err := getDecision(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("revoke decision: %w", err)
		}
		if st := before.Status(now); st != decision.StatusActive {
			return fmt.Errorf("revoke decision %d: it is already %s: %w", id, st, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE decisions SET revoked_at = ?, revoked_by = ?, revoked_rev = `+nextRev+` WHERE id = ?`,
			ms(now), actor.Name, id); err != nil {
			return fmt.Errorf("revoke decision %d: %w", id, err)
		}
		after = before
		after.RevokedAt, after.RevokedBy = &now, actor.Name
		return s.audit(ctx, tx, actor, "decision.revoke", decisionTarget(id), before, after)
	})
	if err != nil {
		return decision.Decision{}, err
	}
	return after, nil
}

// ListDecisions returns the decisions active at now, oldest first, or with
// history the expired and revoked ones, newest first, at most limit
// (default 100, at most 1000).
func (s *Store) ListDecisions(ctx context.Context, now time.Time, history bool, limitN int) ([]decision.Decision, error) {
	var out []decision.Decision
	var err error
	if history {
		out, err = scanDecisions(s.r.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions
			WHERE revoked_at IS NOT NULL OR until <= ? ORDER BY id DESC LIMIT ?`, ms(now), limit(limitN)))
	} else {
		out, err = activeDecisions(ctx, s.r, now)
	}
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	return out, nil
}

func activeDecisions(ctx context.Context, q queryer, now time.Time) ([]decision.Decision, error) {
	return scanDecisions(q.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions
		WHERE revoked_at IS NULL AND until > ? ORDER BY id`, ms(now)))
}

// Bouncer is an enforcement point (a CrowdSec bouncer) that pulls
// decisions with an API key. Only the key's hash is stored.
type Bouncer struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	KeyHash   string `json:"-"`
	KeyPrefix string `json:"key_prefix"`
	// Endpoint, when set, binds the bouncer to an endpoint: it receives
	// fleet-wide decisions and those naming that endpoint. Unbound
	// bouncers receive only fleet-wide decisions.
	Endpoint   string     `json:"endpoint,omitempty"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastPullAt *time.Time `json:"last_pull_at,omitempty"`
	LastPullIP string     `json:"last_pull_ip,omitempty"`
	cursor     int64
	// pullLabels are its endpoint's labels at its last poll (labelKey).
	pullLabels string
}

// Usable reports whether the bouncer's key is accepted at now.
func (b Bouncer) Usable(now time.Time) bool {
	return b.RevokedAt == nil && (b.ExpiresAt == nil || now.Before(*b.ExpiresAt))
}

const bouncerCols = `id, name, key_hash, key_prefix, endpoint_id, created_by, created_at, expires_at, revoked_at, last_pull_at, last_pull_ip, cursor, pull_labels`

func scanBouncer(row rowScanner) (Bouncer, error) {
	var b Bouncer
	var created int64
	var exp, rev, pull sql.NullInt64
	if err := row.Scan(&b.ID, &b.Name, &b.KeyHash, &b.KeyPrefix, &b.Endpoint, &b.CreatedBy, &created, &exp, &rev, &pull, &b.LastPullIP, &b.cursor, &b.pullLabels); err != nil {
		return Bouncer{}, err
	}
	b.CreatedAt, b.ExpiresAt, b.RevokedAt, b.LastPullAt = fromMS(created), fromMSPtr(exp), fromMSPtr(rev), fromMSPtr(pull)
	return b, nil
}

// CreateBouncer stores a bouncer whose key the caller generated (and shows
// once). ErrConflict when a live bouncer has the name or the key hash is
// taken; ErrInvalid when the bound endpoint is not enrolled.
func (s *Store) CreateBouncer(ctx context.Context, actor Actor, b Bouncer) (Bouncer, error) {
	switch {
	case strings.TrimSpace(b.Name) == "":
		return Bouncer{}, fmt.Errorf("create bouncer: %w", invalid("name", "is required"))
	case !validHash(b.KeyHash):
		return Bouncer{}, fmt.Errorf("create bouncer: %w", invalid("key_hash", "must be a hex SHA-256"))
	}
	if b.CreatedBy == "" {
		b.CreatedBy = actor.Name
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.now()
	}
	b.CreatedAt = fromMS(ms(b.CreatedAt))
	if b.ExpiresAt != nil {
		t := fromMS(ms(*b.ExpiresAt))
		b.ExpiresAt = &t
	}
	err := s.write(ctx, "bouncer.create", func(tx *sql.Tx) error {
		if b.Endpoint != "" {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM endpoints WHERE id = ? AND revoked_at IS NULL`, b.Endpoint).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("create bouncer: %w", invalid("endpoint", fmt.Sprintf("no enrolled endpoint %q", b.Endpoint)))
			}
			if err != nil {
				return fmt.Errorf("create bouncer: endpoint: %w", err)
			}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO bouncers (name, key_hash, key_prefix, endpoint_id, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			b.Name, b.KeyHash, b.KeyPrefix, b.Endpoint, b.CreatedBy, ms(b.CreatedAt), msPtr(b.ExpiresAt)).Scan(&b.ID)
		if isUnique(err) {
			return fmt.Errorf("create bouncer %q: name or key already in use: %w", b.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create bouncer %q: %w", b.Name, err)
		}
		return s.audit(ctx, tx, actor, "bouncer.create", bouncerTarget(b.ID), nil, b)
	})
	if err != nil {
		return Bouncer{}, err
	}
	return b, nil
}

// BouncerByKeyHash returns the bouncer whose key hashes to hash, revoked
// or expired or not (the caller decides); ErrNotFound when none does.
func (s *Store) BouncerByKeyHash(ctx context.Context, hash string) (Bouncer, error) {
	b, err := scanBouncer(s.r.QueryRowContext(ctx, `SELECT `+bouncerCols+` FROM bouncers WHERE key_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Bouncer{}, fmt.Errorf("bouncer by key: %w", ErrNotFound)
	}
	if err != nil {
		return Bouncer{}, fmt.Errorf("bouncer by key: %w", err)
	}
	return b, nil
}

// ListBouncers returns every bouncer, revoked ones included, by ID.
func (s *Store) ListBouncers(ctx context.Context) ([]Bouncer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+bouncerCols+` FROM bouncers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list bouncers: %w", err)
	}
	defer rows.Close()
	var out []Bouncer
	for rows.Next() {
		b, err := scanBouncer(rows)
		if err != nil {
			return nil, fmt.Errorf("list bouncers: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list bouncers: %w", err)
	}
	return out, nil
}

// RevokeBouncer stops a bouncer's key from being accepted. ErrNotFound
// when it does not exist; revoking a revoked bouncer changes nothing.
func (s *Store) RevokeBouncer(ctx context.Context, actor Actor, id int64, now time.Time) error {
	now = fromMS(ms(now))
	return s.write(ctx, "bouncer.revoke", func(tx *sql.Tx) error {
		before, err := scanBouncer(tx.QueryRowContext(ctx, `SELECT `+bouncerCols+` FROM bouncers WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("bouncer %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke bouncer %d: %w", id, err)
		}
		if before.RevokedAt != nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bouncers SET revoked_at = ? WHERE id = ?`, ms(now), id); err != nil {
			return fmt.Errorf("revoke bouncer %d: %w", id, err)
		}
		after := before
		after.RevokedAt = &now
		return s.audit(ctx, tx, actor, "bouncer.revoke", bouncerTarget(id), before, after)
	})
}

// DecisionStream answers a bouncer's poll of /v1/decisions/stream at now:
// with startup (or on its first poll) every active decision that applies
// to it; otherwise the decisions created since its last poll (new) and
// those revoked or expired since then (deleted). It records the poll, so
// the next one starts where this one ended. Polls are not audited: they
// change no decision.
func (s *Store) DecisionStream(ctx context.Context, b Bouncer, startup bool, now time.Time, remote string) (added, deleted []decision.Decision, err error) {
	now = fromMS(ms(now))
	// One read transaction is one snapshot: the cursor saved below is the
	// highest change this answer included, so a change committed while we
	// read lands in the next poll.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("decision stream: %w", err)
	}
	defer tx.Rollback()
	cur, err := scanBouncer(tx.QueryRowContext(ctx, `SELECT `+bouncerCols+` FROM bouncers WHERE id = ?`, b.ID))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return nil, nil, fmt.Errorf("decision stream: bouncer %d: %w", b.ID, err)
	}
	var maxRev int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(MAX(rev), COALESCE(MAX(revoked_rev), 0)), 0) FROM decisions`).Scan(&maxRev); err != nil {
		return nil, nil, fmt.Errorf("decision stream: %w", err)
	}
	labels, err := boundLabels(ctx, tx, cur.Endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("decision stream: %w", err)
	}
	lkey := labelKey(labels)
	if startup || cur.LastPullAt == nil {
		added, err = activeDecisions(ctx, tx, now)
	} else {
		last := ms(*cur.LastPullAt)
		added, err = scanDecisions(tx.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions
			WHERE rev > ? AND revoked_at IS NULL AND until > ? ORDER BY id`, cur.cursor, ms(now)))
		if err == nil {
			// Revoked since the last poll, or expired since then; only
			// decisions the bouncer could have been sent (rev <= cursor).
			deleted, err = scanDecisions(tx.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions
				WHERE rev <= ?1 AND ((revoked_rev > ?1) OR (revoked_at IS NULL AND until > ?2 AND until <= ?3))
				ORDER BY id`, cur.cursor, last, ms(now)))
		}
	}
	relabel := err == nil && !startup && cur.LastPullAt != nil && lkey != cur.pullLabels
	if err == nil {
		added = appliesTo(added, cur.Endpoint, labels)
		if !relabel {
			deleted = appliesTo(deleted, cur.Endpoint, labels)
		}
	}
	if relabel {
		// The endpoint was relabelled since the last poll: label-scoped
		// decisions may have started or stopped applying to it. Every
		// active one goes out again, as new where it applies now and as
		// deleted where it does not; every decision ended since the last
		// poll is deleted whatever labels it applied to before (bouncers
		// add idempotently and ignore the deletion of a decision they
		// never had).
		var active []decision.Decision
		if active, err = activeDecisions(ctx, tx, now); err == nil {
			added, deleted = relabelled(active, added, deleted, cur.Endpoint, labels)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("decision stream: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return nil, nil, fmt.Errorf("decision stream: %w", err)
	}
	err = s.write(ctx, "bouncer.pull", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE bouncers SET last_pull_at = ?, last_pull_ip = ?, cursor = ?, pull_labels = ? WHERE id = ?`,
			ms(now), remote, maxRev, lkey, b.ID)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("decision stream: record poll: %w", err)
	}
	return added, deleted, nil
}

// ActiveDecisionsFor returns the decisions active at now that apply to an
// enforcement point bound to endpoint ("" for unbound).
func (s *Store) ActiveDecisionsFor(ctx context.Context, endpoint string, now time.Time) ([]decision.Decision, error) {
	ds, err := activeDecisions(ctx, s.r, now)
	if err != nil {
		return nil, fmt.Errorf("active decisions: %w", err)
	}
	labels, err := boundLabels(ctx, s.r, endpoint)
	if err != nil {
		return nil, fmt.Errorf("active decisions: %w", err)
	}
	return appliesTo(ds, endpoint, labels), nil
}

// boundLabels returns the effective labels of a bouncer's endpoint (nil
// for an unbound bouncer or a revoked or deleted endpoint), so
// label-scoped decisions reach the bouncers of matching endpoints.
func boundLabels(ctx context.Context, q queryer, endpoint string) (map[string]string, error) {
	if endpoint == "" {
		return nil, nil
	}
	e, err := endpointWhere(ctx, q, `id = ? AND revoked_at IS NULL`, endpoint)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("labels of endpoint %q: %w", endpoint, err)
	}
	return e.Labels, nil
}

// labelKey is a canonical text of a label set ("" for none), to notice
// a relabel between two polls.
func labelKey(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	b, _ := json.Marshal(labels) // keys sorted
	return string(b)
}

// relabelled adds to a poll's answer every active label-scoped decision:
// to added where it applies to the relabelled endpoint, to deleted where
// it does not. Decisions already in the answer are not repeated.
func relabelled(active, added, deleted []decision.Decision, endpoint string, labels map[string]string) ([]decision.Decision, []decision.Decision) {
	seen := make(map[int64]bool, len(added)+len(deleted))
	for _, d := range added {
		seen[d.ID] = true
	}
	for _, d := range deleted {
		seen[d.ID] = true
	}
	for _, d := range active {
		if d.Labels == nil || seen[d.ID] {
			continue
		}
		if d.AppliesToEndpoint(endpoint, labels) {
			added = append(added, d)
		} else {
			deleted = append(deleted, d)
		}
	}
	return added, deleted
}

func appliesTo(ds []decision.Decision, endpoint string, labels map[string]string) []decision.Decision {
	out := ds[:0]
	for _, d := range ds {
		if d.AppliesToEndpoint(endpoint, labels) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
