// Package schedule runs active checks on time: a min-heap of due times
// drives a bounded, on-demand worker pool, so thousands of checks run with
// few goroutines and one slow check can never starve the others.
package schedule

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// DefaultWorkers is the number of concurrent probes when Options.Workers is 0.
const DefaultWorkers = 256

// maxFirstDelay bounds how long a newly added check waits for its first run,
// so an operator sees a result soon after adding an hourly check.
const maxFirstDelay = 30 * time.Second

// lateAfter is how far past its due time a run may start before it counts
// as late in Stats.
const lateAfter = time.Second

// Options configures a Scheduler.
type Options struct {
	// Workers is the maximum number of concurrent probes; default 256.
	Workers int
	// Probe does the work of one run. It must honour ctx, which carries the
	// spec's timeout and is cancelled on shutdown.
	Probe func(ctx context.Context, s check.Spec) check.Result
	// Report is called with every result, from the worker goroutine that
	// ran the probe. It may be nil.
	Report func(r check.Result)
	// Logger receives scheduler diagnostics; nil discards them.
	Logger *slog.Logger
}

// Stats is a snapshot of the scheduler's counters.
type Stats struct {
	// Scheduled is the number of checks on the schedule.
	Scheduled int
	// InFlight is the number of probes running now.
	InFlight int
	// Queued is the number of runs due and waiting for a free worker.
	Queued int
	// Skipped counts runs skipped because the previous run of that check was
	// still queued or in flight when the next one came due.
	Skipped uint64
	// Late counts runs that started more than 1s after they were due
	// because no worker was free.
	Late uint64
}

// run states of an entry.
const (
	stateIdle = iota
	stateQueued
	stateRunning
)

// entry is one scheduled check.
type entry struct {
	spec     check.Spec
	interval time.Duration
	timeout  time.Duration
	// next is when the check is due; base is a point on its steady-state
	// grid (base + k*interval), which first is true until the first run.
	next  time.Time
	base  time.Time
	first bool
	// index in the heap, -1 when not on it (removed or disabled).
	index   int
	state   int
	removed bool
}

// job is one run waiting for a worker.
type job struct {
	e   *entry
	due time.Time
}

// Scheduler runs checks on time. It is safe for concurrent use.
type Scheduler struct {
	probe   func(ctx context.Context, s check.Spec) check.Result
	report  func(r check.Result)
	log     *slog.Logger
	workers int

	// wake nudges the dispatcher to re-arm its timer after the heap's head
	// may have changed.
	wake chan struct{}

	mu      sync.Mutex
	entries map[string]*entry // includes removed entries still in flight
	due     dueHeap
	queue   []job
	active  int // worker goroutines alive
	running int // workers executing a probe
	runCtx  context.Context
	started bool // Run was called
	serving bool // Run is running and may start workers
	wg      sync.WaitGroup
	skipped uint64
	late    uint64
}

// New returns a scheduler; call Set to give it checks and Run to start it.
func New(opts Options) *Scheduler {
	w := opts.Workers
	if w <= 0 {
		w = DefaultWorkers
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		probe:   opts.Probe,
		report:  opts.Report,
		log:     lg.With("component", "scheduler"),
		workers: w,
		wake:    make(chan struct{}, 1),
		entries: make(map[string]*entry),
	}
}

// Set replaces the set of scheduled checks. Unchanged checks keep their
// next-run time; changed ones are rescheduled as if new; removed and
// disabled ones stop (an in-flight probe of a removed check finishes and its
// result is still reported). Push checks are scheduled like any other: their
// probe checks the heartbeat deadline. Specs with an empty name are ignored;
// with duplicate names the last one wins (validation belongs to the caller,
// see check.ValidateSet).
func (s *Scheduler) Set(specs []check.Spec) {
	now := time.Now()
	want := make(map[string]check.Spec, len(specs))
	for _, sp := range specs {
		if sp.Name == "" || sp.Disabled {
			continue
		}
		want[sp.Name] = sp
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.entries {
		if _, ok := want[name]; ok || e.removed {
			continue
		}
		e.removed = true
		if e.index >= 0 {
			heap.Remove(&s.due, e.index)
		}
		if e.state == stateIdle {
			delete(s.entries, name)
		}
		// A queued or running entry stays in the map until its worker is
		// done with it, so that re-adding the check cannot run it twice
		// concurrently.
	}
	for name, sp := range want {
		e, ok := s.entries[name]
		if ok && !e.removed && reflect.DeepEqual(e.spec, sp) {
			continue
		}
		if !ok {
			e = &entry{index: -1}
			s.entries[name] = e
		}
		e.removed = false
		e.spec = sp
		e.interval, e.timeout = effective(sp)
		e.first = true
		e.next, e.base = firstRun(name, e.interval, now)
		if e.index >= 0 {
			heap.Fix(&s.due, e.index)
		} else {
			heap.Push(&s.due, e)
		}
	}
	s.nudge()
}

// RunNow queues the named check ahead of scheduled runs, to run as soon as
// a worker is free; its schedule is unchanged. It reports false when the
// check is not scheduled. A check already queued or in flight is not queued
// twice: the coming result answers the request.
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[name]
	if !ok || e.removed {
		return false
	}
	if e.state != stateIdle {
		return true
	}
	e.state = stateQueued
	s.queue = append(s.queue, job{})
	copy(s.queue[1:], s.queue)
	s.queue[0] = job{e: e, due: time.Now()}
	s.startWorkersLocked()
	return true
}

// Stats returns a snapshot of the counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Scheduled: len(s.due),
		InFlight:  s.running,
		Queued:    len(s.queue),
		Skipped:   s.skipped,
		Late:      s.late,
	}
}

// Run schedules until ctx is cancelled, then drops queued runs, lets the
// in-flight probes see their cancelled contexts and waits for them to
// return. Results of probes interrupted by shutdown are not reported: they
// describe the shutdown, not the checked service. Run returns nil after a
// clean shutdown and may be called only once.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.probe == nil {
		return errors.New("schedule: Options.Probe is nil")
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("schedule: Run called twice")
	}
	s.started, s.serving, s.runCtx = true, true, ctx
	s.startWorkersLocked() // RunNow requests made before Run
	s.mu.Unlock()
	s.log.Info("scheduler started", "workers", s.workers)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, armed := s.dispatch(time.Now())
		if armed {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.serving = false
			for _, j := range s.queue {
				s.finishLocked(j.e)
			}
			s.queue = nil
			s.mu.Unlock()
			s.wg.Wait()
			s.log.Info("scheduler stopped")
			return nil
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// dispatch queues every check due at now, starts workers for them and
// returns how long to sleep until the next due time (armed false when
// nothing is scheduled).
func (s *Scheduler) dispatch(now time.Time) (wait time.Duration, armed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.due) > 0 && !s.due[0].next.After(now) {
		e := s.due[0]
		due := e.next
		e.advance(now)
		heap.Fix(&s.due, 0)
		if e.state != stateIdle {
			s.skipped++
			s.log.Debug("run skipped: previous run still in flight", "check", e.spec.Name, "due", due)
			continue
		}
		e.state = stateQueued
		s.queue = append(s.queue, job{e: e, due: due})
	}
	s.startWorkersLocked()
	if len(s.due) == 0 {
		return 0, false
	}
	return s.due[0].next.Sub(now), true
}

// startWorkersLocked starts worker goroutines for queued jobs that no idle
// worker is about to take, up to the worker limit. Workers exit when the
// queue is empty, so an idle scheduler holds no worker goroutines.
func (s *Scheduler) startWorkersLocked() {
	if !s.serving {
		return
	}
	for s.active < s.workers && len(s.queue) > s.active-s.running {
		s.active++
		s.wg.Add(1)
		go s.work()
	}
}

// work runs queued jobs until the queue is empty or Run is stopping.
func (s *Scheduler) work() {
	defer s.wg.Done()
	s.mu.Lock()
	for {
		// Checking runCtx too stops a worker from starting queued jobs in
		// the moment between cancellation and Run's cleanup.
		if !s.serving || s.runCtx.Err() != nil || len(s.queue) == 0 {
			s.active--
			s.mu.Unlock()
			return
		}
		j := s.queue[0]
		s.queue[0] = job{}
		s.queue = s.queue[1:]
		if j.e.removed {
			s.finishLocked(j.e)
			continue
		}
		start := time.Now()
		if start.Sub(j.due) > lateAfter {
			s.late++
		}
		j.e.state = stateRunning
		s.running++
		spec, timeout, ctx := j.e.spec, j.e.timeout, s.runCtx
		s.mu.Unlock()

		r, delivered := s.runProbe(ctx, spec, timeout, start)
		if delivered && s.report != nil {
			s.report(r)
		}

		s.mu.Lock()
		s.running--
		s.finishLocked(j.e)
	}
}

// finishLocked returns an entry to idle after its run (or dropped run) and
// forgets it when it was removed meanwhile.
func (s *Scheduler) finishLocked(e *entry) {
	e.state = stateIdle
	if e.removed && s.entries[e.spec.Name] == e {
		delete(s.entries, e.spec.Name)
	}
}

// runProbe runs one probe under the spec's timeout, turning a panic into a
// failed result so one broken probe cannot take the process down. It
// reports delivered=false when the run was interrupted by shutdown.
func (s *Scheduler) runProbe(parent context.Context, spec check.Spec, timeout time.Duration, start time.Time) (r check.Result, delivered bool) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("probe panicked", "check", spec.Name, "panic", p)
				r = check.Result{OK: false, Error: fmt.Sprintf("probe panicked: %v", p)}
			}
		}()
		r = s.probe(ctx, spec)
	}()
	if parent.Err() != nil {
		return r, false
	}
	if r.Check == "" {
		r.Check = spec.Name
	}
	if r.Time.IsZero() {
		r.Time = start
	}
	if r.Duration == 0 {
		r.Duration = time.Since(start)
	}
	return r, true
}

// nudge wakes the dispatcher without blocking.
func (s *Scheduler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// effective returns the interval and timeout the scheduler uses for a spec,
// applying the package check defaults to unset values.
func effective(sp check.Spec) (interval, timeout time.Duration) {
	interval, timeout = sp.Interval.D(), sp.Timeout.D()
	if interval <= 0 {
		interval = check.DefaultInterval
	}
	if timeout <= 0 {
		timeout = check.DefaultTimeout
	}
	return interval, timeout
}

// firstRun spreads new checks deterministically: the steady-state slot of
// a check is hash(name) mod interval, which spreads checks evenly over their
// interval, but the first run comes within min(interval, 30s), so a long
// interval does not leave a new check unknown for long. It returns the first
// due time and a point of the steady-state grid.
func firstRun(name string, interval time.Duration, now time.Time) (next, base time.Time) {
	h := fnv.New64a()
	h.Write([]byte(name))
	sum := h.Sum64()
	spread := min(interval, maxFirstDelay)
	return now.Add(time.Duration(sum % uint64(spread))), now.Add(time.Duration(sum % uint64(interval)))
}

// advance moves e.next past a run that was due at e.next, at now. Due
// times stay on the grid base + k*interval, so runs do not drift, and slots
// already missed (the process was stalled) are skipped rather than run in
// a burst. After the first run, the next one comes at least interval/2
// later, where the check joins its steady-state grid.
func (e *entry) advance(now time.Time) {
	lo := e.next.Add(e.interval)
	if e.first {
		lo = e.next.Add(e.interval / 2)
		e.first = false
	}
	if !lo.After(now) {
		lo = now.Add(1)
	}
	d := lo.Sub(e.base)
	k := d / e.interval
	if d%e.interval > 0 {
		k++ // ceiling; truncation already is the ceiling for negative d
	}
	e.next = e.base.Add(k * e.interval)
}

// dueHeap is a min-heap of entries by next due time.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}
