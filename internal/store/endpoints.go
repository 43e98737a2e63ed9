package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// labelsSchema is migration 14: endpoint labels as JSON objects (the
// agent's --label flags and the admin's overrides, merged when read),
// the label selector of decisions and response actions (NULL: none), and
// the alert an automatic response came from, so it can be linked to the
// alert's incident.
const labelsSchema = `ALTER TABLE endpoints ADD COLUMN agent_labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN admin_labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE decisions ADD COLUMN labels TEXT;
ALTER TABLE response_actions ADD COLUMN labels TEXT;
ALTER TABLE response_actions ADD COLUMN alert_fingerprint TEXT NOT NULL DEFAULT '';
CREATE INDEX response_actions_unlinked ON response_actions (requested_at)
	WHERE incident_id IS NULL AND alert_fingerprint != '';
ALTER TABLE bouncers ADD COLUMN pull_labels TEXT NOT NULL DEFAULT '';`

// Endpoint statuses.
const (
	EndpointOnline       = "online"
	EndpointUnresponsive = "unresponsive"
	EndpointRevoked      = "revoked"
)

// EnrollmentToken lets one agent enroll, once, before ExpiresAt. Only its
// hash is stored; the plain token is shown once, when created.
type EnrollmentToken struct {
	ID         int64      `json:"id"`
	Hash       string     `json:"-"`
	Prefix     string     `json:"prefix"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
	EndpointID string     `json:"endpoint_id,omitempty"`
}

// Endpoint is an enrolled agent. Its credential is stored as a hash only.
type Endpoint struct {
	ID             string     `json:"id"`
	CredentialHash string     `json:"-"`
	Hostname       string     `json:"hostname"`
	OS             string     `json:"os"`
	Platform       string     `json:"platform,omitempty"`
	Kernel         string     `json:"kernel,omitempty"`
	Arch           string     `json:"arch,omitempty"`
	AgentVersion   string     `json:"agent_version,omitempty"`
	Remote         string     `json:"remote,omitempty"`
	IntervalMS     int64      `json:"interval_ms"`
	Status         string     `json:"status"`
	EnrolledAt     time.Time  `json:"enrolled_at"`
	LastSeenAt     time.Time  `json:"last_seen_at"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	// LastSeq is the highest batch sequence applied; Batches, Samples and
	// Duplicates count applied batches, their metric samples and replays
	// answered without applying.
	LastSeq    int64 `json:"last_seq"`
	Batches    int64 `json:"batches"`
	Samples    int64 `json:"samples"`
	Duplicates int64 `json:"duplicates"`
	// Buffered and Dropped are the agent's own buffer counters from its
	// last heartbeat.
	Buffered    int64      `json:"buffered"`
	Dropped     int64      `json:"dropped"`
	InventoryAt *time.Time `json:"inventory_at,omitempty"`
	// Labels are the endpoint's effective labels: AgentLabels (the
	// agent's --label flags) merged with AdminLabels (set through the
	// API), the admin's winning; an admin label with an empty value
	// removes the agent's label of that key.
	Labels      map[string]string `json:"labels"`
	AgentLabels map[string]string `json:"agent_labels"`
	AdminLabels map[string]string `json:"admin_labels"`
}

// MergeLabels returns agent's labels overridden by admin's; an empty
// admin value removes the key.
func MergeLabels(agent, admin map[string]string) map[string]string {
	out := make(map[string]string, len(agent)+len(admin))
	for k, v := range agent {
		out[k] = v
	}
	for k, v := range admin {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func parseLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

func labelsText(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

func endpointTarget(id string) string { return "endpoint:" + id }

// CreateEnrollmentToken stores a new enrollment token.
func (s *Store) CreateEnrollmentToken(ctx context.Context, actor Actor, t EnrollmentToken) (EnrollmentToken, error) {
	switch {
	case !validHash(t.Hash):
		return EnrollmentToken{}, fmt.Errorf("create enrollment token: %w", invalid("hash", "must be a hex SHA-256 (64 characters)"))
	case t.Prefix == "" || len(t.Prefix) > 8:
		return EnrollmentToken{}, fmt.Errorf("create enrollment token: %w", invalid("prefix", "must be 1-8 characters"))
	case t.ExpiresAt.IsZero():
		return EnrollmentToken{}, fmt.Errorf("create enrollment token: %w", invalid("expires_at", "is required"))
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	t.CreatedAt, t.ExpiresAt = fromMS(ms(t.CreatedAt)), fromMS(ms(t.ExpiresAt))
	t.CreatedBy = actor.Name
	t.UsedAt, t.EndpointID = nil, ""
	err := s.write(ctx, "enrollment_token.create", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO enrollment_tokens (hash, prefix, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, t.Hash, t.Prefix, t.CreatedBy, ms(t.CreatedAt), ms(t.ExpiresAt)).Scan(&t.ID)
		if isUnique(err) {
			return fmt.Errorf("create enrollment token: hash already in use: %w", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create enrollment token: %w", err)
		}
		return s.audit(ctx, tx, actor, "enrollment_token.create", fmt.Sprintf("enrollment_token:%d", t.ID), nil, t)
	})
	if err != nil {
		return EnrollmentToken{}, err
	}
	return t, nil
}

// ErrEnrollmentRefused: the enrollment token is unknown, used or expired.
// The three are not told apart to the caller, who may be an attacker.
var ErrEnrollmentRefused = errors.New("enrollment token unknown, already used or expired")

// EnrollEndpoint consumes the enrollment token with tokenHash and creates
// e, in one transaction: a token enrolls exactly one endpoint.
func (s *Store) EnrollEndpoint(ctx context.Context, tokenHash string, e Endpoint, now time.Time) (Endpoint, error) {
	switch {
	case e.ID == "":
		return Endpoint{}, fmt.Errorf("enroll endpoint: %w", invalid("id", "is required"))
	case !validHash(e.CredentialHash):
		return Endpoint{}, fmt.Errorf("enroll endpoint: %w", invalid("credential_hash", "must be a hex SHA-256"))
	case e.Hostname == "":
		return Endpoint{}, fmt.Errorf("enroll endpoint: %w", invalid("hostname", "is required"))
	}
	if err := agentproto.ValidateLabels(e.AgentLabels); err != nil {
		return Endpoint{}, fmt.Errorf("enroll endpoint: %w", invalid("labels", err.Error()))
	}
	if e.AgentLabels == nil {
		e.AgentLabels = map[string]string{}
	}
	e.AdminLabels = map[string]string{}
	e.Labels = MergeLabels(e.AgentLabels, nil)
	now = fromMS(ms(now))
	e.EnrolledAt, e.LastSeenAt, e.Status, e.RevokedAt = now, now, EndpointOnline, nil
	if e.IntervalMS <= 0 {
		e.IntervalMS = 30000
	}
	err := s.write(ctx, "endpoint.enroll", func(tx *sql.Tx) error {
		var id int64
		var expires int64
		var used sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id, expires_at, used_at FROM enrollment_tokens WHERE hash = ?`, tokenHash).Scan(&id, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (used.Valid || ms(now) >= expires)) {
			return ErrEnrollmentRefused
		}
		if err != nil {
			return fmt.Errorf("enroll endpoint: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enrollment_tokens SET used_at = ?, endpoint_id = ? WHERE id = ?`, ms(now), e.ID, id); err != nil {
			return fmt.Errorf("enroll endpoint: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO endpoints (id, credential_hash, hostname, os, platform, kernel, arch, agent_version, remote,
			interval_ms, status, enrolled_at, last_seen_at, agent_labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.CredentialHash, e.Hostname, e.OS, e.Platform, e.Kernel, e.Arch, e.AgentVersion, e.Remote,
			e.IntervalMS, e.Status, ms(now), ms(now), labelsText(e.AgentLabels))
		if isUnique(err) {
			return fmt.Errorf("enroll endpoint %s: %w", e.ID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("enroll endpoint: %w", err)
		}
		return s.audit(ctx, tx, Actor{Name: "agent:" + e.ID, Remote: e.Remote}, "endpoint.enroll", endpointTarget(e.ID), nil, e)
	})
	if err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

const endpointCols = `id, credential_hash, hostname, os, platform, kernel, arch, agent_version, remote, interval_ms, status,
	enrolled_at, last_seen_at, revoked_at, last_seq, batches, samples, duplicates, buffered, dropped, inventory_at,
	agent_labels, admin_labels`

func scanEndpoint(sc interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	var enrolled, seen int64
	var revoked, invAt sql.NullInt64
	var agentLabels, adminLabels string
	err := sc.Scan(&e.ID, &e.CredentialHash, &e.Hostname, &e.OS, &e.Platform, &e.Kernel, &e.Arch, &e.AgentVersion, &e.Remote,
		&e.IntervalMS, &e.Status, &enrolled, &seen, &revoked, &e.LastSeq, &e.Batches, &e.Samples, &e.Duplicates,
		&e.Buffered, &e.Dropped, &invAt, &agentLabels, &adminLabels)
	if err != nil {
		return Endpoint{}, err
	}
	if e.AgentLabels, err = parseLabels(agentLabels); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: agent labels: %w", e.ID, err)
	}
	if e.AdminLabels, err = parseLabels(adminLabels); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: admin labels: %w", e.ID, err)
	}
	e.Labels = MergeLabels(e.AgentLabels, e.AdminLabels)
	e.EnrolledAt, e.LastSeenAt = fromMS(enrolled), fromMS(seen)
	e.RevokedAt, e.InventoryAt = fromMSPtr(revoked), fromMSPtr(invAt)
	return e, nil
}

func endpointWhere(ctx context.Context, q queryer, where string, args ...any) (Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	return e, err
}

// Endpoint returns one endpoint.
func (s *Store) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	e, err := endpointWhere(ctx, s.r, `id = ?`, id)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", id, err)
	}
	return e, nil
}

// EndpointByCredential returns the endpoint holding the credential with
// this hash, revoked or not: the caller decides.
func (s *Store) EndpointByCredential(ctx context.Context, hash string) (Endpoint, error) {
	e, err := endpointWhere(ctx, s.r, `credential_hash = ?`, hash)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint by credential: %w", err)
	}
	return e, nil
}

// Endpoints lists all endpoints by hostname.
func (s *Store) Endpoints(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints ORDER BY hostname, id`)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Heartbeat is what an endpoint's heartbeat updates.
type Heartbeat struct {
	At         time.Time
	IntervalMS int64
	Hostname   string
	Remote     string
	Buffered   int64
	Dropped    int64
	// Labels, when not nil, replace the agent-reported labels (already
	// validated by the caller).
	Labels map[string]string
}

// RecordHeartbeat marks a live endpoint seen and online; it returns the
// status it had before. A revoked endpoint is ErrNotFound.
func (s *Store) RecordHeartbeat(ctx context.Context, id string, h Heartbeat) (prev string, err error) {
	err = s.write(ctx, "endpoint.heartbeat", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT status FROM endpoints WHERE id = ? AND revoked_at IS NULL`, id).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("endpoint %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		var labels sql.NullString
		if h.Labels != nil {
			labels = sql.NullString{String: labelsText(h.Labels), Valid: true}
		}
		_, err = tx.ExecContext(ctx, `UPDATE endpoints SET last_seen_at = ?, status = ?, interval_ms = ?,
			hostname = CASE WHEN ? = '' THEN hostname ELSE ? END, remote = ?, buffered = ?, dropped = ?,
			agent_labels = COALESCE(?, agent_labels) WHERE id = ?`,
			ms(h.At), EndpointOnline, h.IntervalMS, h.Hostname, h.Hostname, h.Remote, h.Buffered, h.Dropped, labels, id)
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		return nil
	})
	return prev, err
}

// MarkUnresponsive sets every online, unrevoked endpoint not seen for
// three of its intervals before now to unresponsive and returns them.
func (s *Store) MarkUnresponsive(ctx context.Context, now time.Time) ([]Endpoint, error) {
	var out []Endpoint
	err := s.write(ctx, "endpoint.unresponsive", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints
			WHERE revoked_at IS NULL AND status = ? AND last_seen_at + 3 * interval_ms < ?`, EndpointOnline, ms(now))
		if err != nil {
			return fmt.Errorf("mark unresponsive: %w", err)
		}
		for rows.Next() {
			e, err := scanEndpoint(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("mark unresponsive: %w", err)
			}
			e.Status = EndpointUnresponsive
			out = append(out, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mark unresponsive: %w", err)
		}
		for _, e := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET status = ? WHERE id = ?`, EndpointUnresponsive, e.ID); err != nil {
				return fmt.Errorf("mark unresponsive: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// BatchApplied reports whether the endpoint's batch was already applied.
func (s *Store) BatchApplied(ctx context.Context, endpointID, batchID string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM endpoint_batches WHERE endpoint_id = ? AND batch_id = ?`, endpointID, batchID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("batch applied: %w", err)
	}
	return n > 0, nil
}

// AppliedBatch is a batch whose data has been written elsewhere (metric
// samples, events) and is now recorded.
type AppliedBatch struct {
	BatchID string
	Seq     int64
	Samples int64
	// Inventory is the new inventory JSON, nil when the batch had none.
	Inventory []byte
	At        time.Time
}

// RecordBatch records an applied batch and updates the endpoint's
// counters and inventory in one transaction. duplicate is true, and
// nothing but the duplicate counter changes, when the batch id was already
// recorded.
func (s *Store) RecordBatch(ctx context.Context, endpointID string, b AppliedBatch) (duplicate bool, err error) {
	if b.BatchID == "" {
		return false, fmt.Errorf("record batch: %w", invalid("batch_id", "is required"))
	}
	err = s.write(ctx, "endpoint.batch", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO endpoint_batches (endpoint_id, batch_id, seq, applied_at) VALUES (?, ?, ?, ?)`,
			endpointID, b.BatchID, b.Seq, ms(b.At))
		if isUnique(err) {
			duplicate = true
			_, err = tx.ExecContext(ctx, `UPDATE endpoints SET duplicates = duplicates + 1 WHERE id = ?`, endpointID)
			return err
		}
		if isForeignKey(err) {
			return fmt.Errorf("endpoint %q: %w", endpointID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("record batch: %w", err)
		}
		if b.Inventory != nil {
			_, err = tx.ExecContext(ctx, `UPDATE endpoints SET inventory = ?, inventory_at = ? WHERE id = ?`, string(b.Inventory), ms(b.At), endpointID)
			if err != nil {
				return fmt.Errorf("record batch: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE endpoints SET batches = batches + 1, samples = samples + ?, last_seq = max(last_seq, ?) WHERE id = ?`,
			b.Samples, b.Seq, endpointID)
		if err != nil {
			return fmt.Errorf("record batch: %w", err)
		}
		return nil
	})
	return duplicate, err
}

// CountDuplicate counts a replayed batch answered without applying it.
func (s *Store) CountDuplicate(ctx context.Context, endpointID string) error {
	return s.write(ctx, "endpoint.duplicate", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE endpoints SET duplicates = duplicates + 1 WHERE id = ?`, endpointID)
		return err
	})
}

// EndpointInventory returns the latest inventory JSON (nil when none yet).
func (s *Store) EndpointInventory(ctx context.Context, id string) ([]byte, error) {
	var inv sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT inventory FROM endpoints WHERE id = ?`, id).Scan(&inv)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("endpoint %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("endpoint inventory: %w", err)
	}
	if !inv.Valid {
		return nil, nil
	}
	return []byte(inv.String), nil
}

// RevokeEndpoint revokes an endpoint's credential, effective on its next
// request. Revoking twice is ErrConflict.
func (s *Store) RevokeEndpoint(ctx context.Context, actor Actor, id string, at time.Time) (Endpoint, error) {
	var e Endpoint
	err := s.write(ctx, "endpoint.revoke", func(tx *sql.Tx) error {
		var err error
		e, err = endpointWhere(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("endpoint %q: %w", id, err)
		}
		if e.RevokedAt != nil {
			return fmt.Errorf("endpoint %q is already revoked: %w", id, ErrConflict)
		}
		before := e
		t := fromMS(ms(at))
		e.RevokedAt, e.Status = &t, EndpointRevoked
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET revoked_at = ?, status = ? WHERE id = ?`, ms(t), EndpointRevoked, id); err != nil {
			return fmt.Errorf("revoke endpoint: %w", err)
		}
		return s.audit(ctx, tx, actor, "endpoint.revoke", endpointTarget(id), before, e)
	})
	if err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

// SetEndpointLabels replaces the admin-set labels of an endpoint (an
// empty value hides the agent's label of that key), audited as
// endpoint.labels. ErrNotFound when the endpoint does not exist,
// ErrInvalid naming the label when one is malformed.
func (s *Store) SetEndpointLabels(ctx context.Context, actor Actor, id string, labels map[string]string) (Endpoint, error) {
	if len(labels) > agentproto.MaxLabels {
		return Endpoint{}, fmt.Errorf("set endpoint labels: %w", invalid("labels", fmt.Sprintf("at most %d labels", agentproto.MaxLabels)))
	}
	for _, k := range agentproto.SortedLabelKeys(labels) {
		v := labels[k]
		if v == "" {
			v = "x" // an empty value is allowed here: it removes the agent's label
		}
		if err := agentproto.ValidateLabel(k, v); err != nil {
			return Endpoint{}, fmt.Errorf("set endpoint labels: %w", invalid("labels."+k, err.Error()))
		}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	var after Endpoint
	err := s.write(ctx, "endpoint.labels", func(tx *sql.Tx) error {
		before, err := endpointWhere(ctx, tx, `id = ?`, id)
		if err != nil {
			return fmt.Errorf("endpoint %q: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET admin_labels = ? WHERE id = ?`, labelsText(labels), id); err != nil {
			return fmt.Errorf("set endpoint labels: %w", err)
		}
		after = before
		after.AdminLabels = labels
		after.Labels = MergeLabels(after.AgentLabels, labels)
		type audited struct {
			AdminLabels map[string]string `json:"admin_labels"`
			Labels      map[string]string `json:"labels"`
		}
		return s.audit(ctx, tx, actor, "endpoint.labels", endpointTarget(id),
			audited{before.AdminLabels, before.Labels}, audited{after.AdminLabels, after.Labels})
	})
	if err != nil {
		return Endpoint{}, err
	}
	return after, nil
}
