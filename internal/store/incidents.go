package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
)

// Incidents are written by the incident service through a Tx; the service
// owns the workflow (CanTransition, escalation), the store keeps rows
// meaningful. AlertCount is maintained by triggers on alerts and is never
// taken from the caller.

func validateIncident(inc *incident.Incident) error {
	if inc.Status == "" {
		inc.Status = incident.StatusTriggered
	}
	switch {
	case strings.TrimSpace(inc.Title) == "":
		return invalid("title", "is required")
	case inc.Team != alert.TeamNOC && inc.Team != alert.TeamSOC:
		return invalid("team", fmt.Sprintf("%q must be %q or %q", inc.Team, alert.TeamNOC, alert.TeamSOC))
	case inc.Origin != alert.OriginNatural && inc.Origin != alert.OriginHuman:
		return invalid("origin", fmt.Sprintf("%q must be %q or %q", inc.Origin, alert.OriginNatural, alert.OriginHuman))
	case inc.Severity == "":
		return invalid("severity", "is required")
	case !slices.Contains(incident.Statuses, inc.Status):
		return invalid("status", fmt.Sprintf("%q is not one of %s", inc.Status, strings.Join(incident.Statuses, ", ")))
	case inc.TriggeredAt.IsZero():
		return invalid("triggered_at", "is required")
	case inc.Tier < -1:
		return invalid("tier", "must be -1 (not yet paged) or a tier index")
	}
	return nil
}

const incidentCols = `id, title, severity, team, origin, joint, status, owner, tier, policy_id, group_key,
	service, labels, runbook_id, channels, triggered_at, acknowledged_at, mitigated_at, resolved_at,
	closed_at, next_escalation_at, escalation_round, escalations, handoffs, alert_count, merged_into, policy`

func scanIncident(row rowScanner) (incident.Incident, error) {
	var inc incident.Incident
	var labels, channels sql.NullString
	var triggered int64
	var acked, mitigated, resolved, closed, next sql.NullInt64
	if err := row.Scan(&inc.ID, &inc.Title, &inc.Severity, &inc.Team, &inc.Origin, &inc.Joint, &inc.Status,
		&inc.Owner, &inc.Tier, &inc.PolicyID, &inc.GroupKey, &inc.Service, &labels, &inc.RunbookID, &channels,
		&triggered, &acked, &mitigated, &resolved, &closed, &next, &inc.EscalationRound, &inc.Escalations,
		&inc.Handoffs, &inc.AlertCount, &inc.MergedInto, &inc.Policy); err != nil {
		return incident.Incident{}, err
	}
	inc.TriggeredAt = fromMS(triggered)
	inc.AcknowledgedAt, inc.MitigatedAt = fromMSPtr(acked), fromMSPtr(mitigated)
	inc.ResolvedAt, inc.ClosedAt, inc.NextEscalationAt = fromMSPtr(resolved), fromMSPtr(closed), fromMSPtr(next)
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &inc.Labels); err != nil {
			return incident.Incident{}, fmt.Errorf("decode labels of incident %d: %w", inc.ID, err)
		}
	}
	if channels.Valid {
		if err := json.Unmarshal([]byte(channels.String), &inc.Channels); err != nil {
			return incident.Incident{}, fmt.Errorf("decode channels of incident %d: %w", inc.ID, err)
		}
	}
	return inc, nil
}

// incidentArgs are the bound values of every column but id and
// alert_count, in qInsertIncident order.
func incidentArgs(inc incident.Incident) ([]any, error) {
	var labels, channels sql.NullString
	var err error
	if len(inc.Labels) > 0 {
		if labels, err = jsonText(inc.Labels); err != nil {
			return nil, fmt.Errorf("encode labels: %w", err)
		}
	}
	if len(inc.Channels) > 0 {
		if channels, err = jsonText(inc.Channels); err != nil {
			return nil, fmt.Errorf("encode channels: %w", err)
		}
	}
	return []any{inc.Title, inc.Severity, inc.Team, inc.Origin, inc.Joint, inc.Status, inc.Owner, inc.Tier,
		inc.PolicyID, inc.GroupKey, inc.Service, labels, inc.RunbookID, channels, ms(inc.TriggeredAt),
		msPtr(inc.AcknowledgedAt), msPtr(inc.MitigatedAt), msPtr(inc.ResolvedAt), msPtr(inc.ClosedAt),
		msPtr(inc.NextEscalationAt), inc.EscalationRound, inc.Escalations, inc.Handoffs, inc.MergedInto, inc.Policy}, nil
}

const qInsertIncident = `INSERT INTO incidents (title, severity, team, origin, joint, status, owner, tier,
	policy_id, group_key, service, labels, runbook_id, channels, triggered_at, acknowledged_at,
	mitigated_at, resolved_at, closed_at, next_escalation_at, escalation_round, escalations, handoffs,
	merged_into, policy)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	RETURNING ` + incidentCols

const qUpdateIncident = `UPDATE incidents SET title = ?, severity = ?, team = ?, origin = ?, joint = ?,
	status = ?, owner = ?, tier = ?, policy_id = ?, group_key = ?, service = ?, labels = ?, runbook_id = ?,
	channels = ?, triggered_at = ?, acknowledged_at = ?, mitigated_at = ?, resolved_at = ?, closed_at = ?,
	next_escalation_at = ?, escalation_round = ?, escalations = ?, handoffs = ?, merged_into = ?, policy = ?
	WHERE id = ?`

// CreateIncident stores a new incident and returns it as stored, with its
// ID (AlertCount starts at 0: attach alerts with UpsertAlert or
// SetAlertIncident). An empty Status means triggered.
func (t *Tx) CreateIncident(inc incident.Incident) (incident.Incident, error) {
	if err := validateIncident(&inc); err != nil {
		return incident.Incident{}, fmt.Errorf("create incident: %w", err)
	}
	args, err := incidentArgs(inc)
	if err != nil {
		return incident.Incident{}, fmt.Errorf("create incident: %w", err)
	}
	out, err := scanIncident(t.queryRow(qInsertIncident, args...))
	if err != nil {
		return incident.Incident{}, fmt.Errorf("create incident %q: %w", inc.Title, err)
	}
	return out, nil
}

// UpdateIncident replaces every column of incident inc.ID except
// alert_count, which follows the attached alerts; ErrNotFound if it does
// not exist.
func (t *Tx) UpdateIncident(inc incident.Incident) error {
	if err := validateIncident(&inc); err != nil {
		return fmt.Errorf("update incident %d: %w", inc.ID, err)
	}
	args, err := incidentArgs(inc)
	if err != nil {
		return fmt.Errorf("update incident %d: %w", inc.ID, err)
	}
	res, err := t.exec(qUpdateIncident, append(args, inc.ID)...)
	return oneRow(res, err, fmt.Sprintf("update incident %d", inc.ID))
}

// GetIncident returns one incident as this transaction sees it.
func (t *Tx) GetIncident(id int64) (incident.Incident, error) {
	return getIncident(t.ctx, t.tx, id)
}

// GetIncident returns one incident.
func (s *Store) GetIncident(ctx context.Context, id int64) (incident.Incident, error) {
	return getIncident(ctx, s.r, id)
}

func getIncident(ctx context.Context, q queryer, id int64) (incident.Incident, error) {
	inc, err := scanIncident(q.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return incident.Incident{}, fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return incident.Incident{}, fmt.Errorf("incident %d: %w", id, err)
	}
	return inc, nil
}

func queryIncidents(ctx context.Context, q queryer, query string, args ...any) ([]incident.Incident, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incident.Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// IncidentFilter selects incidents. Empty fields match everything.
type IncidentFilter struct {
	Statuses []string
	// Team matches incidents owned by the team and every joint incident:
	// what that team's queue shows.
	Team     string
	Severity string
	// Open, when set, selects open (not resolved or closed) or finished
	// incidents.
	Open     *bool
	Limit    int // default 100, at most 1000
	BeforeID int64
}

// ListIncidents returns matching incidents, newest first.
func (s *Store) ListIncidents(ctx context.Context, f IncidentFilter) ([]incident.Incident, error) {
	var conds []string
	var args []any
	if len(f.Statuses) > 0 {
		for i, st := range f.Statuses {
			if !slices.Contains(incident.Statuses, st) {
				return nil, fmt.Errorf("list incidents: %w", invalid(fmt.Sprintf("statuses[%d]", i), fmt.Sprintf("%q is not a status", st)))
			}
			args = append(args, st)
		}
		conds = append(conds, "status IN (?"+strings.Repeat(", ?", len(f.Statuses)-1)+")")
	}
	if f.Team != "" {
		conds = append(conds, "(team = ? OR joint = 1)")
		args = append(args, f.Team)
	}
	if f.Severity != "" {
		conds = append(conds, "severity = ?")
		args = append(args, f.Severity)
	}
	if f.Open != nil {
		if *f.Open {
			conds = append(conds, "status NOT IN ('resolved', 'closed')")
		} else {
			conds = append(conds, "status IN ('resolved', 'closed')")
		}
	}
	if f.BeforeID > 0 {
		conds = append(conds, "id < ?")
		args = append(args, f.BeforeID)
	}
	q := `SELECT ` + incidentCols + ` FROM incidents`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	out, err := queryIncidents(ctx, s.r, q, append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

// OpenIncidents returns every incident that is neither resolved nor
// closed, oldest first, for loading the service's state at start.
func (s *Store) OpenIncidents(ctx context.Context) ([]incident.Incident, error) {
	out, err := queryIncidents(ctx, s.r, `SELECT `+incidentCols+` FROM incidents
		WHERE status NOT IN ('resolved', 'closed') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	return out, nil
}

// IncidentsForMetrics returns every incident triggered, acknowledged or
// resolved within [from, to), oldest first: what MTTA, MTTR and the
// period's counts need.
func (s *Store) IncidentsForMetrics(ctx context.Context, from, to time.Time) ([]incident.Incident, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("incidents for metrics: %w", invalid("to", "must be after from"))
	}
	f, t := ms(from), ms(to)
	// Three indexed range scans instead of one OR that would scan the table.
	out, err := queryIncidents(ctx, s.r, `SELECT `+incidentCols+` FROM incidents WHERE id IN (
			SELECT id FROM incidents WHERE triggered_at >= ? AND triggered_at < ?
			UNION SELECT id FROM incidents WHERE acknowledged_at >= ? AND acknowledged_at < ?
			UNION SELECT id FROM incidents WHERE resolved_at >= ? AND resolved_at < ?)
		ORDER BY id`, f, t, f, t, f, t)
	if err != nil {
		return nil, fmt.Errorf("incidents for metrics: %w", err)
	}
	return out, nil
}

// AlertVolumeRow counts the alerts started in a period for one team and
// severity, and the distinct incidents they are attached to.
type AlertVolumeRow struct {
	Team      string `json:"team"`
	Severity  string `json:"severity"`
	Alerts    int    `json:"alerts"`
	Incidents int    `json:"incidents"`
}

// AlertVolume counts alerts started within [from, to) per team and
// severity, ordered by team then severity.
func (s *Store) AlertVolume(ctx context.Context, from, to time.Time) ([]AlertVolumeRow, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("alert volume: %w", invalid("to", "must be after from"))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT team, severity, COUNT(*), COUNT(DISTINCT incident_id)
		FROM alerts WHERE started_at >= ? AND started_at < ?
		GROUP BY team, severity ORDER BY team, severity`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("alert volume: %w", err)
	}
	defer rows.Close()
	var out []AlertVolumeRow
	for rows.Next() {
		var r AlertVolumeRow
		if err := rows.Scan(&r.Team, &r.Severity, &r.Alerts, &r.Incidents); err != nil {
			return nil, fmt.Errorf("alert volume: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert volume: %w", err)
	}
	return out, nil
}
