package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
)

// BenchmarkBatchUpsert500 is one group commit of the ingest loop: 500
// alerts (half new, half repeats of firing ones), 50 incident updates and
// 100 timeline entries in one transaction.
func BenchmarkBatchUpsert500(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	var incs []incident.Incident
	for i := range 50 {
		incs = append(incs, mustIncident(b, s, testIncident(fmt.Sprint("inc", i))))
	}
	base := testAlert("bench")
	base.Annotations = map[string]string{"summary": "disk almost full"}
	repeats := make([]alert.Alert, 250)
	batch(b, s, func(tx *Tx) error {
		for i := range repeats {
			a := base
			a.Fingerprint = fmt.Sprintf("repeat-%d", i)
			a.IncidentID = incs[i%len(incs)].ID
			if _, _, err := tx.UpsertAlert(a); err != nil {
				return err
			}
			a.IncidentID = 0
			repeats[i] = a
		}
		return nil
	})
	n := 0
	start := time.Now()
	for b.Loop() {
		err := s.Batch(ctx, func(tx *Tx) error {
			for i := range 250 {
				a := base
				a.Fingerprint = fmt.Sprintf("new-%d", n)
				a.IncidentID = incs[n%len(incs)].ID
				n++
				if _, _, err := tx.UpsertAlert(a); err != nil {
					return err
				}
				r := repeats[i]
				r.LastSeenAt = t0.Add(time.Duration(n) * time.Millisecond)
				if _, _, err := tx.UpsertAlert(r); err != nil {
					return err
				}
			}
			for i := range incs {
				incs[i].Escalations++
				if err := tx.UpdateIncident(incs[i]); err != nil {
					return err
				}
			}
			for i := range 100 {
				if _, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: incs[i%len(incs)].ID, Time: t0,
					Actor: "system", Kind: incident.KindAlertAttached, Message: "alert attached"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(500*b.N)/time.Since(start).Seconds(), "alerts/s")
}

// BenchmarkIncidentAlertsFirstPage loads the first page (100) of an
// incident with 10,000 attached alerts, as the incident view does.
func BenchmarkIncidentAlertsFirstPage(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	big := mustIncident(b, s, testIncident("big"))
	other := mustIncident(b, s, testIncident("other"))
	base := testAlert("bench")
	for chunk := range 20 {
		batch(b, s, func(tx *Tx) error {
			for i := range 1000 {
				a := base
				a.Fingerprint = fmt.Sprintf("fp-%d-%d", chunk, i)
				// Interleave another incident's alerts so the page is not
				// simply the table's tail.
				a.IncidentID = big.ID
				if i%2 == 1 {
					a.IncidentID = other.ID
				}
				if _, _, err := tx.UpsertAlert(a); err != nil {
					return err
				}
			}
			return nil
		})
	}
	start := time.Now()
	for b.Loop() {
		page, total, err := s.IncidentAlerts(ctx, big.ID, 100, 0)
		if err != nil || len(page) != 100 || total != 10000 {
			b.Fatalf("page %d total %d: %v", len(page), total, err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/page")
}
