package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
)

func testIncident(title string) incident.Incident {
	return incident.Incident{
		Title:       title,
		Severity:    "high",
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		TriggeredAt: t0,
		GroupKey:    "g:" + title,
		Labels:      map[string]string{"service": "web"},
		Channels:    []string{"ops"},
	}
}

// mustIncident creates an incident in its own batch.
func mustIncident(t testing.TB, s *Store, inc incident.Incident) incident.Incident {
	t.Helper()
	var out incident.Incident
	if err := s.Batch(context.Background(), func(tx *Tx) error {
		var err error
		out, err = tx.CreateIncident(inc)
		return err
	}); err != nil {
		t.Fatalf("CreateIncident: %v", err)
	}
	return out
}

func batch(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Batch(context.Background(), fn); err != nil {
		t.Fatalf("Batch: %v", err)
	}
}

func TestBatchUpsertAlertAllFields(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inc := mustIncident(t, s, testIncident("web down"))
	ack := t0.Add(time.Second)
	a := testAlert("web")
	a.Annotations = map[string]string{"summary": "first"}
	a.Integration, a.DedupKey, a.IncidentID = "am", "dk-1", inc.ID
	a.SuppressedBy, a.AcknowledgedAt = "silence:3", &ack

	var first, second alert.Alert
	var created1, created2 bool
	batch(t, s, func(tx *Tx) error {
		var err error
		if first, created1, err = tx.UpsertAlert(a); err != nil {
			return err
		}
		again := testAlert("web")
		again.LastSeenAt = t0.Add(time.Minute)
		again.Annotations = map[string]string{"summary": "second"}
		again.IncidentID = 0 // repeats never move the alert
		second, created2, err = tx.UpsertAlert(again)
		return err
	})
	if !created1 || created2 || second.ID != first.ID || second.Occurrences != 2 {
		t.Fatalf("created %v/%v ids %d/%d occurrences %d", created1, created2, first.ID, second.ID, second.Occurrences)
	}
	got, err := s.GetAlert(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations["summary"] != "second" || got.Integration != "am" || got.DedupKey != "dk-1" ||
		got.IncidentID != inc.ID || got.SuppressedBy != "silence:3" || got.AcknowledgedAt == nil ||
		!got.AcknowledgedAt.Equal(ack) || !got.LastSeenAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("stored alert: %+v", got)
	}
	// A repeat without annotations keeps the stored ones.
	batch(t, s, func(tx *Tx) error { _, _, err := tx.UpsertAlert(testAlert("web")); return err })
	if got, _ := s.GetAlert(ctx, first.ID); got.Annotations["summary"] != "second" || got.Occurrences != 3 {
		t.Errorf("annotations after bare repeat: %+v", got)
	}
	if inc2, _ := s.GetIncident(ctx, inc.ID); inc2.AlertCount != 1 {
		t.Errorf("alert_count = %d, want 1", inc2.AlertCount)
	}

	// Unknown incident, bad input: errors, nothing written.
	n0, _ := s.CountAlerts(ctx, AlertFilter{})
	bad := testAlert("x")
	bad.IncidentID = 999
	if err := s.Batch(ctx, func(tx *Tx) error { _, _, err := tx.UpsertAlert(bad); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v, want ErrNotFound", err)
	}
	bad = testAlert("y")
	bad.Team = "ops"
	var fe *FieldError
	if err := s.Batch(ctx, func(tx *Tx) error { _, _, err := tx.UpsertAlert(bad); return err }); !errors.As(err, &fe) || fe.Field != "team" {
		t.Errorf("bad team: %v", err)
	}
	if n, _ := s.CountAlerts(ctx, AlertFilter{}); n != n0 {
		t.Errorf("alerts %d after failed batches, want %d", n, n0)
	}
}

func TestBatchAlertMutations(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a1 := mustIncident(t, s, testIncident("a"))
	b1 := mustIncident(t, s, testIncident("b"))
	var ids []int64
	batch(t, s, func(tx *Tx) error {
		for i := range 3 {
			al := testAlert(fmt.Sprint("h", i))
			al.IncidentID = a1.ID
			out, _, err := tx.UpsertAlert(al)
			if err != nil {
				return err
			}
			ids = append(ids, out.ID)
		}
		return nil
	})
	count := func(id int64) int {
		inc, err := s.GetIncident(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return inc.AlertCount
	}
	if count(a1.ID) != 3 {
		t.Fatalf("count a = %d", count(a1.ID))
	}

	// Split one out, then merge the rest.
	batch(t, s, func(tx *Tx) error { return tx.SetAlertIncident(ids[0], b1.ID) })
	if count(a1.ID) != 2 || count(b1.ID) != 1 {
		t.Errorf("after split: a=%d b=%d", count(a1.ID), count(b1.ID))
	}
	var moved int64
	batch(t, s, func(tx *Tx) error { var err error; moved, err = tx.MoveAlerts(a1.ID, b1.ID); return err })
	if moved != 2 || count(a1.ID) != 0 || count(b1.ID) != 3 {
		t.Errorf("after merge: moved=%d a=%d b=%d", moved, count(a1.ID), count(b1.ID))
	}
	batch(t, s, func(tx *Tx) error { return tx.SetAlertIncident(ids[1], 0) })
	if got, _ := s.GetAlert(ctx, ids[1]); got.IncidentID != 0 || count(b1.ID) != 2 {
		t.Errorf("after detach: alert %+v, b=%d", got, count(b1.ID))
	}

	batch(t, s, func(tx *Tx) error {
		if err := tx.SetAlertSuppressed(ids[2], "inhibit:db-down"); err != nil {
			return err
		}
		if err := tx.AckAlert(ids[2], t0.Add(time.Minute)); err != nil {
			return err
		}
		return tx.AckAlert(ids[2], t0.Add(time.Hour)) // the first ack stays
	})
	got, _ := s.GetAlert(ctx, ids[2])
	if got.SuppressedBy != "inhibit:db-down" || got.AcknowledgedAt == nil || !got.AcknowledgedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("suppress/ack: %+v", got)
	}
	yes, no := true, false
	if n, _ := s.CountAlerts(ctx, AlertFilter{Suppressed: &yes}); n != 1 {
		t.Errorf("suppressed count = %d", n)
	}
	if n, _ := s.CountAlerts(ctx, AlertFilter{Suppressed: &no, IncidentID: b1.ID}); n != 1 {
		t.Errorf("active alerts of b = %d, want 1", n)
	}

	var resolved alert.Alert
	batch(t, s, func(tx *Tx) error {
		var err error
		resolved, err = tx.ResolveAlert(testAlert("h0").Fingerprint, t0.Add(time.Hour))
		return err
	})
	if resolved.ID != ids[0] || resolved.Status != alert.StatusResolved || resolved.IncidentID != b1.ID {
		t.Errorf("resolved: %+v", resolved)
	}

	notFound := []struct {
		name string
		fn   func(tx *Tx) error
	}{
		{"resolve not firing", func(tx *Tx) error { _, err := tx.ResolveAlert(testAlert("h0").Fingerprint, t0); return err }},
		{"attach unknown alert", func(tx *Tx) error { return tx.SetAlertIncident(999, a1.ID) }},
		{"attach to unknown incident", func(tx *Tx) error { return tx.SetAlertIncident(ids[1], 999) }},
		{"move to unknown incident", func(tx *Tx) error { _, err := tx.MoveAlerts(b1.ID, 999); return err }},
		{"suppress unknown", func(tx *Tx) error { return tx.SetAlertSuppressed(999, "x") }},
		{"ack unknown", func(tx *Tx) error { return tx.AckAlert(999, t0) }},
		{"update unknown incident", func(tx *Tx) error { inc := testIncident("x"); inc.ID = 999; return tx.UpdateIncident(inc) }},
		{"timeline of unknown incident", func(tx *Tx) error {
			_, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: 999, Actor: "system", Kind: incident.KindNote})
			return err
		}},
		{"task of unknown incident", func(tx *Tx) error { _, err := tx.AddTask(incident.Task{IncidentID: 999, Title: "x"}); return err }},
		{"update unknown task", func(tx *Tx) error { return tx.UpdateTask(incident.Task{ID: 999, Title: "x"}) }},
		{"observable of unknown incident", func(tx *Tx) error {
			_, err := tx.AddObservable(incident.Observable{IncidentID: 999, Type: "ip", Value: "10.0.0.1"})
			return err
		}},
		{"postmortem of unknown incident", func(tx *Tx) error {
			return tx.SavePostmortem(incident.Postmortem{IncidentID: 999, Category: "power"})
		}},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Batch(ctx, tc.fn); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestBatchRollsBackEverything: an error anywhere in fn leaves no alert,
// incident, timeline entry, delivery or audit entry behind.
func TestBatchRollsBackEverything(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Batch(ctx, func(tx *Tx) error {
		inc, err := tx.CreateIncident(testIncident("web"))
		if err != nil {
			return err
		}
		a := testAlert("web")
		a.IncidentID = inc.ID
		if _, _, err := tx.UpsertAlert(a); err != nil {
			return err
		}
		if _, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: inc.ID, Actor: "system", Kind: incident.KindCreated}); err != nil {
			return err
		}
		if _, err := tx.RecordDelivery(deliveryFor(inc.ID, "sent")); err != nil {
			return err
		}
		if err := tx.Audit(admin, "incident.ack", "incident:1", nil, inc); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Batch = %v, want boom", err)
	}
	for _, table := range []string{"incidents", "alerts", "timeline", "deliveries", "audit"} {
		var n int
		if err := s.r.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s has %d rows after rollback", table, n)
		}
	}
	// The writer is usable again and commits normally.
	inc := mustIncident(t, s, testIncident("after"))
	if _, err := s.GetIncident(ctx, inc.ID); err != nil {
		t.Errorf("after rollback: %v", err)
	}
}

func TestBatchConcurrentWithReads(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inc := mustIncident(t, s, testIncident("storm"))
	const writers, batches, perBatch = 4, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				err := s.Batch(ctx, func(tx *Tx) error {
					for i := range perBatch {
						a := testAlert(fmt.Sprintf("w%d-%d", w, i%10)) // half repeats
						a.IncidentID = inc.ID
						if _, _, err := tx.UpsertAlert(a); err != nil {
							return err
						}
					}
					_, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: inc.ID, Actor: "system",
						Kind: incident.KindAlertAttached, Message: fmt.Sprint(w, b)})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 30 {
				if _, _, err := s.IncidentAlerts(ctx, inc.ID, 50, 0); err != nil {
					errs <- err
					return
				}
				if _, err := s.Timeline(ctx, inc.ID, 50, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	alerts, total, err := s.IncidentAlerts(ctx, inc.ID, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != writers*10 || len(alerts) != writers*10 {
		t.Errorf("alerts %d total %d, want %d", len(alerts), total, writers*10)
	}
	var occ int
	for _, a := range alerts {
		occ += a.Occurrences
	}
	if occ != writers*batches*perBatch {
		t.Errorf("occurrences sum %d, want %d", occ, writers*batches*perBatch)
	}
	tl, _ := s.Timeline(ctx, inc.ID, 1000, 0)
	if len(tl) != writers*batches {
		t.Errorf("timeline %d entries, want %d", len(tl), writers*batches)
	}
}
