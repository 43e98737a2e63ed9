package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/store"
)

// seedAlerts stores n alerts straight into the store, attached to
// incidentID when it is not 0.
func seedAlerts(b *testing.B, st *store.Store, n int, incidentID int64) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	teams := []string{alert.TeamNOC, alert.TeamSOC}
	for done := 0; done < n; {
		err := st.Batch(ctx, func(tx *store.Tx) error {
			for i := 0; i < 5000 && done < n; i++ {
				l := map[string]string{"alertname": "bench", "host": fmt.Sprintf("h%d", done), "inc": fmt.Sprint(incidentID)}
				if _, _, err := tx.UpsertAlert(alert.Alert{Fingerprint: alert.Fingerprint(l), Team: teams[done%2], Origin: alert.OriginNatural,
					Severity: "high", Title: fmt.Sprintf("bench alert %d", done), Labels: l, Source: "bench",
					StartedAt: now, IncidentID: incidentID}); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchGet(b *testing.B, e *env, c *http.Client, path string) {
	b.Helper()
	var size int
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Get(e.srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "bytes/page")
}

// BenchmarkSOCQueue100k renders the queue's first page and a filtered
// page with 100,000 alerts stored.
func BenchmarkSOCQueue100k(b *testing.B) {
	e := newEnv(b)
	seedAlerts(b, e.st, 100_000, 0)
	c, _ := e.login("operator", passwords["operator"])
	for _, path := range []string{"/soc", "/soc?team=soc&severity=high&status=firing", "/soc?before=50000", "/soc?q=h99999"} {
		b.Run(path, func(b *testing.B) { benchGet(b, e, c, path) })
	}
}

// BenchmarkIncidentDetail10k renders an incident with 10,000 alerts.
func BenchmarkIncidentDetail10k(b *testing.B) {
	e := newEnv(b)
	var id int64
	err := e.st.Batch(context.Background(), func(tx *store.Tx) error {
		inc, err := tx.CreateIncident(incident.Incident{Title: "big", Severity: "high", Team: alert.TeamNOC, Origin: alert.OriginNatural,
			Status: incident.StatusTriggered, Tier: -1, TriggeredAt: time.Now()})
		id = inc.ID
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	seedAlerts(b, e.st, 10_000, id)
	c, _ := e.login("operator", passwords["operator"])
	benchGet(b, e, c, fmt.Sprintf("/incidents/%d", id))
}
