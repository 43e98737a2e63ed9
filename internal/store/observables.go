package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nocsoc/nocsoc/internal/incident"
)

// Observables are the indicators (IP, domain, user, host, hash, URL …)
// collected on an incident, each with a TLP level saying how far it may be
// shared.

// defaultTLP is used when none is given: amber (limited disclosure) is
// the usual default of incident-response tools.
const defaultTLP = "amber"

// AddObservable adds o to its incident and returns it with its ID. An
// empty TLP means amber; a zero AddedAt means now. ErrConflict when the
// incident already has that type and value; ErrNotFound when the incident
// does not exist.
func (t *Tx) AddObservable(o incident.Observable) (incident.Observable, error) {
	if o.TLP == "" {
		o.TLP = defaultTLP
	}
	o.Value = strings.TrimSpace(o.Value)
	switch {
	case o.IncidentID == 0:
		return incident.Observable{}, fmt.Errorf("add observable: %w", invalid("incident_id", "is required"))
	case !slices.Contains(incident.ObservableTypes, o.Type):
		return incident.Observable{}, fmt.Errorf("add observable: %w", invalid("type", fmt.Sprintf("%q is not one of %s", o.Type, strings.Join(incident.ObservableTypes, ", "))))
	case o.Value == "":
		return incident.Observable{}, fmt.Errorf("add observable: %w", invalid("value", "is required"))
	case !slices.Contains(incident.TLPLevels, o.TLP):
		return incident.Observable{}, fmt.Errorf("add observable: %w", invalid("tlp", fmt.Sprintf("%q is not one of %s", o.TLP, strings.Join(incident.TLPLevels, ", "))))
	}
	if o.AddedAt.IsZero() {
		o.AddedAt = t.s.now()
	}
	o.AddedAt = fromMS(ms(o.AddedAt))
	err := t.tx.QueryRowContext(t.ctx, `INSERT INTO observables (incident_id, type, value, tlp, note, added_by, added_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		o.IncidentID, o.Type, o.Value, o.TLP, o.Note, o.AddedBy, ms(o.AddedAt)).Scan(&o.ID)
	switch {
	case isUnique(err):
		return incident.Observable{}, fmt.Errorf("add observable %s %q: already on incident %d: %w", o.Type, o.Value, o.IncidentID, ErrConflict)
	case isForeignKey(err):
		return incident.Observable{}, fmt.Errorf("add observable: incident %d: %w", o.IncidentID, ErrNotFound)
	case err != nil:
		return incident.Observable{}, fmt.Errorf("add observable to incident %d: %w", o.IncidentID, err)
	}
	return o, nil
}

// Observables returns an incident's observables in the order added.
func (s *Store) Observables(ctx context.Context, incidentID int64) ([]incident.Observable, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, incident_id, type, value, tlp, note, added_by, added_at
		FROM observables WHERE incident_id = ? ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("observables of incident %d: %w", incidentID, err)
	}
	defer rows.Close()
	var out []incident.Observable
	for rows.Next() {
		var o incident.Observable
		var added int64
		if err := rows.Scan(&o.ID, &o.IncidentID, &o.Type, &o.Value, &o.TLP, &o.Note, &o.AddedBy, &added); err != nil {
			return nil, fmt.Errorf("observables of incident %d: %w", incidentID, err)
		}
		o.AddedAt = fromMS(added)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("observables of incident %d: %w", incidentID, err)
	}
	return out, nil
}
