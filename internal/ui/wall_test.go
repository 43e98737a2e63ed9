package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
)

// gatedHistory answers UptimeAll with ratio (calls+1)/100 once gate lets
// it, and counts the calls: the wall's cache tests watch what it asks.
type gatedHistory struct {
	fakeHistory
	calls atomic.Int32
	gate  chan struct{}
}

func (g *gatedHistory) UptimeAll(ctx context.Context, from, to time.Time) (map[string]eventstore.Uptime, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n := g.calls.Add(1)
	r := float64((n+1)/2) / 100 // the same figure for the 24 h and 30 d calls of one computation
	return map[string]eventstore.Uptime{"web": {Ratio: &r}}, nil
}

// TestWallStatsServeStaleWhileRefreshing checks that only the first wall
// render waits for the figures; later ones get the cached figures at once,
// even while a slow refresh runs, and see the new figures once it is done.
func TestWallStatsServeStaleWhileRefreshing(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Now()}
	h := &gatedHistory{gate: make(chan struct{})}
	checks := []noc.CheckView{{Spec: check.Spec{Name: "web", Type: check.TypeHTTP},
		Status: monitor.Status{Check: "web", State: check.StateUp}}}
	u, err := New(Options{Store: e.st, NOC: fakeNOC{checks}, Events: h, StatsTTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	cookies := c2cookies(t, e)
	render := func() (string, time.Duration) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/noc", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		u.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		return rec.Body.String(), time.Since(start)
	}
	// First render: waits for both uptime queries.
	done := make(chan string)
	go func() { body, _ := render(); done <- body }()
	h.gate <- struct{}{}
	h.gate <- struct{}{}
	if body := <-done; !strings.Contains(body, `uptime 24 h">1.0%`) {
		t.Fatalf("first render lacks the 1.0%% uptime:\n%s", wallSnippet(body))
	}
	// Within the TTL: cached, no query.
	clock.Add(30 * time.Second)
	render()
	if n := h.calls.Load(); n != 2 {
		t.Fatalf("%d UptimeAll calls within the TTL, want 2", n)
	}
	// Past the TTL: the render does not wait for the (blocked) refresh.
	clock.Add(time.Minute)
	body, _ := render()
	if !strings.Contains(body, `uptime 24 h">1.0%`) {
		t.Errorf("stale render lacks the old figures:\n%s", wallSnippet(body))
	}
	render() // a refresh is running: no second one starts
	h.gate <- struct{}{}
	h.gate <- struct{}{}
	// The refresh ends just after its second query; wait for it on the
	// rendered page, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if body, _ := render(); strings.Contains(body, `uptime 24 h">2.0%`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refreshed figures never shown")
		}
		time.Sleep(time.Millisecond)
	}
	if n := h.calls.Load(); n != 4 {
		t.Errorf("%d UptimeAll calls, want 4 (one refresh)", n)
	}
}

// c2cookies signs in a viewer on e and returns the session cookies.
func c2cookies(t *testing.T, e *env) []*http.Cookie {
	t.Helper()
	c, _ := e.login(auth.RoleViewer, passwords[auth.RoleViewer])
	return c.Jar.Cookies(mustURL(t, e.srv.URL))
}

func wallSnippet(body string) string {
	if i := strings.Index(body, `data-check="web"`); i >= 0 {
		return body[i:min(len(body), i+600)]
	}
	return fmt.Sprintf("%.600s", body)
}

// TestWallFirstRenderDoesNotWait: before the first computation of the
// figures has finished (minutes at scale), the wall renders its tiles at
// once without them, and shows them once computed.
func TestWallFirstRenderDoesNotWait(t *testing.T) {
	e := newEnv(t)
	h := &gatedHistory{gate: make(chan struct{})}
	checks := []noc.CheckView{{Spec: check.Spec{Name: "web", Type: check.TypeHTTP},
		Status: monitor.Status{Check: "web", State: check.StateUp}}}
	u, err := New(Options{Store: e.st, NOC: fakeNOC{checks}, Events: h, StatsTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.firstWait = 20 * time.Millisecond
	cookies := c2cookies(t, e)
	render := func() string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/noc", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		return rec.Body.String()
	}
	// The uptime query is blocked: the page comes back anyway, with the
	// tile and no figure.
	if body := render(); !strings.Contains(body, "web") || strings.Contains(body, `uptime 24 h">1.0%`) {
		t.Fatalf("first render with the figures blocked:\n%s", wallSnippet(body))
	}
	render() // a computation is running: no second one starts
	h.gate <- struct{}{}
	h.gate <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(render(), `uptime 24 h">1.0%`) {
		if time.Now().After(deadline) {
			t.Fatal("figures never shown after the computation finished")
		}
		time.Sleep(time.Millisecond)
	}
	if n := h.calls.Load(); n != 2 {
		t.Fatalf("%d UptimeAll calls, want 2 (one computation: 24 h and 30 d)", n)
	}
}
