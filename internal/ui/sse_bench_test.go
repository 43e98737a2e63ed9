package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/store"
)

// sseConsoles is how many open consoles the fan-out benchmark holds.
const sseConsoles = 100

// receipt is one console's sight of a check event.
type receipt struct {
	console int
	state   string
	at      time.Time
}

// openConsoles opens n event streams over real HTTP, each with its own
// session, and forwards every "check" event for name to out. It returns
// once every stream is connected.
func openConsoles(b *testing.B, st *store.Store, base string, n int, name string, out chan<- receipt) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	// One transport per console: each holds its own connection, as
	// separate browsers do.
	connected := make(chan error, n)
	for i := range n {
		cookies := benchSession(b, st, auth.RoleViewer, time.Now())
		tr := &http.Transport{}
		b.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events/stream", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		go func() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				connected <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				connected <- fmt.Errorf("console %d: status %d", i, resp.StatusCode)
				return
			}
			sc := bufio.NewScanner(resp.Body)
			var event string
			first := true
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "":
					if first {
						// The ": connected" comment has arrived.
						connected <- nil
						first = false
					}
					event = ""
				case strings.HasPrefix(line, "event: "):
					event = line[len("event: "):]
				case strings.HasPrefix(line, "data: ") && event == "check":
					var ce checkEvent
					if json.Unmarshal([]byte(line[len("data: "):]), &ce) == nil && ce.Check == name {
						select {
						case out <- receipt{console: i, state: ce.State, at: time.Now()}:
						case <-ctx.Done():
							return
						}
					}
				}
			}
		}()
	}
	for range n {
		if err := <-connected; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSSEFanOut100 measures how long a real check state change takes
// to reach 100 open consoles over HTTP: each iteration flips the target of
// a check (200 ↔ 500), runs the check, and waits until every console has
// received the new state. Reported: the delivery latency from RunNow to
// each console's receipt (probe, state tracking, hub, HTTP), as p50, p99
// and max over all deliveries.
func BenchmarkSSEFanOut100(b *testing.B) {
	e := newEnv(b)
	var failing atomic.Bool
	target := newFlipServer(b, &failing)
	ctx := context.Background()
	// A NOC of its own with flap detection off: the benchmark flips its
	// check as often as it likes, and each flip must be a state change.
	svc, err := noc.New(ctx, noc.Options{Store: e.st, Events: e.ev, Prober: check.NewProber(check.ProberOptions{}),
		Workers: 2, FlapThreshold: -1})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := svc.CreateCheck(ctx, store.Actor{Name: "bench"}, check.Spec{Name: "flip", Type: check.TypeHTTP,
		Target: target, Interval: check.Duration(time.Hour), Timeout: check.Duration(5 * time.Second)}); err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	svcDone := make(chan struct{})
	go func() { defer close(svcDone); svc.Run(runCtx) }()
	b.Cleanup(func() { stop(); <-svcDone })
	waitState(b, svc, "flip", check.StateUp)
	u, err := New(Options{Store: e.st, NOC: svc, Events: e.ev})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(u)
	b.Cleanup(srv.Close)
	b.Cleanup(u.Close) // runs first: ends the streams
	recv := make(chan receipt, sseConsoles*4)
	openConsoles(b, e.st, srv.URL, sseConsoles, "flip", recv)
	if subs, _ := u.Hub().Stats(); subs < sseConsoles {
		b.Fatalf("%d subscribers, want %d", subs, sseConsoles)
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		failing.Store(!failing.Load())
		want := string(check.StateUp)
		if failing.Load() {
			want = string(check.StateDown)
		}
		// RunNow is ignored while the previous run is still finishing
		// (its result is reported before the scheduler marks it idle).
		for idle := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
			if st := svc.SchedulerStats(); st.InFlight == 0 && st.Queued == 0 {
				break
			}
			if time.Now().After(idle) {
				b.Fatalf("the scheduler stays busy: %+v", svc.SchedulerStats())
			}
		}
		start := time.Now()
		if err := svc.RunNow("flip"); err != nil {
			b.Fatal(err)
		}
		got, seen := 0, make([]bool, sseConsoles)
		deadline := time.After(30 * time.Second)
		for got < sseConsoles {
			select {
			case r := <-recv:
				if r.state != want || seen[r.console] {
					continue // a late event of an earlier flip
				}
				seen[r.console] = true
				lat = append(lat, r.at.Sub(start))
				got++
			case <-deadline:
				v, _ := svc.Check("flip")
				subs, dropped := u.Hub().Stats()
				b.Fatalf("%d of %d consoles saw %s within 30s (check is %s; %d subscribers, %d dropped)", got, sseConsoles, want,
					v.Status.State, subs, dropped)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	if _, dropped := u.Hub().Stats(); dropped > 0 {
		b.Errorf("%d consoles were dropped for falling behind", dropped)
	}
}

// newFlipServer is a check target that answers 500 while failing is set
// and 200 otherwise.
func newFlipServer(b *testing.B, failing *atomic.Bool) string {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// waitState runs a check and waits (on the change feed) until it shows
// state.
func waitState(b *testing.B, svc *noc.Service, name string, state check.State) {
	b.Helper()
	ch := make(chan struct{}, 1)
	cancel := svc.Subscribe(func(o monitor.Outcome) {
		if o.Check == name && o.To == state {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	defer cancel()
	if v, err := svc.Check(name); err == nil && v.Status.State == state {
		return
	}
	if err := svc.RunNow(name); err != nil {
		b.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		b.Fatalf("check %s did not become %s", name, state)
	}
}
