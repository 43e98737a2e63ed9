package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkDispatchLatency measures Enqueue → webhook request received at a
// loopback receiver, with messages paced at 1,000/s through the default
// Sender and Dispatcher (8 workers, keep-alive). Run with a fixed count:
//
//	go test -run '^$' -bench DispatchLatency -benchtime 5000x ./internal/notify/
func BenchmarkDispatchLatency(b *testing.B) {
	n := b.N
	enq := make([]time.Time, n)
	recv := make([]time.Time, n)
	done := make(chan struct{}, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now() // arrival of the headers; the body is small
		var p struct {
			IncidentID int `json:"incident_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.IncidentID < 0 || p.IncidentID >= n {
			b.Errorf("bad body: %v", err)
			http.Error(w, "bad body", http.StatusBadRequest)
			done <- struct{}{}
			return
		}
		recv[p.IncidentID] = at
		w.WriteHeader(http.StatusNoContent)
		done <- struct{}{}
	}))
	defer srv.Close()

	d := NewDispatcher(DispatcherOptions{Sender: NewSender(SenderOptions{})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	ch := Channel{Name: "bench", Type: TypeWebhook, URL: srv.URL, Secret: "k"}
	m := sampleMessage()

	// Pacing against a schedule rather than a ticker keeps the rate at
	// 1,000/s when the loop falls behind (a ticker drops ticks).
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
		m.IncidentID = int64(i)
		enq[i] = time.Now()
		if err := d.Enqueue(ch, m); err != nil {
			b.Fatal(err)
		}
	}
	for range n {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = recv[i].Sub(enq[i])
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(n-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(lat[n-1].Microseconds()), "max-µs")
}
