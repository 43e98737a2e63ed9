package schedule

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// recorder is a hand-written fake probe: it records every run, tracks
// concurrency and sleeps for a per-check duration (virtual time inside a
// synctest bubble).
type recorder struct {
	mu        sync.Mutex
	sleep     map[string]time.Duration
	runs      map[string][]time.Time
	reported  map[string]int
	cur, max  int
	perCheck  map[string]int // concurrent runs of one check now
	maxPer    int
	cancelled int
}

func newRecorder() *recorder {
	return &recorder{sleep: map[string]time.Duration{}, runs: map[string][]time.Time{},
		reported: map[string]int{}, perCheck: map[string]int{}}
}

func (r *recorder) probe(ctx context.Context, s check.Spec) check.Result {
	r.mu.Lock()
	r.runs[s.Name] = append(r.runs[s.Name], time.Now())
	r.cur++
	r.max = max(r.max, r.cur)
	r.perCheck[s.Name]++
	r.maxPer = max(r.maxPer, r.perCheck[s.Name])
	d := r.sleep[s.Name]
	r.mu.Unlock()

	res := check.Result{OK: true}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			res = check.Result{OK: false, Error: ctx.Err().Error()}
			r.mu.Lock()
			r.cancelled++
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	r.cur--
	r.perCheck[s.Name]--
	r.mu.Unlock()
	return res
}

func (r *recorder) report(res check.Result) {
	r.mu.Lock()
	r.reported[res.Check]++
	r.mu.Unlock()
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs[name])
}

func spec(name string, interval time.Duration) check.Spec {
	return check.Spec{Name: name, Type: check.TypePush, Interval: check.Duration(interval), Timeout: check.Duration(time.Hour)}
}

// start runs s in the bubble and returns a stop function that cancels Run
// and waits for it to return.
func start(t *testing.T, s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestIntervalsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s := New(Options{Workers: 8, Probe: rec.probe, Report: rec.report})
		intervals := map[string]time.Duration{"a": 10 * time.Second, "b": 30 * time.Second, "c": time.Minute, "d": 5 * time.Minute}
		var specs []check.Spec
		for n, iv := range intervals {
			specs = append(specs, spec(n, iv))
		}
		s.Set(specs)
		stop := start(t, s)
		const span = 60 * time.Minute
		time.Sleep(span)
		synctest.Wait()
		stop()

		for n, iv := range intervals {
			want := int(span / iv)
			got := rec.count(n)
			// The first run is jittered and the second joins the check's
			// steady-state slot, so one run more or less is expected.
			if got < want-1 || got > want+1 {
				t.Errorf("%s (every %v): %d runs in %v, want %d±1", n, iv, got, span, want)
			}
			if rec.reported[n] != got {
				t.Errorf("%s: %d results reported for %d runs", n, rec.reported[n], got)
			}
			// After the second run, runs are exactly one interval apart.
			runs := rec.runs[n]
			for i := 2; i < len(runs); i++ {
				if gap := runs[i].Sub(runs[i-1]); gap != iv {
					t.Errorf("%s: run %d came %v after run %d, want %v", n, i, gap, i-1, iv)
				}
			}
		}
		if st := s.Stats(); st.Skipped != 0 || st.Late != 0 {
			t.Errorf("stats = %+v, want no skipped or late runs", st)
		}
	})
}

func TestJitterSpreadsFirstRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s := New(Options{Probe: rec.probe})
		const n = 1000
		var specs []check.Spec
		for i := range n {
			specs = append(specs, spec(fmt.Sprintf("check-%04d", i), time.Minute))
		}
		t0 := time.Now()
		s.Set(specs)
		stop := start(t, s)
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		stop()

		// First runs: all within 30s, spread over that span (10 buckets of 3s).
		var first [10]int
		// Steady state (the third run): spread over the whole minute.
		var third [10]int
		for name, runs := range rec.runs {
			d := runs[0].Sub(t0)
			if d < 0 || d >= maxFirstDelay {
				t.Fatalf("%s: first run %v after Set, want within %v", name, d, maxFirstDelay)
			}
			first[d/(3*time.Second)]++
			third[runs[2].Sub(t0)%time.Minute/(6*time.Second)]++
		}
		for i := range 10 {
			// n/10 = 100 expected per bucket; a fair hash stays well within 50-150.
			if first[i] < 50 || first[i] > 150 {
				t.Errorf("first runs per 3s bucket = %v, want about %d each", first, n/10)
				break
			}
		}
		for i := range 10 {
			if third[i] < 50 || third[i] > 150 {
				t.Errorf("steady-state runs per 6s bucket = %v, want about %d each", third, n/10)
				break
			}
		}
		// Deterministic: the same name gets the same offset.
		a, _ := firstRun("check-0001", time.Minute, t0)
		b, _ := firstRun("check-0001", time.Minute, t0)
		if !a.Equal(b) {
			t.Errorf("firstRun not deterministic: %v vs %v", a, b)
		}
	})
}

func TestSlowCheckSkippedNotPiledUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		// The slow check sleeps 150s on a 60s interval and takes one of four
		// workers; the fast ones must keep their schedule on the other three.
		rec.sleep["slow"] = 150 * time.Second
		specs := []check.Spec{spec("slow", time.Minute)}
		for i := range 20 {
			n := fmt.Sprintf("fast-%02d", i)
			rec.sleep[n] = 200 * time.Millisecond
			specs = append(specs, spec(n, 10*time.Second))
		}
		s := New(Options{Workers: 4, Probe: rec.probe, Report: rec.report})
		s.Set(specs)
		stop := start(t, s)
		const span = 30 * time.Minute
		time.Sleep(span)
		synctest.Wait()
		st := s.Stats()
		stop()

		if rec.maxPer != 1 {
			t.Errorf("a check ran %d times concurrently, want never more than once", rec.maxPer)
		}
		if rec.max > 4 {
			t.Errorf("max concurrency %d, want <= 4", rec.max)
		}
		// Slow: one run per 3 minutes (150s run, then the next free slot).
		if got := rec.count("slow"); got < 9 || got > 11 {
			t.Errorf("slow check ran %d times in %v, want about 10", got, span)
		}
		if st.Skipped < 15 {
			t.Errorf("Skipped = %d, want the slow check's busy slots counted (>= 15)", st.Skipped)
		}
		if st.Late != 0 {
			t.Errorf("Late = %d, want 0: the fast checks had free workers", st.Late)
		}
		for i := range 20 {
			n := fmt.Sprintf("fast-%02d", i)
			if got := rec.count(n); got < 179 || got > 181 {
				t.Errorf("%s ran %d times in %v, want 180±1", n, got, span)
			}
		}
	})
}

func TestWorkerLimitNeverExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		var specs []check.Spec
		for i := range 50 {
			n := fmt.Sprintf("c%02d", i)
			rec.sleep[n] = 2 * time.Second
			specs = append(specs, spec(n, 5*time.Second))
		}
		s := New(Options{Workers: 3, Probe: rec.probe})
		s.Set(specs)
		stop := start(t, s)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		st := s.Stats()
		stop()
		if rec.max != 3 {
			t.Errorf("max concurrency = %d, want exactly the limit 3", rec.max)
		}
		// 3 workers finish 1.5 runs/s against 10 runs/s due: most runs are
		// late or skipped, but every check still gets its turn.
		if st.Late == 0 || st.Skipped == 0 {
			t.Errorf("stats = %+v, want late and skipped runs under saturation", st)
		}
		for i := range 50 {
			if rec.count(fmt.Sprintf("c%02d", i)) < 10 {
				t.Errorf("c%02d ran %d times, starved", i, rec.count(fmt.Sprintf("c%02d", i)))
			}
		}
	})
}

func TestSetAddsRemovesChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.sleep["gone"] = 50 * time.Second
		s := New(Options{Probe: rec.probe, Report: rec.report})
		s.Set([]check.Spec{spec("keep", time.Minute), spec("change", time.Minute), spec("gone", time.Minute),
			{Name: "off", Type: check.TypePush, Interval: check.Duration(time.Minute), Disabled: true}})
		if got := s.Stats().Scheduled; got != 3 {
			t.Fatalf("Scheduled = %d, want 3 (disabled check not scheduled)", got)
		}
		stop := start(t, s)
		time.Sleep(5 * time.Minute)
		synctest.Wait()

		// "gone" is in flight roughly half the time; find a moment when it is.
		for rec.perCheckNow("gone") == 0 {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		s.mu.Lock()
		keepNext := s.entries["keep"].next
		s.mu.Unlock()
		ch := spec("change", 10*time.Second)
		s.Set([]check.Spec{spec("keep", time.Minute), ch, spec("new", 20*time.Second)})
		s.mu.Lock()
		if got := s.entries["keep"].next; !got.Equal(keepNext) {
			t.Errorf("unchanged check rescheduled: next %v, was %v", got, keepNext)
		}
		s.mu.Unlock()
		if !s.RunNow("keep") || s.RunNow("gone") || s.RunNow("off") {
			t.Errorf("RunNow: want true for a scheduled check, false for removed and disabled ones")
		}
		before := map[string]int{"keep": rec.count("keep"), "change": rec.count("change"), "new": rec.count("new"), "gone": rec.count("gone")}
		reportedGone := rec.reportedCount("gone")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		st := s.Stats()
		stop()

		if d := rec.count("gone") - before["gone"]; d != 0 {
			t.Errorf("removed check ran %d more times", d)
		}
		if got := rec.reportedCount("gone"); got != reportedGone+1 {
			t.Errorf("in-flight run of removed check: reported %d, want %d (its result still reported)", got, reportedGone+1)
		}
		if d := rec.count("change") - before["change"]; d < 59 || d > 61 {
			t.Errorf("changed check ran %d times in 10m at its new 10s interval, want ~60", d)
		}
		if d := rec.count("new") - before["new"]; d < 29 || d > 31 {
			t.Errorf("new check ran %d times in 10m at 20s, want ~30", d)
		}
		if d := rec.count("keep") - before["keep"]; d < 10 || d > 12 {
			t.Errorf("kept check ran %d times in 10m (plus one RunNow), want ~11", d)
		}
		if st.Scheduled != 3 {
			t.Errorf("Scheduled = %d, want 3", st.Scheduled)
		}
		s.mu.Lock()
		if _, ok := s.entries["gone"]; ok {
			t.Errorf("removed check still held after its run finished")
		}
		s.mu.Unlock()
	})
}

func (r *recorder) perCheckNow(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perCheck[name]
}

func (r *recorder) firstRun(name string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name][0]
}

func (r *recorder) reportedCount(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reported[name]
}

func TestReaddWhileInFlightDoesNotRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.sleep["x"] = 40 * time.Second
		s := New(Options{Probe: rec.probe})
		s.Set([]check.Spec{spec("x", 5*time.Second)})
		stop := start(t, s)
		for rec.perCheckNow("x") == 0 {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		s.Set(nil)
		x := spec("x", 5*time.Second)
		x.Target = "changed"
		s.Set([]check.Spec{x})
		s.RunNow("x")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		stop()
		if rec.maxPer != 1 {
			t.Errorf("check ran %d times concurrently after remove+re-add", rec.maxPer)
		}
	})
}

func TestRunNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		s := New(Options{Probe: rec.probe, Report: rec.report})
		s.Set([]check.Spec{spec("hourly", time.Hour)})
		if s.RunNow("nope") {
			t.Errorf("RunNow(unknown) = true")
		}
		// Queued before Run starts: runs as soon as Run does.
		if !s.RunNow("hourly") {
			t.Fatalf("RunNow(hourly) = false")
		}
		t0 := time.Now()
		stop := start(t, s)
		synctest.Wait()
		if got := rec.count("hourly"); got != 1 {
			t.Fatalf("after RunNow: %d runs, want 1 immediately", got)
		}
		if at := rec.firstRun("hourly"); !at.Equal(t0) {
			t.Errorf("RunNow ran at +%v, want immediately", at.Sub(t0))
		}
		time.Sleep(45 * time.Second)
		synctest.Wait()
		// The regular (jittered, within 30s) first run still happens.
		if got := rec.count("hourly"); got != 2 {
			t.Errorf("after 45s: %d runs, want 2 (RunNow + first scheduled run)", got)
		}
		time.Sleep(10 * time.Minute)
		if !s.RunNow("hourly") {
			t.Errorf("RunNow(hourly) = false")
		}
		synctest.Wait()
		if got := rec.count("hourly"); got != 3 {
			t.Errorf("after second RunNow: %d runs, want 3", got)
		}
		stop()
		if rec.reported["hourly"] != 3 {
			t.Errorf("reported %d, want 3", rec.reported["hourly"])
		}
	})
}

func TestShutdownCancelsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		var specs []check.Spec
		for i := range 10 {
			n := fmt.Sprintf("long-%d", i)
			rec.sleep[n] = time.Hour
			specs = append(specs, spec(n, time.Minute))
		}
		s := New(Options{Workers: 4, Probe: rec.probe, Report: rec.report})
		s.Set(specs)
		stop := start(t, s)
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := s.Stats(); st.InFlight != 4 || st.Queued != 6 {
			t.Fatalf("stats = %+v, want 4 in flight and 6 queued", st)
		}
		t0 := time.Now()
		stop() // returns only after the probes have returned
		if d := time.Since(t0); d != 0 {
			t.Errorf("Run took %v of virtual time to stop, want immediately", d)
		}
		if rec.cancelled != 4 {
			t.Errorf("%d probes saw their context cancelled, want 4", rec.cancelled)
		}
		if len(rec.reported) != 0 {
			t.Errorf("results of probes interrupted by shutdown were reported: %v", rec.reported)
		}
		if st := s.Stats(); st.InFlight != 0 || st.Queued != 0 {
			t.Errorf("after Run returned: %+v", st)
		}
	})
}

func TestTimeoutApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var results []check.Result
		probe := func(ctx context.Context, s check.Spec) check.Result {
			<-ctx.Done() // a probe that only stops when told to
			return check.Result{Error: ctx.Err().Error()}
		}
		s := New(Options{Probe: probe, Report: func(r check.Result) {
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}})
		sp := check.Spec{Name: "t", Type: check.TypePush, Interval: check.Duration(time.Minute), Timeout: check.Duration(3 * time.Second)}
		s.Set([]check.Spec{sp})
		s.RunNow("t")
		stop := start(t, s)
		synctest.Wait()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		stop()
		if len(results) != 1 {
			t.Fatalf("got %d results, want 1", len(results))
		}
		r := results[0]
		if r.Check != "t" || r.Duration != 3*time.Second || r.Error != context.DeadlineExceeded.Error() || r.Time.IsZero() {
			t.Errorf("result = %+v, want check t, 3s, deadline exceeded, time set", r)
		}
	})
}

func TestProbePanicIsAFailedResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []check.Result
		s := New(Options{
			Probe:  func(context.Context, check.Spec) check.Result { panic("boom") },
			Report: func(r check.Result) { got = append(got, r) },
		})
		s.Set([]check.Spec{spec("p", time.Minute)})
		s.RunNow("p")
		stop := start(t, s)
		synctest.Wait()
		stop()
		if len(got) != 1 || got[0].OK || got[0].Check != "p" || got[0].Error != "probe panicked: boom" {
			t.Errorf("results = %+v, want one failed result naming the panic", got)
		}
	})
}

func TestRunErrors(t *testing.T) {
	if err := New(Options{}).Run(t.Context()); err == nil {
		t.Errorf("Run without Probe: want error")
	}
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{Probe: func(context.Context, check.Spec) check.Result { return check.Result{} }})
		stop := start(t, s)
		synctest.Wait()
		if err := s.Run(t.Context()); err == nil {
			t.Errorf("second Run: want error")
		}
		stop()
	})
}

func TestAdvance(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		e     entry
		now   time.Time
		want  time.Time
		first bool
	}{
		{"on time", entry{next: t0, base: t0, interval: time.Minute}, t0, t0.Add(time.Minute), false},
		{"slightly late, no drift", entry{next: t0, base: t0, interval: time.Minute}, t0.Add(5 * time.Second), t0.Add(time.Minute), false},
		{"far behind skips missed slots", entry{next: t0, base: t0, interval: time.Minute}, t0.Add(10*time.Minute + time.Second), t0.Add(11 * time.Minute), false},
		{"exactly on a later slot skips it", entry{next: t0, base: t0, interval: time.Minute}, t0.Add(3 * time.Minute), t0.Add(4 * time.Minute), false},
		{"first run joins grid at least interval/2 later", entry{next: t0, base: t0.Add(10 * time.Second), interval: time.Minute, first: true}, t0, t0.Add(70 * time.Second), false},
		{"first run joins grid, base before", entry{next: t0.Add(20 * time.Second), base: t0.Add(50 * time.Second), interval: time.Minute, first: true}, t0.Add(20 * time.Second), t0.Add(50 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			e.advance(tt.now)
			if !e.next.Equal(tt.want) {
				t.Errorf("next = +%v, want +%v", e.next.Sub(t0), tt.want.Sub(t0))
			}
			if e.first != tt.first {
				t.Errorf("first = %v", e.first)
			}
		})
	}
}
