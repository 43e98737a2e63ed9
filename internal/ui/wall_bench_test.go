package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/auth"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/monitor"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/store"
)

// Shape of the NOC wall benchmark's data.
const (
	wallChecks   = 10_000
	wallGroups   = 40
	wallParents  = 100             // every 100th check is a parent of the next 99
	wallInterval = 5 * time.Minute // result spacing in the stored history
	wallHistory  = 25 * time.Hour  // history stored per check
)

// wallBenchState is the state a wall benchmark renders: 10,000 provisioned
// checks in a real noc.Service (not running: no probes), statuses saved in
// SQLite and restored, and a day of results of every check in DuckDB.
type wallBenchState struct {
	st  *store.Store
	ev  *eventstore.Store
	svc *noc.Service
}

func newWallBenchState(b *testing.B, now time.Time) *wallBenchState {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	log := slog.New(slog.DiscardHandler)
	s := &wallBenchState{}
	var err error
	if s.st, err = store.Open(ctx, filepath.Join(dir, "state.db"), log); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.st.Close() })
	// The app's defaults (eventstore.DefaultMemoryLimit, 2 threads).
	if s.ev, err = eventstore.Open(ctx, eventstore.Options{Path: filepath.Join(dir, "events.duckdb"),
		Now: func() time.Time { return now }}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.ev.Close() })
	if _, err := s.st.CreateUser(ctx, store.Actor{Name: "bench"},
		store.User{Name: auth.RoleViewer, Role: auth.RoleViewer, PasswordHash: passwordHashes[auth.RoleViewer]}); err != nil {
		b.Fatal(err)
	}

	specs := make([]check.Spec, wallChecks)
	statuses := make([]store.SavedStatus, wallChecks)
	state := func(i int) (check.State, string) {
		parent := i - i%wallParents
		switch {
		case i%1000 == 0: // 10 parents down, their 990 children unreachable
			return check.StateDown, ""
		case parent%1000 == 0:
			return check.StateUnreachable, fmt.Sprintf("svc-%05d", parent)
		case i%250 == 7:
			return check.StateFlapping, ""
		case i%500 == 11:
			return check.StateDown, ""
		}
		return check.StateUp, ""
	}
	for i := range wallChecks {
		name := fmt.Sprintf("svc-%05d", i)
		sp := check.Spec{Name: name, Type: check.TypeHTTP, Target: fmt.Sprintf("http://127.0.0.1:1/%d", i),
			Interval: check.Duration(wallInterval), Labels: map[string]string{
				"group": fmt.Sprintf("group-%02d", i%wallGroups), "team": []string{"web", "db", "net", "mail"}[i%4]}}
		if i%wallParents != 0 {
			sp.DependsOn = []string{fmt.Sprintf("svc-%05d", i-i%wallParents)}
		}
		specs[i] = sp
		st, root := state(i)
		ms := monitor.Status{Check: name, State: st, RootCause: root, Since: now.Add(-time.Duration(i%600) * time.Minute),
			Underlying: check.StateUp, LastResult: &check.Result{Check: name, Time: now.Add(-time.Minute),
				OK: st == check.StateUp, Duration: time.Duration(5+i%200) * time.Millisecond}}
		if !ms.LastResult.OK {
			ms.Underlying = check.StateDown
			ms.LastResult.Error = "dial tcp 127.0.0.1:1: connect: connection refused"
		}
		data, err := json.Marshal(ms)
		if err != nil {
			b.Fatal(err)
		}
		statuses[i] = store.SavedStatus{Check: name, State: string(st), RootCause: root, Since: ms.Since, Data: data}
	}
	if err := s.st.SaveStatuses(ctx, statuses); err != nil {
		b.Fatal(err)
	}
	if s.svc, err = noc.New(ctx, noc.Options{Store: s.st, Events: s.ev, Prober: check.NewProber(check.ProberOptions{}), Logger: log}); err != nil {
		b.Fatal(err)
	}
	if err := s.svc.Apply(ctx, specs, nil); err != nil {
		b.Fatal(err)
	}

	// History: one result per check every wallInterval for wallHistory,
	// written in time order as the scheduler would.
	start := time.Now()
	rows := make([]eventstore.ResultRow, 0, wallChecks)
	for t := now.Add(-wallHistory); t.Before(now); t = t.Add(wallInterval) {
		rows = rows[:0]
		for i := range wallChecks {
			st, root := state(i)
			// Older history is mostly up; the current states hold for
			// the last two hours.
			if now.Sub(t) > 2*time.Hour {
				st, root = check.StateUp, ""
				if (i+int(t.Unix()/300))%331 == 0 {
					st = check.StateDown
				}
			}
			ok := st == check.StateUp || (st == check.StateFlapping && i%2 == 0)
			r := eventstore.ResultRow{Time: t.Add(time.Duration(i) * wallInterval / wallChecks), Check: specs[i].Name,
				OK: ok, State: st, RootCause: root, Duration: time.Duration(5+(i*7+int(t.Unix()))%300) * time.Millisecond,
				StatusCode: 200, Interval: wallInterval}
			if !ok {
				r.StatusCode, r.Error = 0, "connection refused"
			}
			rows = append(rows, r)
		}
		if err := s.ev.AppendResults(ctx, rows...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.ev.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("wall data: %d checks, %d results stored in %s", wallChecks, wallChecks*int(wallHistory/wallInterval),
		time.Since(start).Round(time.Millisecond))
	return s
}

// console serves a UI over s with the given stats TTL and returns a
// signed-in viewer's cookies.
func (s *wallBenchState) console(b *testing.B, clock func() time.Time, ttl time.Duration) (*UI, []*http.Cookie) {
	b.Helper()
	u, err := New(Options{Store: s.st, NOC: s.svc, Events: s.ev, StatsTTL: ttl, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(u.Close)
	return u, benchSession(b, s.st, auth.RoleViewer, clock())
}

// benchSession creates a session for user straight in the store (no
// password hashing) and returns its cookie.
func benchSession(b *testing.B, st *store.Store, user string, now time.Time) []*http.Cookie {
	b.Helper()
	ctx := context.Background()
	usr, err := st.UserByName(ctx, user)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := randomToken()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateSession(ctx, usr.ID, auth.HashToken(tok), "csrf-"+tok, now, now.Add(store.SessionMaxAge)); err != nil {
		b.Fatal(err)
	}
	return []*http.Cookie{{Name: sessionCookie, Value: tok}}
}

// serveOnce runs GET path against h and returns the page size.
func serveOnce(b *testing.B, h http.Handler, cookies []*http.Cookie, path string) int {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: status %d\n%.500s", path, rec.Code, rec.Body.String())
	}
	return rec.Body.Len()
}

// serveBench runs GET path against h and reports the page size.
func serveBench(b *testing.B, h http.Handler, cookies []*http.Cookie, path string) {
	b.Helper()
	var size int
	for b.Loop() {
		size = serveOnce(b, h, cookies, path)
	}
	b.ReportMetric(float64(size)/1024, "KB/page")
}

// BenchmarkNOCWall10kReal renders the NOC wall over real stores: 10,000
// checks (1% down with their children unreachable, some flapping) and
// 3 million results in DuckDB.
//
//   - warm, warm-last-page, problems, fragment: renders, as every render
//     is once the figures are cached (the wall never waits for a refresh);
//   - figures: computing the cached figures (UptimeAll for 24 h and 30 d
//     and the sparkline query), as the first render after start waits for
//     and the background refresh does;
//   - UptimeAll-24h: the one uptime query alone.
func BenchmarkNOCWall10kReal(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Second)
	s := newWallBenchState(b, now)
	u, cookies := s.console(b, func() time.Time { return now }, time.Hour)
	// The first render computes the figures.
	start := time.Now()
	serveOnce(b, u, cookies, "/noc")
	b.Logf("first render (computes the figures): %s", time.Since(start).Round(time.Millisecond))
	b.Run("warm", func(b *testing.B) { serveBench(b, u, cookies, "/noc") })
	b.Run("warm-last-page", func(b *testing.B) { serveBench(b, u, cookies, "/noc?page=20") })
	b.Run("problems", func(b *testing.B) { serveBench(b, u, cookies, "/noc?problems=1") })
	b.Run("fragment", func(b *testing.B) { serveBench(b, u, cookies, "/noc/wall") })
	b.Run("figures", func(b *testing.B) {
		for b.Loop() {
			if _, err := u.computeStats(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UptimeAll-24h", func(b *testing.B) {
		for b.Loop() {
			m, err := s.ev.UptimeAll(context.Background(), now.Add(-24*time.Hour), now)
			if err != nil || len(m) != wallChecks {
				b.Fatalf("%d checks, %v", len(m), err)
			}
		}
	})
}
