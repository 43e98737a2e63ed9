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
// incidentID when it is not 0: both teams, five severities, four sources,
// hosts and services spread over the fleet, start times over the last
// week (as a busy week's intake).
func seedAlerts(b *testing.B, st *store.Store, n int, incidentID int64) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	teams := []string{alert.TeamNOC, alert.TeamSOC}
	sevs := []string{"critical", "high", "high", "medium", "medium", "medium", "low", "info"}
	sources := []string{"check", "sigma", "alertmanager", "pagerduty"}
	names := []string{"HostDown", "DiskFull", "SSHBruteForce", "WebScan", "CertExpiring", "HighLatency", "BackupFailed", "MalwareDetected"}
	start := time.Now()
	for done := 0; done < n; {
		err := st.Batch(ctx, func(tx *store.Tx) error {
			for i := 0; i < 5000 && done < n; i++ {
				name := names[done%len(names)]
				l := map[string]string{"alertname": name, "host": fmt.Sprintf("h%d", done), "service": fmt.Sprintf("svc-%d", done%300),
					"inc": fmt.Sprint(incidentID)}
				team, origin := teams[done%2], alert.OriginNatural
				if team == alert.TeamSOC {
					origin = alert.OriginHuman
				}
				if _, _, err := tx.UpsertAlert(alert.Alert{Fingerprint: alert.Fingerprint(l), Team: team, Origin: origin,
					Severity: sevs[done%len(sevs)], Title: fmt.Sprintf("%s on h%d (svc-%d)", name, done, done%300), Labels: l,
					Source: sources[done%len(sources)], StartedAt: now.Add(-time.Duration(n-done) * 7 * 24 * time.Hour / time.Duration(n)),
					IncidentID: incidentID}); err != nil {
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
	b.Logf("seeded %d alerts in %s", n, time.Since(start).Round(time.Millisecond))
}

// seedTimeline appends n entries to an incident's timeline, as linking n
// alerts one by one would.
func seedTimeline(b *testing.B, st *store.Store, incidentID int64, n int) {
	b.Helper()
	for done := 0; done < n; {
		err := st.Batch(context.Background(), func(tx *store.Tx) error {
			for i := 0; i < 5000 && done < n; i++ {
				if _, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: incidentID, Actor: "system", Kind: "alert",
					Message: fmt.Sprintf("alert %d linked", done+1)}); err != nil {
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
	b.ReportMetric(float64(size)/1024, "KB/page")
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

// BenchmarkIncidentDetail10k renders an incident with 10,000 alerts and
// a 10,000-entry timeline: oldest first (the default), newest first, and
// the last page of alerts.
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
	seedTimeline(b, e.st, id, 10_000)
	c, _ := e.login("operator", passwords["operator"])
	for _, path := range []string{fmt.Sprintf("/incidents/%d", id), fmt.Sprintf("/incidents/%d?order=desc", id),
		fmt.Sprintf("/incidents/%d?alerts_before=100", id)} {
		b.Run(path, func(b *testing.B) { benchGet(b, e, c, path) })
	}
}
