package soc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
)

// HealthReading is the pipeline's own state at one moment, as the health
// watcher reads it.
type HealthReading struct {
	// Unloaded is the events acknowledged (durable in the journal) that
	// searches cannot see yet; MaxBacklog is where the inputs are paced.
	Unloaded, MaxBacklog int
	// Lost counts acknowledged events lost since start: journal segments
	// found damaged on disk when the loader read them back, and event files
	// found damaged when the store opened.
	Lost int
	// DetectionLag is the newest detection batch's time from stored to
	// evaluated; DetectionQueued the events waiting for detection.
	DetectionLag    time.Duration
	DetectionQueued int
	// UDPDrops counts the datagrams the syslog inputs dropped since start.
	UDPDrops uint64
}

// HealthSink receives the watcher's alerts (the incident workflow).
type HealthSink interface {
	Fire(ctx context.Context, a alert.Alert) error
	Resolve(ctx context.Context, fingerprint string, at time.Time) error
}

// HealthOptions configures a HealthWatcher.
type HealthOptions struct {
	Read   func() HealthReading
	Alerts HealthSink
	// Every is how often the state is read (default 10 s); For how long a
	// condition must hold before it fires, and be gone before it resolves
	// (default 1 min); LagLimit the detection lag that counts as late
	// (default 30 s).
	Every, For, LagLimit time.Duration
	Now                  func() time.Time
	Logger               *slog.Logger
}

// Alert names of the pipeline's own alerts (label alertname).
const (
	AlertEventStoreBehind = "NocsocEventStoreBehind"
	AlertInputsPaced      = "NocsocLogInputsPaced"
	AlertDetectionLate    = "NocsocDetectionLate"
	AlertEventsLost       = "NocsocEventsLost"
	AlertUDPDrops         = "NocsocSyslogUDPDrops"
)

// condition is one thing the watcher raises an alert for.
type condition struct {
	name, severity, title string
	// on says the condition holds; off that it is over (hysteresis: a
	// firing alert resolves only once off has held For). Either may
	// compare with the previous reading.
	on, off func(r, prev HealthReading) bool
	// immediate fires at the first reading that holds, without waiting
	// For (what it reports is already lost); sticky never resolves by
	// itself (a loss must be looked at) and fires again at each new one.
	immediate, sticky bool
	desc              func(r HealthReading) string

	since  time.Time // when on (or, firing, off) started to hold
	firing bool
}

// HealthWatcher raises NOC alerts about the SOC pipeline itself, the ones
// an operator must see before the symptoms: the event store falling
// behind (searches miss recent events), log inputs paced at the backlog
// cap (senders are slowed, and UDP senders lose lines), detection running
// late, acknowledged events lost, and UDP datagrams dropped. Each alert
// resolves by itself once its condition has been gone For, except a loss.
type HealthWatcher struct {
	o     HealthOptions
	conds []*condition
	prev  HealthReading
	read  bool
}

// NewHealthWatcher returns a watcher; Run drives it.
func NewHealthWatcher(o HealthOptions) *HealthWatcher {
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.For <= 0 {
		o.For = time.Minute
	}
	if o.LagLimit <= 0 {
		o.LagLimit = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lag := o.LagLimit
	return &HealthWatcher{o: o, conds: []*condition{
		{
			name: AlertEventStoreBehind, severity: "medium",
			title: "Event store behind: searches miss the newest events",
			on:    func(r, _ HealthReading) bool { return r.MaxBacklog > 0 && r.Unloaded >= r.MaxBacklog/4 },
			off:   func(r, _ HealthReading) bool { return r.Unloaded < r.MaxBacklog/16 },
			desc: func(r HealthReading) string {
				return fmt.Sprintf("%d acknowledged events are not yet searchable (the inputs are paced at %d). They are safe in the journal; searches answer without them and say how many they left out. The server is receiving more log events than it can store: lower the input rate or give it more CPU.", r.Unloaded, r.MaxBacklog)
			},
		},
		{
			name: AlertInputsPaced, severity: "high",
			title: "Log inputs paced: the event store's backlog is full",
			on:    func(r, _ HealthReading) bool { return r.MaxBacklog > 0 && r.Unloaded >= r.MaxBacklog },
			off:   func(r, _ HealthReading) bool { return r.Unloaded < r.MaxBacklog/2 },
			desc: func(r HealthReading) string {
				return fmt.Sprintf("%d events wait for the event store, its limit (server.eventstore.max_backlog). TCP, TLS and HTTP senders are slowed down until it drains; UDP datagrams that do not fit are dropped and counted.", r.Unloaded)
			},
		},
		{
			name: AlertDetectionLate, severity: "high",
			title: "Sigma detection running late",
			// The lag is the newest batch's: with nothing queued, detection
			// has caught up whatever it was.
			on:  func(r, _ HealthReading) bool { return r.DetectionQueued > 0 && r.DetectionLag >= lag },
			off: func(r, _ HealthReading) bool { return r.DetectionQueued == 0 || r.DetectionLag < lag/2 },
			desc: func(r HealthReading) string {
				return fmt.Sprintf("The newest events were evaluated %s after they were stored; %d events wait for detection. Detection alerts arrive that much later.", r.DetectionLag.Round(time.Second), r.DetectionQueued)
			},
		},
		{
			name: AlertEventsLost, severity: "critical", immediate: true, sticky: true,
			title: "Acknowledged log events lost: stored data damaged on disk",
			on:    func(r, prev HealthReading) bool { return r.Lost > prev.Lost },
			desc: func(r HealthReading) string {
				return fmt.Sprintf("%d acknowledged events were lost since the server started: a journal segment was damaged on disk when the loader read it back, or an event file when the server started. The server log names the file (kept as .damaged); check the disk.", r.Lost)
			},
		},
		{
			name: AlertUDPDrops, severity: "medium", immediate: true,
			title: "Syslog UDP datagrams dropped",
			on:    func(r, prev HealthReading) bool { return r.UDPDrops > prev.UDPDrops },
			off:   func(r, prev HealthReading) bool { return r.UDPDrops == prev.UDPDrops },
			desc: func(r HealthReading) string {
				return fmt.Sprintf("%d UDP datagrams dropped since the server started because the input's queue was full; those lines are lost. Senders that can should use TCP or TLS, which are slowed down instead.", r.UDPDrops)
			},
		},
	}}
}

// HealthFingerprint is the fingerprint of the watcher's alert name.
func HealthFingerprint(name string) string {
	return alert.Fingerprint(healthLabels(name))
}

func healthLabels(name string) map[string]string {
	return map[string]string{"alertname": name, "component": "soc-pipeline"}
}

// Run reads the state every Every until ctx ends.
func (w *HealthWatcher) Run(ctx context.Context) {
	t := time.NewTicker(w.o.Every)
	defer t.Stop()
	for {
		w.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reads the state once and fires or resolves what changed.
func (w *HealthWatcher) Check(ctx context.Context) {
	r, now := w.o.Read(), w.o.Now()
	prev := w.prev
	if !w.read {
		// Counters since start: the first reading is the baseline, except
		// for losses, which the store finds when it opens, before the
		// first reading.
		prev, w.read = r, true
		prev.Lost = 0
		w.resolveStale(ctx, r, now)
	}
	w.prev = r
	for _, c := range w.conds {
		if !c.firing {
			if !c.on(r, prev) {
				c.since = time.Time{}
				continue
			}
			if c.since.IsZero() {
				c.since = now
			}
			if c.immediate || now.Sub(c.since) >= w.o.For {
				w.fire(ctx, c, r, now)
			}
			continue
		}
		switch {
		case c.sticky:
			if c.on(r, prev) {
				w.fire(ctx, c, r, now) // another loss: a repeat of the same alert
			}
		case !c.off(r, prev):
			c.since = time.Time{}
		case c.since.IsZero():
			c.since = now
			fallthrough
		default:
			if now.Sub(c.since) >= w.o.For {
				if err := w.o.Alerts.Resolve(ctx, HealthFingerprint(c.name), now); err != nil {
					w.o.Logger.Warn("resolving a pipeline health alert failed", "alert", c.name, "err", err)
					continue
				}
				c.firing, c.since = false, time.Time{}
			}
		}
	}
}

// resolveStale resolves, at start, the alerts an earlier run may have left
// firing whose condition is over now; the workflow ignores the resolve of
// an alert that is not firing. A loss stays for an operator.
func (w *HealthWatcher) resolveStale(ctx context.Context, r HealthReading, now time.Time) {
	for _, c := range w.conds {
		if c.sticky || !c.off(r, r) {
			continue
		}
		if err := w.o.Alerts.Resolve(ctx, HealthFingerprint(c.name), now); err != nil {
			w.o.Logger.Warn("resolving a pipeline health alert failed", "alert", c.name, "err", err)
		}
	}
}

func (w *HealthWatcher) fire(ctx context.Context, c *condition, r HealthReading, now time.Time) {
	a := alert.Alert{
		Fingerprint: HealthFingerprint(c.name),
		Status:      alert.StatusFiring,
		Team:        alert.TeamNOC,
		Origin:      alert.OriginNatural,
		Severity:    c.severity,
		Title:       c.title,
		Description: c.desc(r),
		Labels:      healthLabels(c.name),
		Source:      "nocsoc",
		StartedAt:   now,
		LastSeenAt:  now,
		Occurrences: 1,
	}
	if err := w.o.Alerts.Fire(ctx, a); err != nil {
		w.o.Logger.Warn("firing a pipeline health alert failed", "alert", c.name, "err", err)
		return
	}
	c.firing, c.since = true, time.Time{}
}
