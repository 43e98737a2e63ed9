package ui

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/store"
)

func TestWriteEvent(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"json", Event{Name: "check", Data: []byte(`{"a":1}`)}, "event: check\ndata: {\"a\":1}\n\n"},
		{"newlines cannot inject fields", Event{Name: "x\nid: 9", Data: []byte("a\nevent: evil\r\nb\rc")},
			"event: x id: 9\ndata: a\ndata: event: evil\ndata: b\ndata: c\n\n"},
		{"no name", Event{Data: []byte("z")}, "data: z\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeEvent(&b, tc.e)
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

func TestHub(t *testing.T) {
	h := NewHub()
	fast, cancelFast := h.Subscribe()
	slow, _ := h.Subscribe()
	for i := range subscriberBuffer + 1 {
		h.Publish(Event{Name: "n", Data: []byte(fmt.Sprint(i))})
		<-fast // the fast reader keeps up
	}
	// The slow one fell behind: it got a full buffer, then its channel closed.
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before being dropped, want %d", n, subscriberBuffer)
	}
	if subs, dropped := h.Stats(); subs != 1 || dropped != 1 {
		t.Errorf("stats = %d subscribers, %d dropped", subs, dropped)
	}
	cancelFast()
	cancelFast() // twice is harmless
	h.Close()
	if _, ok := <-fast; ok {
		t.Error("fast channel open after unsubscribe")
	}
	late, _ := h.Subscribe()
	if _, ok := <-late; ok {
		t.Error("subscribe after Close returned an open channel")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/noc",
		"/checks/web?period=7d": "/checks/web?period=7d",
		"//evil.example":        "/noc",
		"/\\evil.example":       "/noc",
		"https://evil.example":  "/noc",
		"checks":                "/noc",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		name         string
		v            []float64
		lines, polys int
	}{
		{"empty", nil, 0, 0},
		{"one point", []float64{3}, 0, 0},
		{"line", []float64{1, 2, 3}, 0, 1},
		{"failures", []float64{1, math.NaN(), 3, math.NaN()}, 2, 1},
		{"all zero", []float64{0, 0}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := string(Sparkline(tc.v, 100, 20))
			if got := strings.Count(s, `class="fail"`); got != tc.lines {
				t.Errorf("fail marks %d, want %d: %s", got, tc.lines, s)
			}
			if got := strings.Count(s, "<polyline"); got != tc.polys {
				t.Errorf("polylines %d, want %d: %s", got, tc.polys, s)
			}
			if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
				t.Errorf("non-number in SVG: %s", s)
			}
		})
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := string(TimeChart([]Point{{Time: from.Add(time.Minute), Value: 12}, {Time: from.Add(2 * time.Minute), Failed: true},
		{Time: from.Add(3 * time.Minute), Value: 30}, {Time: from.Add(-time.Minute), Value: 99}}, from, from.Add(time.Hour), "ms", 900, 200))
	if !strings.Contains(c, "50ms") || strings.Contains(c, "100ms") || strings.Count(c, `class="fail"`) != 1 {
		t.Errorf("chart axis or marks wrong (out-of-range point must not count): %s", c)
	}
}

// fakeNOC and fakeHistory stand in for the engines in the render
// benchmark, where 10,000 real checks would measure the prober instead.
type fakeNOC struct{ checks []noc.CheckView }

func (f fakeNOC) Checks() []noc.CheckView { return f.checks }
func (f fakeNOC) Check(name string) (noc.CheckView, error) {
	return noc.CheckView{}, store.ErrNotFound
}
func (f fakeNOC) UpdateCheck(context.Context, store.Actor, check.Spec) (noc.CheckView, error) {
	return noc.CheckView{}, nil
}
func (f fakeNOC) RunNow(string) error                             { return nil }
func (f fakeNOC) Windows() []maintenance.Window                   { return nil }
func (f fakeNOC) Subscribe(func(monitor.Outcome)) (cancel func()) { return func() {} }

type fakeHistory struct{ up map[string]eventstore.Uptime }

func (f fakeHistory) Results(context.Context, eventstore.ResultFilter) ([]eventstore.ResultRow, error) {
	return nil, nil
}
func (f fakeHistory) Uptime(context.Context, string, time.Time, time.Time) (eventstore.Uptime, error) {
	return eventstore.Uptime{}, nil
}
func (f fakeHistory) StateChanges(context.Context, string, time.Time, time.Time, int) ([]eventstore.StateChange, error) {
	return nil, nil
}
func (f fakeHistory) UptimeAll(context.Context, time.Time, time.Time) (map[string]eventstore.Uptime, error) {
	return f.up, nil
}

// BenchmarkWallRender10k renders the first NOC wall page with 10,000
// checks (stats cached, as in steady state) and reports the page size.
func BenchmarkWallRender10k(b *testing.B) {
	var checks []noc.CheckView
	up := map[string]eventstore.Uptime{}
	r := 0.999
	for i := range 10000 {
		name := fmt.Sprintf("svc-%05d", i)
		st := check.StateUp
		if i%97 == 0 {
			st = check.StateDown
		}
		checks = append(checks, noc.CheckView{
			Spec:   check.Spec{Name: name, Type: check.TypeHTTP, Labels: map[string]string{"group": fmt.Sprintf("g%02d", i%40)}},
			Status: monitor.Status{Check: name, State: st, Since: time.Now()},
		})
		up[name] = eventstore.Uptime{Ratio: &r}
	}
	e := newEnv(b)
	u, err := New(Options{Store: e.st, NOC: fakeNOC{checks}, Events: fakeHistory{up}, StatsTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	c, _ := e.login("viewer", passwords["viewer"])
	cookies := c.Jar.Cookies(mustURL(b, e.srv.URL))
	var size int
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/noc", nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size)/1024, "KB/page")
}

// BenchmarkHubFanOut100 publishes one event to 100 open consoles.
func BenchmarkHubFanOut100(b *testing.B) {
	h := NewHub()
	defer h.Close()
	done := make(chan struct{})
	for range 100 {
		ch, _ := h.Subscribe()
		go func() {
			for range ch {
			}
			done <- struct{}{}
		}()
	}
	ev := Event{Name: "check", Data: []byte(`{"check":"web","state":"down"}`)}
	for b.Loop() {
		h.Publish(ev)
	}
	b.StopTimer()
	h.Close()
	for range 100 {
		<-done
	}
}
