package response

import (
	"context"
	"fmt"

	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/store"
)

// RecordDelivery stores one delivery attempt and puts it on the incident's
// timeline; the notification dispatcher calls it after every attempt.
func (s *Service) RecordDelivery(ctx context.Context, d notify.Delivery) error {
	// Through the intake queue: deliveries from many workers commit
	// together instead of one write transaction each.
	_, err := s.Submit(ctx, Op{Kind: OpDelivery, Delivery: &d})
	return err
}

func recordDelivery(tx *store.Tx, d notify.Delivery) error {
	{
		if _, err := tx.RecordDelivery(d); err != nil {
			return err
		}
		if d.IncidentID == 0 {
			return nil
		}
		kind, msg := incident.KindNotified, fmt.Sprintf("%s notification sent via %s", d.Event, d.Channel)
		switch d.Status {
		case "failed":
			kind, msg = incident.KindNotifyFailed, fmt.Sprintf("%s notification via %s failed (attempt %d, will retry): %s", d.Event, d.Channel, d.Attempt, d.Error)
		case "dead":
			kind, msg = incident.KindNotifyFailed, fmt.Sprintf("%s notification via %s gave up after %d attempts: %s", d.Event, d.Channel, d.Attempt, d.Error)
		}
		_, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: d.IncidentID, Time: d.Time, Actor: "system", Kind: kind, Message: msg,
			Data: map[string]any{"channel": d.Channel, "attempt": d.Attempt, "status": d.Status, "http_status": d.HTTPStatus, "latency_ms": d.LatencyMS}})
		return err
	}
}

// SetDispatcher installs the notification dispatcher (it needs the
// service as its delivery log, so it is made after the service).
func (s *Service) SetDispatcher(d *notify.Dispatcher) { s.disp = d }

// SetPublicURL sets the base of incident links in notifications; the app
// knows it only once the listener is bound. Call it before Run.
func (s *Service) SetPublicURL(u string) { s.publicURL = u }

// DispatchStats returns the notification dispatcher's counters (zero
// before SetDispatcher).
func (s *Service) DispatchStats() notify.DispatchStats {
	if s.disp == nil {
		return notify.DispatchStats{}
	}
	return s.disp.Stats()
}
