package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/notify"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook endpoint that verifies the HMAC signature of
// every delivery and records the events per path.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    map[string][]string
	notify chan string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if !notify.VerifySignature(r.secret, req.Header.Get("X-Nocsoc-Timestamp"), body, req.Header.Get("X-Nocsoc-Signature")) {
		r.t.Errorf("delivery to %s has a bad signature", req.URL.Path)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	ev := req.Header.Get("X-Nocsoc-Event")
	r.mu.Lock()
	r.got[req.URL.Path] = append(r.got[req.URL.Path], ev)
	r.mu.Unlock()
	r.notify <- req.URL.Path + " " + ev
}

func (r *receiver) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r.notify:
		if got != want {
			t.Fatalf("delivery %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no delivery, want %q", want)
	}
}

func (r *receiver) quiet(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.notify:
		t.Fatalf("unexpected delivery %q", got)
	default:
	}
}

// TestEscalationEndToEnd: a check goes down → incident → L1 paged → no
// ack → L2 paged → ack → escalation stops → recovery resolves → MTTA and
// MTTR are exactly the times the clock said.
func TestEscalationEndToEnd(t *testing.T) {
	rec := &receiver{t: t, secret: "hook-secret", got: map[string][]string{}, notify: make(chan string, 16)}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	target := newTCPTarget(t)
	cfg := fmt.Sprintf(`checks:
  - name: db
    type: tcp
    target: %s
    interval: 1h
    severity: high
    labels: {service: billing}
alerting:
  route:
    team: noc
    policy: default
    group_by: [check]
    group_wait: 30s
  channels:
    - {name: l1, type: webhook, url: %s/l1, secret: hook-secret}
    - {name: l2, type: webhook, url: %s/l2, secret: hook-secret}
  policies:
    - name: default
      tiers:
        - {name: L1, timeout: 5m, targets: [{type: channel, name: l1}]}
        - {name: L2, timeout: 10m, targets: [{type: channel, name: l2}]}
`, target.addr, hook.URL, hook.URL)
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	clock := &testClock{t: t0}
	h := startWith(t, app.Options{ConfigPath: path, Now: clock.Now})
	ctx := context.Background()
	tick := func() {
		if err := h.app.Response().Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}

	h.waitState("db", "up")
	target.Stop()
	h.waitState("db", "down")
	var list struct {
		Incidents []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
			Team   string `json:"team"`
		} `json:"incidents"`
	}
	h.do("GET", "/api/v1/incidents?status=triggered", "", http.StatusOK, &list)
	if len(list.Incidents) != 1 || list.Incidents[0].Team != "noc" {
		t.Fatalf("incidents = %+v, want one NOC incident", list.Incidents)
	}
	id := list.Incidents[0].ID

	// Group wait: nothing before 30 s, then L1.
	tick()
	rec.quiet(t)
	clock.Advance(30 * time.Second)
	tick()
	rec.expect(t, "/l1 triggered")
	// Nobody acknowledges within L1's 5 minutes: L2 is paged.
	clock.Advance(4 * time.Minute)
	tick()
	rec.quiet(t)
	clock.Advance(time.Minute)
	tick()
	rec.expect(t, "/l2 escalated")
	// L2 acknowledges 2 minutes later; escalation stops.
	clock.Advance(2 * time.Minute)
	h.do("POST", fmt.Sprintf("/api/v1/incidents/%d/acknowledge", id), "", http.StatusOK, nil)
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		select {
		case d := <-rec.notify:
			got[d] = true
		case <-time.After(10 * time.Second):
			t.Fatal("acknowledgement not delivered to the paged channels")
		}
	}
	if !got["/l1 acknowledged"] || !got["/l2 acknowledged"] {
		t.Errorf("acknowledgement went to %v", got)
	}
	clock.Advance(time.Hour)
	tick()
	rec.quiet(t)

	// The service recovers: the alert and the incident resolve.
	target.Start()
	h.waitState("db", "up")
	var inc struct {
		Incident struct {
			Status      string     `json:"status"`
			ResolvedAt  *time.Time `json:"resolved_at"`
			Escalations int        `json:"escalations"`
		} `json:"incident"`
		Timeline []struct {
			Kind string `json:"kind"`
		} `json:"timeline"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/incidents/%d", id), "", http.StatusOK, &inc)
	if inc.Incident.Status != "resolved" || inc.Incident.ResolvedAt == nil || !inc.Incident.ResolvedAt.Equal(t0.Add(67*time.Minute+30*time.Second)) {
		t.Errorf("incident after recovery: %+v", inc.Incident)
	}
	kinds := map[string]int{}
	for _, e := range inc.Timeline {
		kinds[e.Kind]++
	}
	if kinds["escalated"] != 2 || kinds["notification.sent"] < 4 {
		t.Errorf("timeline kinds = %v", kinds)
	}
	for _, ev := range []string{"resolved"} {
		for _, p := range []string{"/l1", "/l2"} {
			want := p + " " + ev
			select {
			case d := <-rec.notify:
				if !strings.HasSuffix(d, ev) {
					t.Errorf("delivery %q, want a %s", d, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("resolve not delivered (%s)", want)
			}
		}
	}

	var m struct {
		MTTA struct {
			Count int     `json:"count"`
			Mean  float64 `json:"mean_seconds"`
		} `json:"mtta"`
		MTTR struct {
			Count int     `json:"count"`
			Mean  float64 `json:"mean_seconds"`
		} `json:"mttr"`
		Escalations int `json:"escalations"`
	}
	from, to := t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(3*time.Hour).Format(time.RFC3339)
	h.do("GET", "/api/v1/metrics/operations?team=noc&from="+from+"&to="+to, "", http.StatusOK, &m)
	if m.MTTA.Count != 1 || m.MTTA.Mean != 450 {
		t.Errorf("MTTA = %+v, want 1 incident, 450 s (ack at 7m30s)", m.MTTA)
	}
	if m.MTTR.Count != 1 || m.MTTR.Mean != 4050 {
		t.Errorf("MTTR = %+v, want 1 incident, 4050 s (resolved at 67m30s)", m.MTTR)
	}
}
