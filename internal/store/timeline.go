package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/nocsoc/nocsoc/internal/incident"
)

// An incident's timeline is append-only: triggers refuse UPDATE and DELETE,
// as for the audit log, so it can serve as evidence.

const qAppendTimeline = `INSERT INTO timeline (incident_id, time, actor, kind, message, data)
	VALUES (?, ?, ?, ?, ?, ?) RETURNING id`

// AppendTimeline appends e to its incident's timeline and returns it with
// its ID. A zero Time means now. ErrNotFound when the incident does not
// exist.
func (t *Tx) AppendTimeline(e incident.TimelineEntry) (incident.TimelineEntry, error) {
	switch {
	case e.IncidentID == 0:
		return incident.TimelineEntry{}, fmt.Errorf("append timeline: %w", invalid("incident_id", "is required"))
	case strings.TrimSpace(e.Kind) == "":
		return incident.TimelineEntry{}, fmt.Errorf("append timeline: %w", invalid("kind", "is required"))
	case strings.TrimSpace(e.Actor) == "":
		return incident.TimelineEntry{}, fmt.Errorf("append timeline: %w", invalid("actor", "is required"))
	}
	if e.Time.IsZero() {
		e.Time = t.s.now()
	}
	e.Time = fromMS(ms(e.Time))
	var data sql.NullString
	if len(e.Data) > 0 {
		var err error
		if data, err = jsonText(e.Data); err != nil {
			return incident.TimelineEntry{}, fmt.Errorf("append timeline: encode data: %w", err)
		}
	}
	err := t.queryRow(qAppendTimeline, e.IncidentID, ms(e.Time), e.Actor, e.Kind, e.Message, data).Scan(&e.ID)
	if isForeignKey(err) {
		return incident.TimelineEntry{}, fmt.Errorf("append timeline: incident %d: %w", e.IncidentID, ErrNotFound)
	}
	if err != nil {
		return incident.TimelineEntry{}, fmt.Errorf("append timeline of incident %d: %w", e.IncidentID, err)
	}
	return e, nil
}

// Timeline returns up to limit entries of an incident, oldest first,
// after the entry afterID (0: from the start).
func (s *Store) Timeline(ctx context.Context, incidentID int64, limitN int, afterID int64) ([]incident.TimelineEntry, error) {
	return s.timeline(ctx, incidentID, `SELECT id, incident_id, time, actor, kind, message, data FROM timeline
		WHERE incident_id = ? AND id > ? ORDER BY id LIMIT ?`, incidentID, afterID, limit(limitN))
}

// TimelineBefore returns up to limit entries of an incident, newest
// first, before the entry beforeID (0: from the newest): the first page of
// a very large incident without reading the rest.
func (s *Store) TimelineBefore(ctx context.Context, incidentID int64, limitN int, beforeID int64) ([]incident.TimelineEntry, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	return s.timeline(ctx, incidentID, `SELECT id, incident_id, time, actor, kind, message, data FROM timeline
		WHERE incident_id = ? AND id < ? ORDER BY id DESC LIMIT ?`, incidentID, beforeID, limit(limitN))
}

func (s *Store) timeline(ctx context.Context, incidentID int64, q string, args ...any) ([]incident.TimelineEntry, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("timeline of incident %d: %w", incidentID, err)
	}
	defer rows.Close()
	var out []incident.TimelineEntry
	for rows.Next() {
		var e incident.TimelineEntry
		var tm int64
		var data sql.NullString
		if err := rows.Scan(&e.ID, &e.IncidentID, &tm, &e.Actor, &e.Kind, &e.Message, &data); err != nil {
			return nil, fmt.Errorf("timeline of incident %d: %w", incidentID, err)
		}
		e.Time = fromMS(tm)
		if data.Valid {
			if err := json.Unmarshal([]byte(data.String), &e.Data); err != nil {
				return nil, fmt.Errorf("timeline of incident %d: decode data of entry %d: %w", incidentID, e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("timeline of incident %d: %w", incidentID, err)
	}
	return out, nil
}
