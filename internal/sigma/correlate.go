package sigma

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Correlation state bounds.
const (
	// DefaultMaxGroups caps distinct group keys per correlation rule; the
	// least recently used group is evicted beyond it.
	DefaultMaxGroups = 10000
	// maxGroupEvents caps the events (or distinct values) kept per group.
	maxGroupEvents = 1024
)

type correlator struct {
	rule   *Rule
	typ    string
	window time.Duration
	ops    map[string]float64
	// groupSlots[step] are the group-by fields for events of that step
	// (aliases resolved); fieldSlots[step] the value_count field.
	groupSlots [][]int32
	groupNames []string
	fieldSlots []int32
	nsteps     int
	self       bool // legacy aggregation: the rule is its own base

	groups    map[string]*group
	lruHead   *group // most recently used
	lruTail   *group
	maxGroups int
	feeds     []feed // correlations chained on this one
}

type group struct {
	key    string
	last   time.Time
	times  []time.Time
	idx    []int
	values map[string]time.Time
	// valuesMin is at most the oldest time in values: pruneValues walks
	// the map only once a value may have left the window, so a group
	// holding many values (password spraying) costs no walk per event.
	valuesMin  time.Time
	stepTime   []time.Time
	stepSet    []bool
	alerted    bool
	lastIdx    int
	prev, next *group
}

func newCorrelator(e *Engine, r *Rule) (*correlator, error) {
	c := r.Correlation
	k := &correlator{rule: r, typ: c.Type, window: c.Timespan, ops: c.Condition, nsteps: len(c.Rules),
		groups: map[string]*group{}, maxGroups: DefaultMaxGroups, groupNames: c.GroupBy}
	if c.Type == "silence" && len(c.GroupBy) == 0 {
		return nil, fmt.Errorf("group-by: required for silence")
	}
	for _, ref := range c.Rules {
		var gs []int32
		for _, g := range c.GroupBy {
			gs = append(gs, e.slotOf(aliasFor(c, g, ref)))
		}
		k.groupSlots = append(k.groupSlots, gs)
		if c.Type == "value_count" {
			k.fieldSlots = append(k.fieldSlots, e.slotOf(aliasFor(c, c.Field, ref)))
		}
	}
	return k, nil
}

func aliasFor(c *Correlation, name, ref string) string {
	if m, ok := c.Aliases[name]; ok {
		if f, ok := m[ref]; ok {
			return f
		}
	}
	return name
}

func newAggCorrelator(e *Engine, r *Rule, a *aggregation) *correlator {
	k := &correlator{rule: r, typ: "event_count", window: a.window, ops: map[string]float64{a.op: a.n},
		nsteps: 1, self: true, groups: map[string]*group{}, maxGroups: DefaultMaxGroups}
	var gs []int32
	if a.groupBy != "" {
		gs = append(gs, e.slotOf(a.groupBy))
		k.groupNames = []string{a.groupBy}
	}
	k.groupSlots = [][]int32{gs}
	if a.field != "" {
		k.typ = "value_count"
		k.fieldSlots = []int32{e.slotOf(a.field)}
	}
	return k
}

func (k *correlator) holds(n float64) bool {
	for op, x := range k.ops {
		var ok bool
		switch op {
		case "gt":
			ok = n > x
		case "gte":
			ok = n >= x
		case "lt":
			ok = n < x
		case "lte":
			ok = n <= x
		case "eq":
			ok = n == x
		case "neq":
			ok = n != x
		}
		if !ok {
			return false
		}
	}
	return true
}

// groupKey renders the group-by values of the current event.
func (k *correlator) groupKey(sc *scratch, step int) string {
	slots := k.groupSlots[step]
	if len(slots) == 0 {
		return ""
	}
	start := len(sc.arena)
	for i, s := range slots {
		if i > 0 {
			sc.arena = append(sc.arena, ',')
		}
		sc.arena = append(sc.arena, k.groupNames[i]...)
		sc.arena = append(sc.arena, '=')
		fv := sc.field(s)
		if fv.present && !fv.null {
			sc.arena = append(sc.arena, fv.str...)
		}
	}
	return sc.arenaString(start)
}

func (k *correlator) touch(g *group) {
	if k.lruHead == g {
		return
	}
	k.unlink(g)
	g.next = k.lruHead
	if k.lruHead != nil {
		k.lruHead.prev = g
	}
	k.lruHead = g
	if k.lruTail == nil {
		k.lruTail = g
	}
}

func (k *correlator) unlink(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	}
	if k.lruHead == g {
		k.lruHead = g.next
	}
	if k.lruTail == g {
		k.lruTail = g.prev
	}
	g.prev, g.next = nil, nil
}

func (k *correlator) remove(g *group) {
	k.unlink(g)
	delete(k.groups, g.key)
}

func (e *Engine) feedCorrelation(f feed, idx int, t time.Time) {
	k := f.c
	sc := &e.sc
	key := k.groupKey(sc, f.step)
	g := k.groups[key]
	if g == nil {
		g = &group{key: strings.Clone(key)}
		k.groups[g.key] = g
		for len(k.groups) > k.maxGroups && k.lruTail != nil {
			k.remove(k.lruTail)
			e.stats.GroupsEvicted++
		}
	}
	k.touch(g)
	if t.After(g.last) {
		g.last = t
	}
	g.lastIdx = idx
	fired := false
	lo := t.Add(-k.window)
	switch k.typ {
	case "silence":
		g.alerted = false
		return
	case "event_count":
		g.prune(lo)
		g.add(t, idx, &e.stats)
		fired = k.holds(float64(len(g.times)))
	case "value_count":
		g.prune(lo)
		g.add(t, idx, &e.stats)
		fv := sc.field(k.fieldSlots[f.step])
		if fv.present && !fv.null {
			if g.values == nil {
				g.values = map[string]time.Time{}
			}
			g.pruneValues(lo)
			if _, ok := g.values[fv.str]; ok || len(g.values) < maxGroupEvents {
				v := fv.str
				if _, ok := g.values[v]; !ok {
					v = strings.Clone(v)
				}
				g.values[v] = t
				if len(g.values) == 1 || t.Before(g.valuesMin) {
					g.valuesMin = t
				}
			}
		}
		fired = k.holds(float64(len(g.values)))
	case "temporal":
		if g.stepTime == nil {
			g.stepTime = make([]time.Time, k.nsteps)
			g.stepSet = make([]bool, k.nsteps)
		}
		g.prune(lo)
		g.add(t, idx, &e.stats)
		g.stepTime[f.step], g.stepSet[f.step] = t, true
		n := 0
		for i, set := range g.stepSet {
			if set && !g.stepTime[i].Before(lo) {
				n++
			}
		}
		fired = k.holds(float64(n))
	case "temporal_ordered":
		if g.stepTime == nil {
			g.stepTime = make([]time.Time, k.nsteps)
			g.stepSet = make([]bool, k.nsteps)
		}
		g.prune(lo)
		g.add(t, idx, &e.stats)
		// stepTime[i] is the start of the latest chain that completed steps
		// 0..i in order; keeping the latest start keeps the window open
		// longest.
		if f.step == 0 {
			g.stepTime[0], g.stepSet[0] = t, true
		} else if g.stepSet[f.step-1] && !g.stepTime[f.step-1].Before(lo) && !t.Before(g.stepTime[f.step-1]) {
			start := g.stepTime[f.step-1]
			if !g.stepSet[f.step] || start.After(g.stepTime[f.step]) {
				g.stepTime[f.step], g.stepSet[f.step] = start, true
			}
		}
		fired = g.stepSet[k.nsteps-1] && !g.stepTime[k.nsteps-1].Before(lo)
	}
	if !fired {
		return
	}
	m := Match{Rule: k.rule, EventIndex: idx, Time: t, GroupKey: g.key, Events: lastN(g.idx, MaxMatchEvents)}
	// Firing starts a new window for the group, so one burst raises one
	// match rather than one per further event.
	k.remove(g)
	e.out = append(e.out, m)
	for _, up := range k.feeds {
		e.feedCorrelation(up, idx, t)
	}
}

func (g *group) prune(lo time.Time) {
	n := 0
	for n < len(g.times) && g.times[n].Before(lo) {
		n++
	}
	if n > 0 {
		g.times = append(g.times[:0], g.times[n:]...)
		g.idx = append(g.idx[:0], g.idx[n:]...)
	}
}

func (g *group) add(t time.Time, idx int, st *Stats) {
	if len(g.times) >= maxGroupEvents {
		// Keep the newest: the count becomes a lower bound, which is
		// documented.
		g.times = append(g.times[:0], g.times[1:]...)
		g.idx = append(g.idx[:0], g.idx[1:]...)
		st.EventsTruncated++
	}
	// Keep times sorted even when events arrive slightly out of order.
	i := len(g.times)
	for i > 0 && g.times[i-1].After(t) {
		i--
	}
	g.times = append(g.times, time.Time{})
	g.idx = append(g.idx, 0)
	copy(g.times[i+1:], g.times[i:])
	copy(g.idx[i+1:], g.idx[i:])
	g.times[i], g.idx[i] = t, idx
}

// prune drops up to n groups whose window ended before now, oldest first.
func (e *Engine) prune(now time.Time, n int) {
	for _, k := range e.corrs {
		if k.typ == "silence" {
			continue
		}
		for i := 0; (n < 0 || i < n) && k.lruTail != nil; i++ {
			g := k.lruTail
			if !g.last.Add(k.window).Before(now) {
				break
			}
			k.remove(g)
			e.stats.WindowsExpired++
		}
	}
}

// Tick prunes the correlation windows that have expired by the newest
// event time seen (at most now: windows are in event time, so a replayed
// old log is not cut short by the wall clock), and fires silence
// correlations (the nocsoc extension) for every group that has sent
// nothing for the rule's timespan by now — silence is about the wall
// clock: a source that stopped sends no events to advance event time.
func (e *Engine) Tick(now time.Time) []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.eventNow.IsZero() {
		e.prune(minTime(now, e.eventNow), -1)
	}
	var out []Match
	for _, k := range e.corrs {
		if k.typ != "silence" {
			continue
		}
		for g := k.lruTail; g != nil; g = g.prev {
			if g.alerted || now.Sub(g.last) < k.window {
				continue
			}
			g.alerted = true
			out = append(out, Match{Rule: k.rule, EventIndex: g.lastIdx, Time: now, GroupKey: g.key, Events: []int{g.lastIdx}})
			e.stats.SilenceFired++
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GroupKey < out[j].GroupKey })
	e.stats.Matches += uint64(len(out))
	return out
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Groups = 0
	for _, k := range e.corrs {
		s.Groups += len(k.groups)
	}
	return s
}

// SetMaxGroups changes the per-rule cap on correlation groups (default
// DefaultMaxGroups).
func (e *Engine) SetMaxGroups(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.corrs {
		k.maxGroups = n
	}
}

// Rules returns the compiled detection and correlation rules.
func (e *Engine) Rules() []*Rule {
	var out []*Rule
	for _, cr := range e.rules {
		out = append(out, cr.rule)
	}
	for _, k := range e.corrs {
		if !k.self {
			out = append(out, k.rule)
		}
	}
	return out
}

func lastN(xs []int, n int) []int {
	if len(xs) > n {
		xs = xs[len(xs)-n:]
	}
	return append([]int(nil), xs...)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// pruneValues drops the values last seen before lo and makes valuesMin
// exact again.
func (g *group) pruneValues(lo time.Time) {
	if len(g.values) == 0 || !g.valuesMin.Before(lo) {
		return
	}
	first := true
	for v, vt := range g.values {
		switch {
		case vt.Before(lo):
			delete(g.values, v)
		case first || vt.Before(g.valuesMin):
			g.valuesMin, first = vt, false
		}
	}
}
