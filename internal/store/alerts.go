package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// Alerts are written by the pipeline, not by a person, so they carry no
// Actor and no audit entry.

func validateAlert(a *alert.Alert) error {
	if a.Fingerprint == "" {
		if len(a.Labels) == 0 {
			return invalid("fingerprint", "is required when there are no labels to derive it from")
		}
		a.Fingerprint = alert.Fingerprint(a.Labels)
	}
	switch {
	case a.Team != alert.TeamNOC && a.Team != alert.TeamSOC:
		return invalid("team", fmt.Sprintf("%q must be %q or %q", a.Team, alert.TeamNOC, alert.TeamSOC))
	case a.Origin != alert.OriginNatural && a.Origin != alert.OriginHuman:
		return invalid("origin", fmt.Sprintf("%q must be %q or %q", a.Origin, alert.OriginNatural, alert.OriginHuman))
	case a.Severity == "":
		return invalid("severity", "is required")
	case strings.TrimSpace(a.Title) == "":
		return invalid("title", "is required")
	case a.StartedAt.IsZero():
		return invalid("started_at", "is required")
	}
	return nil
}

const alertCols = `id, fingerprint, status, team, origin, severity, title, description, labels, source,
	started_at, resolved_at, last_seen_at, occurrences,
	annotations, integration, dedup_key, incident_id, suppressed_by, acknowledged_at`

func scanAlert(row rowScanner) (alert.Alert, error) {
	var a alert.Alert
	var labels, annotations sql.NullString
	var started, seen int64
	var resolved, incident, acked sql.NullInt64
	if err := row.Scan(&a.ID, &a.Fingerprint, &a.Status, &a.Team, &a.Origin, &a.Severity, &a.Title,
		&a.Description, &labels, &a.Source, &started, &resolved, &seen, &a.Occurrences,
		&annotations, &a.Integration, &a.DedupKey, &incident, &a.SuppressedBy, &acked); err != nil {
		return alert.Alert{}, err
	}
	a.StartedAt, a.ResolvedAt, a.LastSeenAt = fromMS(started), fromMSPtr(resolved), fromMS(seen)
	a.IncidentID, a.AcknowledgedAt = incident.Int64, fromMSPtr(acked)
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
			return alert.Alert{}, fmt.Errorf("decode labels of alert %d: %w", a.ID, err)
		}
	}
	if annotations.Valid {
		if err := json.Unmarshal([]byte(annotations.String), &a.Annotations); err != nil {
			return alert.Alert{}, fmt.Errorf("decode annotations of alert %d: %w", a.ID, err)
		}
	}
	return a, nil
}

// nullID maps the "none" id 0 to NULL for foreign-key columns.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

const qUpsertAlert = `INSERT INTO alerts
	(fingerprint, status, team, origin, severity, title, description, labels, source,
	 started_at, last_seen_at, occurrences, annotations, integration, dedup_key, incident_id,
	 suppressed_by, acknowledged_at)
	VALUES (?, 'firing', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (fingerprint) WHERE status = 'firing' DO UPDATE SET
		occurrences = occurrences + 1,
		last_seen_at = MAX(last_seen_at, excluded.last_seen_at),
		annotations = COALESCE(excluded.annotations, annotations)
	RETURNING ` + alertCols

// UpsertAlert raises a inside the batch, with the same dedup rule as
// OpenAlert: if an alert with the fingerprint is firing, it counts one more
// occurrence, moves last_seen_at forward (never back) and replaces its
// annotations when a carries any, and is returned with created=false;
// everything else about it (incident, suppression, title …) is left for
// the caller to change explicitly. Otherwise a new firing alert is stored
// with all of a's fields and returned with created=true. ErrNotFound when
// a.IncidentID names no incident.
func (t *Tx) UpsertAlert(a alert.Alert) (alert.Alert, bool, error) {
	if err := validateAlert(&a); err != nil {
		return alert.Alert{}, false, fmt.Errorf("upsert alert: %w", err)
	}
	seen := a.LastSeenAt
	if seen.IsZero() || seen.Before(a.StartedAt) {
		seen = a.StartedAt
	}
	labels, err := jsonText(a.Labels)
	if err != nil {
		return alert.Alert{}, false, fmt.Errorf("upsert alert: encode labels: %w", err)
	}
	var annotations sql.NullString
	if len(a.Annotations) > 0 {
		if annotations, err = jsonText(a.Annotations); err != nil {
			return alert.Alert{}, false, fmt.Errorf("upsert alert: encode annotations: %w", err)
		}
	}
	out, err := scanAlert(t.queryRow(qUpsertAlert,
		a.Fingerprint, a.Team, a.Origin, a.Severity, a.Title, a.Description, labels, a.Source,
		ms(a.StartedAt), ms(seen), annotations, a.Integration, a.DedupKey, nullID(a.IncidentID),
		a.SuppressedBy, msPtr(a.AcknowledgedAt)))
	if isForeignKey(err) {
		return alert.Alert{}, false, fmt.Errorf("upsert alert %s: incident %d: %w", a.Fingerprint, a.IncidentID, ErrNotFound)
	}
	if err != nil {
		return alert.Alert{}, false, fmt.Errorf("upsert alert %s: %w", a.Fingerprint, err)
	}
	// A fresh row starts at 1; the upsert branch always makes it at least 2.
	return out, out.Occurrences == 1, nil
}

// OpenAlert raises a in its own transaction; see Tx.UpsertAlert for the
// dedup rule. A single upsert against the partial unique index does both
// cases, so concurrent calls, even from two processes, never open two
// firing alerts for one fingerprint. An empty Fingerprint is derived from
// Labels.
func (s *Store) OpenAlert(ctx context.Context, a alert.Alert) (alert.Alert, bool, error) {
	var out alert.Alert
	var created bool
	err := s.write(ctx, "alert.open", func(tx *sql.Tx) error {
		var err error
		out, created, err = s.newTx(ctx, tx).UpsertAlert(a)
		return err
	})
	if err != nil {
		return alert.Alert{}, false, fmt.Errorf("open alert: %w", err)
	}
	return out, created, nil
}

const qResolveAlert = `UPDATE alerts SET status = 'resolved', resolved_at = ?
	WHERE fingerprint = ? AND status = 'firing' RETURNING ` + alertCols

// ResolveAlert resolves the firing alert with that fingerprint at at and
// returns it; ErrNotFound when none is firing.
func (t *Tx) ResolveAlert(fingerprint string, at time.Time) (alert.Alert, error) {
	if at.IsZero() {
		return alert.Alert{}, fmt.Errorf("resolve alert: %w", invalid("resolved_at", "is required"))
	}
	out, err := scanAlert(t.queryRow(qResolveAlert, ms(at), fingerprint))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Alert{}, fmt.Errorf("resolve alert %s: no firing alert: %w", fingerprint, ErrNotFound)
	}
	if err != nil {
		return alert.Alert{}, fmt.Errorf("resolve alert %s: %w", fingerprint, err)
	}
	return out, nil
}

// ResolveAlert resolves the firing alert with that fingerprint at at in its
// own transaction; ErrNotFound when none is firing.
func (s *Store) ResolveAlert(ctx context.Context, fingerprint string, at time.Time) (alert.Alert, error) {
	var out alert.Alert
	err := s.write(ctx, "alert.resolve", func(tx *sql.Tx) error {
		var err error
		out, err = s.newTx(ctx, tx).ResolveAlert(fingerprint, at)
		return err
	})
	if err != nil {
		return alert.Alert{}, err
	}
	return out, nil
}

const (
	qSetAlertIncident   = `UPDATE alerts SET incident_id = ? WHERE id = ?`
	qSetAlertSuppressed = `UPDATE alerts SET suppressed_by = ? WHERE id = ?`
	qAckAlert           = `UPDATE alerts SET acknowledged_at = COALESCE(acknowledged_at, ?) WHERE id = ?`
)

// oneRow turns an UPDATE result into ErrNotFound when it matched nothing.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// SetAlertIncident attaches alert alertID to incident incidentID; 0
// detaches it. The incidents' alert counts follow. ErrNotFound when either
// does not exist.
func (t *Tx) SetAlertIncident(alertID, incidentID int64) error {
	res, err := t.exec(qSetAlertIncident, nullID(incidentID), alertID)
	if isForeignKey(err) {
		return fmt.Errorf("attach alert %d: incident %d: %w", alertID, incidentID, ErrNotFound)
	}
	return oneRow(res, err, fmt.Sprintf("attach alert %d to incident %d", alertID, incidentID))
}

// MoveAlerts moves every alert of incident from to incident to (0
// detaches them) and returns how many moved: merging one incident into
// another. ErrNotFound when to does not exist.
func (t *Tx) MoveAlerts(from, to int64) (int64, error) {
	if from == 0 {
		return 0, fmt.Errorf("move alerts: %w", invalid("from", "is required"))
	}
	if from == to {
		return 0, nil
	}
	res, err := t.tx.ExecContext(t.ctx, `UPDATE alerts SET incident_id = ? WHERE incident_id = ?`, nullID(to), from)
	if isForeignKey(err) {
		return 0, fmt.Errorf("move alerts of incident %d: incident %d: %w", from, to, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("move alerts of incident %d to %d: %w", from, to, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("move alerts of incident %d to %d: %w", from, to, err)
	}
	return n, nil
}

// SetAlertSuppressed records what suppresses alert alertID ("silence:<id>",
// "inhibit:<rule>"); "" marks it active again.
func (t *Tx) SetAlertSuppressed(alertID int64, by string) error {
	res, err := t.exec(qSetAlertSuppressed, by, alertID)
	return oneRow(res, err, fmt.Sprintf("set suppression of alert %d", alertID))
}

// AckAlert marks alert alertID acknowledged at at; the first
// acknowledgement is kept.
func (t *Tx) AckAlert(alertID int64, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("acknowledge alert %d: %w", alertID, invalid("acknowledged_at", "is required"))
	}
	res, err := t.exec(qAckAlert, ms(at), alertID)
	return oneRow(res, err, fmt.Sprintf("acknowledge alert %d", alertID))
}

// GetAlert returns one alert as this transaction sees it.
func (t *Tx) GetAlert(id int64) (alert.Alert, error) {
	return getAlert(t.ctx, t.tx, id)
}

// AlertFilter selects alerts. Empty fields match everything. BeforeID
// pages backwards: pass the smallest ID of the previous page.
type AlertFilter struct {
	Status, Team, Severity, Source string
	// IncidentID selects the alerts attached to one incident.
	IncidentID int64
	// Suppressed, when set, selects suppressed (true) or active (false)
	// alerts.
	Suppressed  *bool
	Integration string
	Limit       int // default 100, at most 1000; ignored by CountAlerts
	BeforeID    int64
}

func (f AlertFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Team != "" {
		add("team = ?", f.Team)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.IncidentID != 0 {
		add("incident_id = ?", f.IncidentID)
	}
	if f.Suppressed != nil {
		if *f.Suppressed {
			conds = append(conds, "suppressed_by != ''")
		} else {
			conds = append(conds, "suppressed_by = ''")
		}
	}
	if f.Integration != "" {
		add("integration = ?", f.Integration)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListAlerts returns matching alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]alert.Alert, error) {
	where, args := f.where()
	out, err := queryAlerts(ctx, s.r, `SELECT `+alertCols+` FROM alerts`+where+` ORDER BY id DESC LIMIT ?`,
		append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

func queryAlerts(ctx context.Context, q queryer, query string, args ...any) ([]alert.Alert, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FiringAlerts returns every firing alert, oldest first, so the incident
// service can rebuild its in-memory state at start.
func (s *Store) FiringAlerts(ctx context.Context) ([]alert.Alert, error) {
	out, err := queryAlerts(ctx, s.r, `SELECT `+alertCols+` FROM alerts WHERE status = 'firing' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("firing alerts: %w", err)
	}
	return out, nil
}

// IncidentAlerts returns a page of the alerts attached to an incident,
// newest first, and how many are attached in all. beforeID pages
// backwards: pass the smallest ID of the previous page. ErrNotFound when
// the incident does not exist.
func (s *Store) IncidentAlerts(ctx context.Context, incidentID int64, limitN int, beforeID int64) ([]alert.Alert, int, error) {
	var total int
	err := s.r.QueryRowContext(ctx, `SELECT alert_count FROM incidents WHERE id = ?`, incidentID).Scan(&total)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("alerts of incident %d: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("alerts of incident %d: %w", incidentID, err)
	}
	q := `SELECT ` + alertCols + ` FROM alerts WHERE incident_id = ? ORDER BY id DESC LIMIT ?`
	args := []any{incidentID, limit(limitN)}
	if beforeID > 0 {
		q = `SELECT ` + alertCols + ` FROM alerts WHERE incident_id = ? AND id < ? ORDER BY id DESC LIMIT ?`
		args = []any{incidentID, beforeID, limit(limitN)}
	}
	out, err := queryAlerts(ctx, s.r, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("alerts of incident %d: %w", incidentID, err)
	}
	return out, total, nil
}

// GetAlert returns one alert by id.
func (s *Store) GetAlert(ctx context.Context, id int64) (alert.Alert, error) {
	return getAlert(ctx, s.r, id)
}

func getAlert(ctx context.Context, q queryer, id int64) (alert.Alert, error) {
	a, err := scanAlert(q.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Alert{}, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return alert.Alert{}, fmt.Errorf("alert %d: %w", id, err)
	}
	return a, nil
}

// CountAlerts returns how many alerts match f (Limit is ignored).
func (s *Store) CountAlerts(ctx context.Context, f AlertFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count alerts: %w", err)
	}
	return n, nil
}

// AlertsByLabelValue returns alerts started in [from, to) that carry value
// in any of the given labels (the investigation pivot: every alert that
// touched an IP, a user or a host), newest first.
func (s *Store) AlertsByLabelValue(ctx context.Context, keys []string, value string, from, to time.Time, limit int) ([]alert.Alert, error) {
	if len(keys) == 0 || value == "" {
		return nil, nil
	}
	conds := make([]string, len(keys))
	args := make([]any, 0, len(keys)+3)
	for i, k := range keys {
		conds[i] = `json_extract(labels, ?) = ?`
		args = append(args, `$."`+strings.ReplaceAll(k, `"`, ``)+`"`, value)
	}
	args = append(args, ms(from), ms(to), limitOf(limit))
	out, err := queryAlerts(ctx, s.r, `SELECT `+alertCols+` FROM alerts WHERE (`+strings.Join(conds, " OR ")+
		`) AND started_at >= ? AND started_at < ? ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("alerts by label value: %w", err)
	}
	return out, nil
}

func limitOf(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}

// BumpAlertN records n more occurrences of a firing alert, by id: the
// fast path for repeats, which the incident service already knows are
// firing (it gathers a batch's repeats of one alert into one call). It
// moves last_seen_at forward to seen (never back), replaces the
// annotations when annotations is not empty (as UpsertAlert does), and
// reads nothing back. ErrNotFound when the alert is not firing.
func (t *Tx) BumpAlertN(id int64, n int, seen time.Time, annotations map[string]string) error {
	var js sql.NullString // NULL keeps the stored annotations
	if len(annotations) > 0 {
		var err error
		if js, err = jsonText(annotations); err != nil {
			return fmt.Errorf("bump alert %d: encode annotations: %w", id, err)
		}
	}
	res, err := t.exec(`UPDATE alerts SET occurrences = occurrences + ?, last_seen_at = MAX(last_seen_at, ?),
		annotations = COALESCE(?, annotations)
		WHERE id = ? AND status = 'firing'`, n, ms(seen), js, id)
	return oneRow(res, err, fmt.Sprintf("bump alert %d", id))
}
