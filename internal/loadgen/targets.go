package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// StatsPath is the one path of a Targets server that is not a target: it
// returns the counters as JSON and is not counted itself.
const StatsPath = "/-/stats"

// targetBody is what every target answers.
var targetBody = []byte(`{"status":"ok"}`)

// TargetStats counts what a Targets server has seen.
type TargetStats struct {
	// Requests is the number of target requests answered.
	Requests int64 `json:"requests"`
	// Connections is the number of TCP connections accepted; equal to
	// Requests when every client opens a fresh connection per request.
	Connections int64 `json:"connections"`
}

// Targets is a fast HTTP server where every path is a healthy target.
type Targets struct {
	requests    atomic.Int64
	connections atomic.Int64
}

// NewTargets returns a Targets server with zeroed counters.
func NewTargets() *Targets { return &Targets{} }

// Stats returns the counters.
func (t *Targets) Stats() TargetStats {
	return TargetStats{Requests: t.requests.Load(), Connections: t.connections.Load()}
}

// ServeHTTP answers 200 {"status":"ok"} on every path but StatsPath.
func (t *Targets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatsPath {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(t.Stats())
		return
	}
	t.requests.Add(1)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", "15")
	_, _ = w.Write(targetBody)
}

// Serve answers on ln until ctx is cancelled, then shuts down gracefully.
func (t *Targets) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           t,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				t.connections.Add(1)
			}
		},
		// The server's own error log would go to the global logger; a load
		// target has nothing useful to say there.
		ErrorLog: nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("loadgen targets: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("loadgen targets: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("loadgen targets: %w", err)
	}
	return nil
}
