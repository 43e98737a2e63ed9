package sigma

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// evalNode is a compiled condition.
type evalNode interface{ eval(sc *scratch) bool }

type andNode []evalNode
type orNode []evalNode
type notNode struct{ x evalNode }

func (n andNode) eval(sc *scratch) bool {
	for _, x := range n {
		if !x.eval(sc) {
			return false
		}
	}
	return true
}

func (n orNode) eval(sc *scratch) bool {
	for _, x := range n {
		if x.eval(sc) {
			return true
		}
	}
	return false
}

func (n notNode) eval(sc *scratch) bool { return !n.x.eval(sc) }

// crule is a compiled detection rule.
type crule struct {
	rule    *Rule
	root    evalNode
	seenGen uint32
	// suppress hides the rule's own matches: it only feeds correlations.
	suppress bool
	feeds    []feed
}

// feed says that matches of a rule are step of correlation c.
type feed struct {
	c    *correlator
	step int
}

// Engine evaluates compiled rules over events. It is safe for concurrent
// use; calls are serialized because correlation state is shared.
type Engine struct {
	mu sync.Mutex
	p  *Pipeline

	// eventNow is the newest event time seen: correlation windows live in
	// event time, so Tick prunes them up to it, never to the wall clock (a
	// replayed hour-old log must correlate like a live one).
	eventNow time.Time

	rules []*crule

	slotIdx    map[string]int32 // Sigma field → slot
	slotNames  []string
	fieldIdx   map[string]int32 // event field → id
	fieldNames []string

	// tables[m] maps slots to event field ids for pipeline mapping m;
	// tables[len(p.Logsources)] is the global (fallback) table.
	tables   [][]int32
	mapRules [][]*crule
	buckets  []*bucket // per mapping

	lsIndex []lsField
	lsConds []lsCond

	fallback      map[[3]string][]*crule
	fallbackB     map[[3]string]*bucket
	fallbackMasks []uint8
	srcFields     [3][]int32
	keywordFids   []int32

	corrs []*correlator

	sc  scratch
	seq int
	// ahead is the fields AheadBatch reads ahead (ahead.go).
	ahead    atomic.Pointer[aheadSet]
	stats    Stats
	activeM  []int
	activeGn []uint32
	out      []Match
}

type lsCond struct {
	mapping int
	fields  []int32
	values  [][]string // lowercased; "*" means present
}

type lsField struct {
	fid   int32
	byVal map[string][]int // lowercased value → conditions
	byRaw map[string][]int // spellings v with lowerString(v) a byVal key → the same conditions
	any   []int
}

func (e *Engine) slotOf(name string) int32 {
	if i, ok := e.slotIdx[name]; ok {
		return i
	}
	i := int32(len(e.slotNames))
	e.slotIdx[name] = i
	e.slotNames = append(e.slotNames, name)
	return i
}

func (e *Engine) fieldOf(name string) int32 {
	if i, ok := e.fieldIdx[name]; ok {
		return i
	}
	i := int32(len(e.fieldNames))
	e.fieldIdx[name] = i
	e.fieldNames = append(e.fieldNames, name)
	return i
}

// Compile compiles rules for pipeline p (nil: DefaultPipeline). Rules that
// fail to compile are reported as *LoadError and left out; the others are
// kept.
func Compile(rules []*Rule, p *Pipeline) (*Engine, []error) {
	if p == nil {
		p = DefaultPipeline()
	}
	e := &Engine{
		p:        p,
		slotIdx:  map[string]int32{},
		fieldIdx: map[string]int32{},
		fallback: map[[3]string][]*crule{},
		mapRules: make([][]*crule, len(p.Logsources)),
	}
	var errs []error
	byRef := map[string]*Rule{}
	for _, r := range rules {
		if r.ID != "" {
			byRef[r.ID] = r
		}
		if r.Name != "" {
			byRef[r.Name] = r
		}
	}
	compiled := map[*Rule]*crule{}
	for _, r := range rules {
		if r.Correlation != nil {
			continue
		}
		if r.det == nil {
			errs = append(errs, &LoadError{Path: r.Path, Line: r.Line, Reason: "rule has no detection"})
			continue
		}
		root, err := compileDetection(r.det, p.Vars, e.slotOf)
		if err != nil {
			errs = append(errs, &LoadError{Path: r.Path, Reason: err.Error()})
			continue
		}
		cr := &crule{rule: r, root: root}
		compiled[r] = cr
		e.rules = append(e.rules, cr)
		if a := r.det.agg; a != nil {
			c := newAggCorrelator(e, r, a)
			cr.feeds = append(cr.feeds, feed{c: c})
			cr.suppress = true
			e.corrs = append(e.corrs, c)
		}
	}
	// Correlation rules, in dependency order so chains resolve.
	corrOf := map[*Rule]*correlator{}
	pending := []*Rule{}
	for _, r := range rules {
		if r.Correlation != nil {
			pending = append(pending, r)
		}
	}
	generated := map[*crule]bool{}
	referenced := map[*crule]bool{}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		var next []*Rule
		for _, r := range pending {
			ready, err := refsReady(r, byRef, compiled, corrOf)
			if err != nil {
				errs = append(errs, &LoadError{Path: r.Path, Reason: err.Error()})
				progress = true
				continue
			}
			if !ready {
				next = append(next, r)
				continue
			}
			c, err := newCorrelator(e, r)
			if err != nil {
				errs = append(errs, &LoadError{Path: r.Path, Line: r.Line, Reason: "correlation: " + err.Error()})
				progress = true
				continue
			}
			for step, ref := range r.Correlation.Rules {
				target := byRef[ref]
				if cr := compiled[target]; cr != nil {
					cr.feeds = append(cr.feeds, feed{c: c, step: step})
					referenced[cr] = true
					if r.Correlation.Generate {
						generated[cr] = true
					}
				} else {
					up := corrOf[target]
					up.feeds = append(up.feeds, feed{c: c, step: step})
				}
			}
			corrOf[r] = c
			e.corrs = append(e.corrs, c)
			progress = true
		}
		pending = next
	}
	for _, r := range pending {
		errs = append(errs, &LoadError{Path: r.Path, Line: r.Line, Reason: "correlation: reference cycle"})
	}
	for cr := range referenced {
		if !generated[cr] {
			cr.suppress = true
		}
	}
	e.index()
	e.stats.Rules = len(e.rules)
	e.stats.Correlations = len(e.corrs)
	return e, errs
}

func refsReady(r *Rule, byRef map[string]*Rule, compiled map[*Rule]*crule, corrOf map[*Rule]*correlator) (bool, error) {
	for _, ref := range r.Correlation.Rules {
		t, ok := byRef[ref]
		if !ok {
			return false, fmt.Errorf("correlation: rules: unknown rule %q", ref)
		}
		if t == r {
			return false, fmt.Errorf("correlation: rules: refers to itself")
		}
		if t.Correlation == nil {
			if compiled[t] == nil {
				return false, fmt.Errorf("correlation: rules: %q failed to compile", ref)
			}
			continue
		}
		if corrOf[t] == nil {
			return false, nil
		}
	}
	return true, nil
}

// compileDetection turns a parsed detection into an evaluator.
func compileDetection(det *detection, vars map[string]Strings, slotOf func(string) int32) (evalNode, error) {
	cache := map[string]evalNode{}
	var searchNode func(name string) (evalNode, error)
	searchNode = func(name string) (evalNode, error) {
		if n, ok := cache[name]; ok {
			return n, nil
		}
		s := det.searches[name]
		var alts orNode
		for _, fs := range s.alts {
			var ms []*matcher
			for _, it := range fs {
				m, err := compileItem(it, vars, slotOf)
				if err != nil {
					f := it.field
					if len(it.mods) > 0 {
						f += "|" + strings.Join(it.mods, "|")
					}
					if f == "" {
						f = "keywords"
					}
					return nil, fmt.Errorf("detection: %s: line %d: %s: %w", name, it.line, f, err)
				}
				ms = append(ms, m)
			}
			// Cheap tests first: most events fail on the first one.
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].cost < ms[j].cost })
			and := make(andNode, len(ms))
			for i, m := range ms {
				and[i] = m
			}
			if len(and) == 1 {
				alts = append(alts, and[0])
			} else {
				alts = append(alts, and)
			}
		}
		var n evalNode = alts
		if len(alts) == 1 {
			n = alts[0]
		}
		cache[name] = n
		return n, nil
	}
	var walk func(c condNode) (evalNode, error)
	walk = func(c condNode) (evalNode, error) {
		switch x := c.(type) {
		case *condRef:
			return searchNode(x.name)
		case *condNot:
			n, err := walk(x.x)
			if err != nil {
				return nil, err
			}
			return notNode{n}, nil
		case *condBin:
			l, err := walk(x.l)
			if err != nil {
				return nil, err
			}
			r, err := walk(x.r)
			if err != nil {
				return nil, err
			}
			if x.and {
				return flatten(true, l, r), nil
			}
			return flatten(false, l, r), nil
		case *condOf:
			names := matchingSearches(det, x.pattern)
			if len(names) == 0 {
				return nil, fmt.Errorf("condition: no search identifier matches %q", x.pattern)
			}
			var ns []evalNode
			for _, name := range names {
				n, err := searchNode(name)
				if err != nil {
					return nil, err
				}
				ns = append(ns, n)
			}
			if len(ns) == 1 {
				return ns[0], nil
			}
			if x.all {
				return andNode(ns), nil
			}
			return orNode(ns), nil
		}
		return nil, fmt.Errorf("condition: unexpected node %T", c)
	}
	return walk(det.cond)
}

func flatten(and bool, l, r evalNode) evalNode {
	if and {
		var out andNode
		for _, x := range []evalNode{l, r} {
			if a, ok := x.(andNode); ok {
				out = append(out, a...)
			} else {
				out = append(out, x)
			}
		}
		return out
	}
	var out orNode
	for _, x := range []evalNode{l, r} {
		if o, ok := x.(orNode); ok {
			out = append(out, o...)
		} else {
			out = append(out, x)
		}
	}
	return out
}

// index builds the logsource index and the slot tables once all rules
// and correlations have allocated their slots.
func (e *Engine) index() {
	p := e.p
	for _, cr := range e.rules {
		ms := p.mappingsFor(cr.rule.Logsource)
		if len(ms) == 0 {
			ls := cr.rule.Logsource
			key := [3]string{lowerString(ls.Product), lowerString(ls.Category), lowerString(ls.Service)}
			e.fallback[key] = append(e.fallback[key], cr)
			var mask uint8
			for i, k := range key {
				if k != "" {
					mask |= 1 << i
				}
			}
			if !containsMask(e.fallbackMasks, mask) {
				e.fallbackMasks = append(e.fallbackMasks, mask)
			}
			continue
		}
		for _, m := range ms {
			e.mapRules[m] = append(e.mapRules[m], cr)
		}
	}
	// Slot tables: mapping field map, then the global one, then identity.
	for m := 0; m <= len(p.Logsources); m++ {
		var local map[string]string
		if m < len(p.Logsources) {
			local = p.Logsources[m].FieldMap
		}
		t := make([]int32, len(e.slotNames))
		for s, name := range e.slotNames {
			ev := name
			if v, ok := local[name]; ok {
				ev = v
			} else if v, ok := p.FieldMap[name]; ok {
				ev = v
			}
			t[s] = e.fieldOf(ev)
		}
		e.tables = append(e.tables, t)
	}
	// Logsource conditions, indexed by their most selective field.
	distinct := map[string]map[string]bool{}
	for _, m := range p.Logsources {
		for _, w := range m.When {
			for f, vs := range w {
				if distinct[f] == nil {
					distinct[f] = map[string]bool{}
				}
				for _, v := range vs {
					distinct[f][lowerString(v)] = true
				}
			}
		}
	}
	fieldPos := map[int32]int{}
	spellings := map[int32][]string{} // event field → pipeline values as written
	for mi, m := range p.Logsources {
		if len(e.mapRules[mi]) == 0 {
			continue // no rule needs this mapping
		}
		for _, w := range m.When {
			names := make([]string, 0, len(w))
			for f := range w {
				names = append(names, f)
			}
			sort.Slice(names, func(i, j int) bool {
				a, b := names[i], names[j]
				if len(distinct[a]) != len(distinct[b]) {
					return len(distinct[a]) > len(distinct[b])
				}
				return a < b
			})
			c := lsCond{mapping: mi}
			for _, f := range names {
				var vals []string
				for _, v := range w[f] {
					vals = append(vals, lowerString(v))
				}
				c.fields = append(c.fields, e.fieldOf(f))
				c.values = append(c.values, vals)
			}
			ci := len(e.lsConds)
			e.lsConds = append(e.lsConds, c)
			fid := c.fields[0]
			pos, ok := fieldPos[fid]
			if !ok {
				pos = len(e.lsIndex)
				fieldPos[fid] = pos
				e.lsIndex = append(e.lsIndex, lsField{fid: fid, byVal: map[string][]int{}})
			}
			lf := &e.lsIndex[pos]
			for _, v := range c.values[0] {
				if v == "*" {
					lf.any = append(lf.any, ci)
				} else {
					lf.byVal[v] = append(lf.byVal[v], ci)
				}
			}
			for _, v := range w[names[0]] {
				if v != "*" {
					spellings[fid] = append(spellings[fid], v)
				}
			}
		}
	}
	for i := range e.lsIndex {
		lf := &e.lsIndex[i]
		lf.byRaw = map[string][]int{}
		for _, v := range spellings[lf.fid] {
			for _, sp := range []string{v, lowerString(v)} {
				if cs, ok := lf.byVal[lowerString(sp)]; ok {
					lf.byRaw[sp] = cs
				}
			}
		}
	}
	if len(e.fallback) > 0 {
		for i, fs := range [][]string{p.SourceFields.Product, p.SourceFields.Category, p.SourceFields.Service} {
			for _, f := range fs {
				e.srcFields[i] = append(e.srcFields[i], e.fieldOf(f))
			}
		}
	}
	for _, f := range p.KeywordFields {
		e.keywordFids = append(e.keywordFids, e.fieldOf(f))
	}
	e.buckets = make([]*bucket, len(p.Logsources))
	for m, rs := range e.mapRules {
		if len(rs) > 0 {
			e.buckets[m] = newBucket(rs)
		}
	}
	e.fallbackB = map[[3]string]*bucket{}
	for k, rs := range e.fallback {
		e.fallbackB[k] = newBucket(rs)
	}
	e.activeGn = make([]uint32, len(p.Logsources))
	e.sc.vals = make([]fieldVal, len(e.fieldNames))
	e.sc.names = e.fieldNames
	e.sc.rangeScan = e.sc.scanRanged
	e.sc.dotted = make([]bool, len(e.fieldNames))
	for i, n := range e.fieldNames {
		e.sc.dotted[i] = strings.IndexByte(n, '.') >= 0
	}
	e.sc.keywordFids = e.keywordFids
	e.initAhead()
}

func containsMask(ms []uint8, m uint8) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}
