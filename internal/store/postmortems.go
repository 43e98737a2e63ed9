package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nocsoc/nocsoc/internal/incident"
)

// A postmortem is one per incident, rewritten as the review progresses.
// Whether the incident is resolved is the service's rule, not the store's.

// SavePostmortem creates or replaces the postmortem of p.IncidentID. A
// zero UpdatedAt means now. ErrNotFound when the incident does not exist.
func (t *Tx) SavePostmortem(p incident.Postmortem) error {
	switch {
	case p.IncidentID == 0:
		return fmt.Errorf("save postmortem: %w", invalid("incident_id", "is required"))
	case !slices.Contains(incident.NaturalCauses, p.Category) && !slices.Contains(incident.HumanCauses, p.Category):
		return fmt.Errorf("save postmortem: %w", invalid("category", fmt.Sprintf("%q is not one of %s, %s", p.Category,
			strings.Join(incident.NaturalCauses, ", "), strings.Join(incident.HumanCauses, ", "))))
	}
	for i, a := range p.ActionItems {
		if strings.TrimSpace(a.Title) == "" {
			return fmt.Errorf("save postmortem: %w", invalid(fmt.Sprintf("action_items[%d].title", i), "is required"))
		}
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = t.s.now()
	}
	factors, err := jsonText(p.ContributingFactors)
	if err != nil {
		return fmt.Errorf("save postmortem: encode contributing factors: %w", err)
	}
	items, err := jsonText(p.ActionItems)
	if err != nil {
		return fmt.Errorf("save postmortem: encode action items: %w", err)
	}
	_, err = t.tx.ExecContext(t.ctx, `INSERT INTO postmortems
		(incident_id, category, summary, contributing_factors, action_items, author, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (incident_id) DO UPDATE SET category = excluded.category, summary = excluded.summary,
			contributing_factors = excluded.contributing_factors, action_items = excluded.action_items,
			author = excluded.author, updated_at = excluded.updated_at`,
		p.IncidentID, p.Category, p.Summary, factors, items, p.Author, ms(p.UpdatedAt))
	if isForeignKey(err) {
		return fmt.Errorf("save postmortem: incident %d: %w", p.IncidentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("save postmortem of incident %d: %w", p.IncidentID, err)
	}
	return nil
}

// Postmortem returns the postmortem of an incident; ErrNotFound when none
// was written.
func (s *Store) Postmortem(ctx context.Context, incidentID int64) (incident.Postmortem, error) {
	var p incident.Postmortem
	var factors, items sql.NullString
	var updated int64
	err := s.r.QueryRowContext(ctx, `SELECT incident_id, category, summary, contributing_factors, action_items,
		author, updated_at FROM postmortems WHERE incident_id = ?`, incidentID).
		Scan(&p.IncidentID, &p.Category, &p.Summary, &factors, &items, &p.Author, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return incident.Postmortem{}, fmt.Errorf("postmortem of incident %d: %w", incidentID, ErrNotFound)
	}
	if err != nil {
		return incident.Postmortem{}, fmt.Errorf("postmortem of incident %d: %w", incidentID, err)
	}
	p.UpdatedAt = fromMS(updated)
	if factors.Valid {
		if err := json.Unmarshal([]byte(factors.String), &p.ContributingFactors); err != nil {
			return incident.Postmortem{}, fmt.Errorf("postmortem of incident %d: decode factors: %w", incidentID, err)
		}
	}
	if items.Valid {
		if err := json.Unmarshal([]byte(items.String), &p.ActionItems); err != nil {
			return incident.Postmortem{}, fmt.Errorf("postmortem of incident %d: decode action items: %w", incidentID, err)
		}
	}
	return p, nil
}
