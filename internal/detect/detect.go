// Package detect runs the Sigma engine over the event stream and turns its
// matches into SOC alerts: team soc, origin human, severity from the rule's
// level, ATT&CK tags as labels, the rule's author credited and the matching
// event ids attached for investigation.
package detect

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/event"
	"github.com/nocsoc/nocsoc/internal/sigma"
)

// AlertSink receives the alerts (the incident workflow).
type AlertSink interface {
	Fire(ctx context.Context, a alert.Alert) error
}

// BatchAlertSink is an AlertSink that also takes all of one batch's
// alerts in one call: the incident workflow then commits them together
// instead of one commit per match.
type BatchAlertSink interface {
	AlertSink
	FireAll(ctx context.Context, as []alert.Alert) error
}

// Options configures a Detector.
type Options struct {
	Engine *sigma.Engine
	Alerts AlertSink
	Logger *slog.Logger
	// MaxRemembered is how many recent event ids are kept to attach to
	// correlation matches (default 2,000,000: 16 MB); up to a quarter more
	// are kept between trims.
	MaxRemembered int
}

// Detector evaluates events in the order they were stored.
type Detector struct {
	alerts AlertSink
	log    *slog.Logger

	mu sync.Mutex
	// engine is swapped under mu (SetEngine), so a Process or Tick uses
	// one engine throughout; NewAhead reads it without mu.
	engine atomic.Pointer[sigma.Engine]
	seq    int
	// ids remembers the store ids of recent events by engine sequence.
	ids    []uint64
	idBase int
	maxIDs int

	hits sync.Map // rule id → *atomic.Uint64

	// disabled holds the ids of rules an operator switched off; their
	// matches are dropped before alerts are raised. Swapped whole.
	disabled atomic.Pointer[map[string]bool]
}

// New creates a Detector.
func New(o Options) *Detector {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRemembered <= 0 {
		o.MaxRemembered = 2_000_000
	}
	d := &Detector{alerts: o.Alerts, log: o.Logger.With("component", "detect"), maxIDs: o.MaxRemembered}
	d.engine.Store(o.Engine)
	return d
}

// SetEngine swaps the rules (reload). Correlation state starts afresh.
func (d *Detector) SetEngine(e *sigma.Engine) {
	d.mu.Lock()
	d.engine.Store(e)
	d.mu.Unlock()
}

// aheadBatch is NewAhead's event.Ahead.
type aheadBatch struct{ *sigma.AheadBatch }

func (b aheadBatch) Add(e *event.Event) { b.AheadBatch.Add(e) }

// NewAhead starts reading ahead, for the current engine, the fields of a
// batch of about n events that detection reads for most events
// (sigma.AheadBatch); ProcessAhead then takes it with the batch. Safe for
// concurrent use. nil when there are no rules.
func (d *Detector) NewAhead(n int) event.Ahead {
	e := d.engine.Load()
	if e == nil {
		return nil
	}
	return aheadBatch{e.NewAheadBatch(n)}
}

// Engine returns the current engine.
func (d *Detector) Engine() *sigma.Engine {
	return d.engine.Load()
}

// SetDisabled replaces the set of rule ids whose matches are dropped:
// the rules still run (correlations that use them keep their state), but
// raise no alert and count no hit. nil enables every rule.
func (d *Detector) SetDisabled(ids map[string]bool) {
	cp := make(map[string]bool, len(ids))
	for id, off := range ids {
		if off {
			cp[id] = true
		}
	}
	d.disabled.Store(&cp)
}

// Disabled reports whether the rule id is switched off.
func (d *Detector) Disabled(id string) bool {
	m := d.disabled.Load()
	return m != nil && (*m)[id]
}

// Hits returns how often each rule fired since start.
func (d *Detector) Hits() map[string]uint64 {
	out := map[string]uint64{}
	d.hits.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

type found struct {
	m  sigma.Match
	ev *event.Event // the event that made it fire (nil for Tick)
}

// Process evaluates batches of stored events (ids assigned), in order,
// and raises an alert for every match: the alerts of all the batches go
// to the sink in one call (one commit in the incident workflow). Batches
// must come in storage order.
func (d *Detector) Process(ctx context.Context, batches ...[]event.Event) error {
	return d.ProcessAhead(ctx, batches, nil)
}

// ProcessAhead is Process with what NewAhead read of the batches: ahead[i]
// is batches[i]'s, or nil (a short or nil ahead reads nothing ahead).
func (d *Detector) ProcessAhead(ctx context.Context, batches [][]event.Event, ahead []event.Ahead) error {
	var matches []found
	d.mu.Lock()
	eng := d.engine.Load()
	if eng == nil {
		d.mu.Unlock()
		return nil
	}
	for k, evs := range batches {
		var ab *sigma.AheadBatch
		if k < len(ahead) {
			if a, ok := ahead[k].(aheadBatch); ok && a.Len() == len(evs) {
				ab = a.AheadBatch
			}
		}
		for i := range evs {
			d.ids = append(d.ids, evs[i].ID)
			for _, m := range eng.MatchAhead(&evs[i], ab, i, evs[i].Time) {
				matches = append(matches, found{m: m, ev: &evs[i]})
			}
			d.seq++
		}
	}
	// The oldest ids are dropped a quarter of the bound at a time: moving
	// the 2 million kept (16 MB) after every batch took 2 % of the
	// server's CPU at full load.
	if over := len(d.ids) - d.maxIDs; over > 0 && over >= d.maxIDs/4 {
		d.ids = append(d.ids[:0], d.ids[over:]...)
		d.idBase += over
	}
	resolved := make([][]uint64, len(matches))
	for i, f := range matches {
		resolved[i] = d.eventIDs(f.m)
	}
	d.mu.Unlock()
	return d.raise(ctx, matches, resolved)
}

// Tick lets time-driven rules (log source gone silent) fire.
func (d *Detector) Tick(ctx context.Context, now time.Time) error {
	d.mu.Lock()
	eng := d.engine.Load()
	if eng == nil {
		d.mu.Unlock()
		return nil
	}
	ms := eng.Tick(now)
	matches := make([]found, len(ms))
	resolved := make([][]uint64, len(ms))
	for i, m := range ms {
		matches[i] = found{m: m}
		resolved[i] = d.eventIDs(m)
	}
	d.mu.Unlock()
	return d.raise(ctx, matches, resolved)
}

// eventIDs maps engine sequence numbers to store ids. d.mu is held.
func (d *Detector) eventIDs(m sigma.Match) []uint64 {
	seqs := m.Events
	if len(seqs) == 0 {
		seqs = []int{m.EventIndex}
	}
	var out []uint64
	for _, s := range seqs {
		if i := s - d.idBase; i >= 0 && i < len(d.ids) {
			out = append(out, d.ids[i])
		}
	}
	return out
}

func (d *Detector) raise(ctx context.Context, matches []found, ids [][]uint64) error {
	batch, _ := d.alerts.(BatchAlertSink)
	var all []alert.Alert
	for i, f := range matches {
		if d.Disabled(f.m.Rule.ID) {
			continue
		}
		a := AlertFor(f.m, f.ev, ids[i])
		c, _ := d.hits.LoadOrStore(f.m.Rule.ID, new(atomic.Uint64))
		c.(*atomic.Uint64).Add(1)
		if d.alerts == nil {
			continue
		}
		if batch != nil {
			all = append(all, a)
			continue
		}
		if err := d.alerts.Fire(ctx, a); err != nil {
			d.log.Error("raise detection alert", "rule", f.m.Rule.ID, "err", err)
			return err
		}
	}
	if len(all) > 0 {
		if err := batch.FireAll(ctx, all); err != nil {
			d.log.Error("raise detection alerts", "alerts", len(all), "err", err)
			return err
		}
	}
	return nil
}

// Severity maps a Sigma level to an alert severity.
func Severity(level string) string {
	switch strings.ToLower(level) {
	case "critical":
		return "critical"
	case "high":
		return "high"
	case "medium":
		return "medium"
	case "low":
		return "low"
	}
	return "info"
}

// identifying fields: a single-event rule's alert is one per rule and
// per value of these, so repeats bump one alert instead of paging again.
var identifying = []string{"host.name", "source.ip", "user.name", "Computer", "TargetUserName"}

// AlertFor builds the alert of one match.
func AlertFor(m sigma.Match, ev *event.Event, ids []uint64) alert.Alert {
	r := m.Rule
	labels := map[string]string{"rule_id": r.ID, "alertname": r.Title}
	if m.GroupKey != "" {
		for _, part := range strings.Split(m.GroupKey, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
				labels[k] = v
			}
		}
	} else if ev != nil {
		for _, f := range identifying {
			if v, ok := ev.Get(f); ok {
				if s, ok := v.(string); ok && s != "" {
					labels[f] = s
				}
			}
		}
	}
	var tactics, techniques []string
	for _, t := range r.Tags {
		t = strings.ToLower(t)
		rest, ok := strings.CutPrefix(t, "attack.")
		if !ok {
			continue
		}
		if len(rest) > 1 && rest[0] == 't' && rest[1] >= '0' && rest[1] <= '9' {
			techniques = append(techniques, strings.ToUpper(rest))
		} else if !strings.HasPrefix(rest, "g") && !strings.HasPrefix(rest, "s0") {
			tactics = append(tactics, rest)
		}
	}
	sort.Strings(tactics)
	sort.Strings(techniques)
	if len(tactics) > 0 {
		labels["attack.tactic"] = strings.Join(tactics, ",")
	}
	if len(techniques) > 0 {
		labels["attack.technique"] = strings.Join(techniques, ",")
	}
	title := r.Title
	if m.GroupKey != "" {
		title += " (" + m.GroupKey + ")"
	} else if ip := labels["source.ip"]; ip != "" {
		title += " from " + ip
	}
	ann := map[string]string{
		"author":      r.Author,
		"rule_title":  r.Title,
		"rule_level":  r.Level,
		"rule_path":   path.Base(r.Path),
		"rule_status": r.Status,
		// The SigmaHQ rules are shared under the Detection Rule License
		// 1.1, which requires crediting the author wherever matches are
		// shown.
		"credit": fmt.Sprintf("Detection rule %q by %s", r.Title, orUnknown(r.Author)),
	}
	if !strings.HasPrefix(r.Path, "builtin/") {
		ann["credit"] += " (Detection Rule License 1.1)"
	}
	if r.Description != "" {
		ann["description"] = r.Description
	}
	// The host of the event that made a correlation fire: automatic
	// response (internal/autoresponse) acts on that endpoint. An
	// annotation, so it does not split the alert's identity.
	if ev != nil && labels["host.name"] == "" {
		if v, ok := ev.Get("host.name"); ok {
			if s, ok := v.(string); ok && s != "" {
				ann["host.name"] = s
			}
		}
	}
	if len(r.References) > 0 {
		ann["references"] = strings.Join(r.References, " ")
	}
	if len(ids) > 0 {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = strconv.FormatUint(id, 10)
		}
		ann["event_ids"] = strings.Join(s, ",")
	}
	desc := r.Description
	if desc == "" {
		desc = r.Title
	}
	return alert.Alert{
		Fingerprint: alert.Fingerprint(labels),
		Team:        alert.TeamSOC,
		Origin:      alert.OriginHuman,
		Severity:    Severity(r.Level),
		Title:       title,
		Description: desc,
		Labels:      labels,
		Annotations: ann,
		Source:      "sigma:" + r.ID,
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown author"
	}
	return s
}

// LoadRules loads rule files from directories on disk and, when builtin
// is set, the rules shipped in the binary. Problems are returned per file;
// the other rules still load.
func LoadRules(dirs []string, builtin fs.FS) ([]*sigma.Rule, []error) {
	var rules []*sigma.Rule
	var errs []error
	if builtin != nil {
		_ = fs.WalkDir(builtin, ".", func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				return err
			}
			b, err := fs.ReadFile(builtin, p)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			rs, es := sigma.ParseRule("builtin/"+path.Base(p), b)
			rules = append(rules, rs...)
			errs = append(errs, es...)
			return nil
		})
	}
	if len(dirs) > 0 {
		rs, es := sigma.LoadDir(dirs...)
		rules = append(rules, rs...)
		errs = append(errs, es...)
	}
	return rules, errs
}
