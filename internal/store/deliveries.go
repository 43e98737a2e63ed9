package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/nocsoc/nocsoc/internal/notify"
)

// Deliveries log every attempt to send a notification. A message that ran
// out of retries gets a final attempt row with status "dead": the
// dead-letter list.

const qRecordDelivery = `INSERT INTO deliveries
	(incident_id, channel, event, attempt, status, error, http_status, latency_ms, time)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

// RecordDelivery stores one delivery attempt and returns it with its ID. A
// zero Time means now; Attempt defaults to 1.
func (t *Tx) RecordDelivery(d notify.Delivery) (notify.Delivery, error) {
	switch {
	case strings.TrimSpace(d.Channel) == "":
		return notify.Delivery{}, fmt.Errorf("record delivery: %w", invalid("channel", "is required"))
	case d.Status != "sent" && d.Status != "failed" && d.Status != "dead":
		return notify.Delivery{}, fmt.Errorf("record delivery: %w", invalid("status", fmt.Sprintf("%q must be sent, failed or dead", d.Status)))
	case d.Attempt < 0:
		return notify.Delivery{}, fmt.Errorf("record delivery: %w", invalid("attempt", "must not be negative"))
	}
	if d.Attempt == 0 {
		d.Attempt = 1
	}
	if d.Time.IsZero() {
		d.Time = t.s.now()
	}
	d.Time = fromMS(ms(d.Time))
	err := t.queryRow(qRecordDelivery, d.IncidentID, d.Channel, d.Event, d.Attempt, d.Status, d.Error,
		d.HTTPStatus, d.LatencyMS, ms(d.Time)).Scan(&d.ID)
	if err != nil {
		return notify.Delivery{}, fmt.Errorf("record delivery to %s: %w", d.Channel, err)
	}
	return d, nil
}

// DeliveryFilter selects deliveries. Empty fields match everything.
// BeforeID pages backwards: pass the smallest ID of the previous page.
type DeliveryFilter struct {
	IncidentID int64
	Status     string
	Channel    string
	Limit      int // default 100, at most 1000
	BeforeID   int64
}

// ListDeliveries returns matching deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]notify.Delivery, error) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if f.IncidentID != 0 {
		add("incident_id = ?", f.IncidentID)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Channel != "" {
		add("channel = ?", f.Channel)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT id, incident_id, channel, event, attempt, status, error, http_status, latency_ms, time FROM deliveries`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := s.r.QueryContext(ctx, q, append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []notify.Delivery
	for rows.Next() {
		var d notify.Delivery
		var tm int64
		if err := rows.Scan(&d.ID, &d.IncidentID, &d.Channel, &d.Event, &d.Attempt, &d.Status, &d.Error,
			&d.HTTPStatus, &d.LatencyMS, &tm); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Time = fromMS(tm)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// DeadLetters returns the newest deliveries that gave up (status "dead").
func (s *Store) DeadLetters(ctx context.Context, limitN int) ([]notify.Delivery, error) {
	return s.ListDeliveries(ctx, DeliveryFilter{Status: "dead", Limit: limitN})
}
