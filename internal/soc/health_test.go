package soc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// healthSink records what the watcher fires and resolves, by alert name.
type healthSink struct {
	log   []string
	fired map[string]alert.Alert
}

func (s *healthSink) Fire(_ context.Context, a alert.Alert) error {
	s.log = append(s.log, "fire "+a.Labels["alertname"])
	s.fired[a.Labels["alertname"]] = a
	return nil
}

func (s *healthSink) Resolve(_ context.Context, fp string, _ time.Time) error {
	for _, name := range []string{AlertEventStoreBehind, AlertInputsPaced, AlertDetectionLate, AlertEventsLost, AlertUDPDrops} {
		if HealthFingerprint(name) == fp {
			s.log = append(s.log, "resolve "+name)
			return nil
		}
	}
	return fmt.Errorf("resolve of unknown fingerprint %s", fp)
}

// healthRig is a watcher on an injected clock, checked every 10 s.
type healthRig struct {
	t    *testing.T
	now  time.Time
	r    HealthReading
	sink *healthSink
	w    *HealthWatcher
}

func newHealthRig(t *testing.T) *healthRig {
	h := &healthRig{t: t, now: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), r: HealthReading{MaxBacklog: 1600},
		sink: &healthSink{fired: map[string]alert.Alert{}}}
	h.w = NewHealthWatcher(HealthOptions{Read: func() HealthReading { return h.r }, Alerts: h.sink,
		Now: func() time.Time { return h.now }, For: time.Minute, LagLimit: 30 * time.Second})
	return h
}

// start makes the first check (which resolves what an earlier run left
// firing, TestHealthStart) and forgets what it did.
func (h *healthRig) start() *healthRig {
	h.step(1)
	h.sink.log = nil
	return h
}

// step advances the clock by n checks of 10 s, checking after each, and
// returns what the sink saw during them.
func (h *healthRig) step(n int) []string {
	h.t.Helper()
	before := len(h.sink.log)
	for range n {
		h.now = h.now.Add(10 * time.Second)
		h.w.Check(context.Background())
	}
	return h.sink.log[before:]
}

func (h *healthRig) want(got []string, want ...string) {
	h.t.Helper()
	if !slices.Equal(got, want) {
		h.t.Errorf("got %q, want %q", got, want)
	}
}

// A backlog fires only once it has lasted For, and resolves only once it
// has been small for For: a short burst raises nothing, a fluctuating one
// does not flap.
func TestHealthBacklog(t *testing.T) {
	h := newHealthRig(t).start()
	h.want(h.step(1))
	h.r.Unloaded = 500 // over a quarter of 1,600
	h.want(h.step(5))  // 50 s: not yet
	h.r.Unloaded = 100
	h.want(h.step(1)) // the burst ended before For
	h.r.Unloaded = 500
	h.want(h.step(6))
	h.want(h.step(1), "fire "+AlertEventStoreBehind) // held 60 s
	a := h.sink.fired[AlertEventStoreBehind]
	if a.Team != alert.TeamNOC || a.Origin != alert.OriginNatural || a.Severity != "medium" || !strings.Contains(a.Description, "500 acknowledged events") {
		t.Errorf("alert = %+v", a)
	}
	h.r.Unloaded = 1600 // the cap: the inputs are paced
	h.want(h.step(7), "fire "+AlertInputsPaced)
	h.r.Unloaded = 300 // under half the cap, over a sixteenth
	h.want(h.step(7), "resolve "+AlertInputsPaced)
	h.r.Unloaded = 50
	h.want(h.step(6))
	h.r.Unloaded = 200 // back over a sixteenth: the wait starts again
	h.want(h.step(3))
	h.r.Unloaded = 0
	h.want(h.step(6))
	h.want(h.step(1), "resolve "+AlertEventStoreBehind)
	h.want(h.step(10))
}

// Detection is late while events wait and the newest batch took longer
// than LagLimit; an empty queue means it has caught up.
func TestHealthDetectionLate(t *testing.T) {
	h := newHealthRig(t).start()
	h.r.DetectionLag, h.r.DetectionQueued = 45*time.Second, 0
	h.want(h.step(10))
	h.r.DetectionQueued = 20000
	h.want(h.step(7), "fire "+AlertDetectionLate)
	if d := h.sink.fired[AlertDetectionLate].Description; !strings.Contains(d, "45s") || !strings.Contains(d, "20000 events") {
		t.Errorf("description = %q", d)
	}
	h.r.DetectionQueued = 0
	h.want(h.step(7), "resolve "+AlertDetectionLate)
}

// A loss fires at once, again at each new loss, and never resolves by
// itself; counters that were already non-zero at start are a baseline.
func TestHealthLossAndUDPDrops(t *testing.T) {
	h := newHealthRig(t)
	// Losses found at start (the store opening) fire at the first check;
	// drops before it are the baseline.
	h.r.Lost, h.r.UDPDrops = 3, 10
	if got := h.step(1); !slices.Contains(got, "fire "+AlertEventsLost) || slices.Contains(got, "fire "+AlertUDPDrops) {
		t.Errorf("first check: %q; want %s fired, %s not", got, AlertEventsLost, AlertUDPDrops)
	}
	h.want(h.step(30))
	h.r.Lost = 19
	h.want(h.step(1), "fire "+AlertEventsLost)
	if a := h.sink.fired[AlertEventsLost]; a.Severity != "critical" || !strings.Contains(a.Description, "19 acknowledged events") {
		t.Errorf("alert = %+v", a)
	}
	h.want(h.step(30))
	h.r.Lost = 20
	h.want(h.step(1), "fire "+AlertEventsLost)

	h.r.UDPDrops = 11
	h.want(h.step(1), "fire "+AlertUDPDrops)
	h.r.UDPDrops = 500
	h.want(h.step(5)) // still dropping: stays firing, no repeat
	h.want(h.step(7), "resolve "+AlertUDPDrops)
	h.want(h.step(30))
}

// At start the watcher resolves the alerts an earlier run may have left
// firing, for the conditions that are over; not a loss, and not what still
// holds.
func TestHealthStart(t *testing.T) {
	h := newHealthRig(t)
	h.r.Unloaded = 300 // over a sixteenth of 1,600: the backlog is not over
	h.want(h.step(1), "resolve "+AlertInputsPaced, "resolve "+AlertDetectionLate, "resolve "+AlertUDPDrops)
	h.want(h.step(10))
}
