package sigma

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// fieldVal caches one event field for the event being evaluated.
type fieldVal struct {
	gen     uint32
	lowGen  uint32 // low is valid when lowGen == gen: lowercased on first need
	present bool
	null    bool
	isNum   bool
	ascii   bool // str is ASCII: case-insensitive tests can fold bytes instead of lowercasing
	num     float64
	str     string // original text (numbers formatted)
	low     string // lowercased text; read it through scratch.lowOf
	list    []any
	slist   []string
}

// scratch is the per-event evaluation state, reused across events so the
// non-matching path does not allocate.
type scratch struct {
	ev Event
	// mev is ev when it is a MapEvent, read directly rather than through
	// the interface; nested says whether it holds nested maps (0 unknown,
	// 1 no, 2 yes), computed on the first miss of a dotted name.
	mev         MapEvent
	nested      uint8
	dotted      []bool // per field id: the name contains a dot
	gen         uint32
	vals        []fieldVal
	names       []string
	fmap        []int32
	arena       []byte
	keywordFids []int32
	// rangeScan is scanRanged bound once; kwScan and kwFound are its
	// arguments while an event's values are ranged.
	rangeScan func(string, any) bool
	kwScan    *pfField
	kwFound   []uint32
	kwGen     uint32
	kwStr     string
	kwLow     string
	// reads counts, per field id, the events the field was read for
	// (chooseAhead); ahead is the slot of each field id in aheadVals, the
	// values read ahead of the event (MatchAhead), or nil.
	reads     []uint32
	ahead     []int8
	aheadVals []any
	aheadHas  uint64
}

func (sc *scratch) reset(ev Event) {
	sc.ev = ev
	sc.mev, _ = ev.(MapEvent)
	sc.nested = 0
	sc.gen++
	if sc.gen == 0 {
		for i := range sc.vals {
			sc.vals[i].gen = 0
		}
		sc.gen = 1
	}
	sc.arena = sc.arena[:0]
}

// arenaString returns the bytes appended since start as a string that
// lives until the next event.
func (sc *scratch) arenaString(start int) string {
	if len(sc.arena) == start {
		return ""
	}
	return unsafe.String(&sc.arena[start], len(sc.arena)-start)
}

func (sc *scratch) lower(s string) string {
	if !needsLower(s) {
		return s
	}
	start := len(sc.arena)
	sc.arena = appendLower(sc.arena, s)
	return sc.arenaString(start)
}

// text returns the string form of a scalar event value.
func (sc *scratch) text(v any) (s string, num float64, isNum, ok bool) {
	start := len(sc.arena)
	switch x := v.(type) {
	case string:
		return x, 0, false, true
	case float64:
		sc.arena = strconv.AppendFloat(sc.arena, x, 'f', -1, 64)
		return sc.arenaString(start), x, true, true
	case int:
		sc.arena = strconv.AppendInt(sc.arena, int64(x), 10)
		return sc.arenaString(start), float64(x), true, true
	case int64:
		sc.arena = strconv.AppendInt(sc.arena, x, 10)
		return sc.arenaString(start), float64(x), true, true
	case int32:
		sc.arena = strconv.AppendInt(sc.arena, int64(x), 10)
		return sc.arenaString(start), float64(x), true, true
	case uint64:
		sc.arena = strconv.AppendUint(sc.arena, x, 10)
		return sc.arenaString(start), float64(x), true, true
	case float32:
		sc.arena = strconv.AppendFloat(sc.arena, float64(x), 'f', -1, 32)
		return sc.arenaString(start), float64(x), true, true
	case bool:
		if x {
			return "true", 0, false, true
		}
		return "false", 0, false, true
	case json.Number:
		f, err := x.Float64()
		return string(x), f, err == nil, true
	case []byte:
		return string(x), 0, false, true
	case nil:
		return "", 0, false, false
	}
	return fmt.Sprint(v), 0, false, true
}

// fid returns the cached value of event field id.
func (sc *scratch) fid(id int32) *fieldVal {
	fv := &sc.vals[id]
	if fv.gen == sc.gen {
		return fv
	}
	fv.gen = sc.gen
	fv.list, fv.slist, fv.isNum = nil, nil, false
	sc.reads[id]++
	raw, ok := sc.get(id)
	fv.present = ok
	fv.null = raw == nil
	if !ok || raw == nil {
		fv.str, fv.low, fv.lowGen, fv.ascii = "", "", sc.gen, true
		return fv
	}
	switch x := raw.(type) {
	case []any:
		fv.list = x
		return fv
	case []string:
		fv.slist = x
		return fv
	}
	fv.str, fv.num, fv.isNum, _ = sc.text(raw)
	fv.ascii = isASCII(fv.str)
	return fv
}

// get fetches event field id; MapEvents are read without the interface
// call, and their nested maps are searched only when they have any (the
// same result as MapEvent.Get, which would try every dotted prefix).
func (sc *scratch) get(id int32) (any, bool) {
	if sc.ahead != nil {
		if k := sc.ahead[id]; k >= 0 {
			return sc.aheadVals[k], sc.aheadHas&(1<<k) != 0
		}
	}
	if sc.mev == nil {
		return sc.ev.Get(sc.names[id])
	}
	if v, ok := sc.mev[sc.names[id]]; ok {
		return v, true
	}
	if !sc.dotted[id] {
		return nil, false
	}
	if sc.nested == 0 {
		sc.nested = 1
		for _, v := range sc.mev {
			if _, ok := v.(map[string]any); ok {
				sc.nested = 2
				break
			}
		}
	}
	if sc.nested == 1 {
		return nil, false
	}
	return nestedGet(sc.mev, sc.names[id])
}

// lowOf returns fv's lowercased text, computing it on first need.
func (sc *scratch) lowOf(fv *fieldVal) string {
	if fv.lowGen != sc.gen {
		fv.lowGen = sc.gen
		fv.low = sc.lower(fv.str)
	}
	return fv.low
}

// field returns the value of Sigma field slot under the current mapping.
func (sc *scratch) field(slot int32) *fieldVal { return sc.fid(sc.fmap[slot]) }

// forEach calls fn for every scalar of fv (one, or each list element).
func (sc *scratch) forEach(fv *fieldVal, fn func(str, low string, num float64, isNum bool) bool) bool {
	if fv.list == nil && fv.slist == nil {
		return fn(fv.str, sc.lowOf(fv), fv.num, fv.isNum)
	}
	for _, s := range fv.slist {
		if fn(s, sc.lower(s), 0, false) {
			return true
		}
	}
	for _, v := range fv.list {
		s, n, isNum, ok := sc.text(v)
		if ok && fn(s, sc.lower(s), n, isNum) {
			return true
		}
	}
	return false
}

func (m *matcher) matchString(str, low string) bool {
	s := low
	if m.cased {
		s = str
	}
	if m.all {
		for i := range m.pats {
			if !m.pats[i].match(s) {
				return false
			}
		}
		return len(m.pats) > 0
	}
	for i := range m.pats {
		if m.pats[i].match(s) {
			return true
		}
	}
	return false
}

func (m *matcher) eval(sc *scratch) bool {
	if m.slot < 0 {
		return m.evalKeyword(sc)
	}
	fv := sc.field(m.slot)
	if m.kind == mExists {
		return (fv.present && !fv.null) == m.exists
	}
	if !fv.present || fv.null {
		return m.null
	}
	if fv.list == nil && fv.slist == nil {
		low := ""
		if m.kind == mFieldref || m.kind == mString && !m.cased {
			low = sc.lowOf(fv)
		}
		return m.scalar(sc, fv.str, low, fv.num, fv.isNum)
	}
	return sc.forEach(fv, func(str, low string, num float64, isNum bool) bool {
		return m.scalar(sc, str, low, num, isNum)
	})
}

func (m *matcher) scalar(sc *scratch, str, low string, num float64, isNum bool) bool {
	switch m.kind {
	case mString:
		return m.matchString(str, low)
	case mRegex:
		if m.all {
			for _, re := range m.res {
				if !re.MatchString(str) {
					return false
				}
			}
			return true
		}
		for _, re := range m.res {
			if re.MatchString(str) {
				return true
			}
		}
		return false
	case mCIDR:
		addr, err := netip.ParseAddr(strings.TrimSpace(str))
		if err != nil {
			return false
		}
		addr = addr.Unmap()
		for _, n := range m.nets {
			if n.Contains(addr) {
				return true
			}
		}
		return false
	case mNumeric:
		if !isNum {
			f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
			if err != nil {
				return false
			}
			num = f
		}
		for _, x := range m.nums {
			var ok bool
			switch m.numOp {
			case "lt":
				ok = num < x
			case "lte":
				ok = num <= x
			case "gt":
				ok = num > x
			case "gte":
				ok = num >= x
			}
			if ok {
				return true
			}
		}
		return false
	case mFieldref:
		for _, r := range m.refs {
			o := sc.field(r)
			if !o.present || o.null || o.list != nil || o.slist != nil {
				continue
			}
			a, b := low, sc.lowOf(o)
			if m.cased {
				a, b = str, o.str
			}
			p := pattern{kind: m.refKind, s: b}
			if p.match(a) {
				return true
			}
		}
		return false
	}
	return false
}

// evalKeyword matches keyword patterns against the keyword text: the
// pipeline's keyword fields or, when the event has none, every value.
func (m *matcher) evalKeyword(sc *scratch) bool {
	str, low := sc.keywordText()
	return m.matchString(str, low)
}

// keywordText joins the keyword fields' values (or, when none is present,
// all the event's values) with NUL bytes, once per event.
func (sc *scratch) keywordText() (string, string) {
	if sc.kwGen == sc.gen {
		return sc.kwStr, sc.kwLow
	}
	sc.kwGen = sc.gen
	start := len(sc.arena)
	n := 0
	for _, id := range sc.keywordFids {
		fv := sc.fid(id)
		if !fv.present || fv.null {
			continue
		}
		sc.forEach(fv, func(str, _ string, _ float64, _ bool) bool {
			if n > 0 {
				sc.arena = append(sc.arena, 0)
			}
			sc.arena = append(sc.arena, str...)
			n++
			return false
		})
	}
	if n == 0 {
		if r, ok := sc.ev.(Ranger); ok {
			sc.rangeAll(r)
		}
	}
	sc.kwStr = sc.arenaString(start)
	sc.kwLow = sc.lower(sc.kwStr)
	return sc.kwStr, sc.kwLow
}

func (sc *scratch) rangeAll(r Ranger) {
	n := 0
	r.Range(func(_ string, v any) bool {
		mark := len(sc.arena)
		s, _, _, ok := sc.text(v)
		if !ok {
			return true
		}
		if len(sc.arena) > mark {
			// text formatted a number into the arena: move it after the
			// separator.
			tmp := sc.arena[mark:]
			var buf [32]byte
			k := copy(buf[:], tmp)
			sc.arena = sc.arena[:mark]
			if n > 0 {
				sc.arena = append(sc.arena, 0)
			}
			sc.arena = append(sc.arena, buf[:k]...)
		} else {
			if n > 0 {
				sc.arena = append(sc.arena, 0)
			}
			sc.arena = append(sc.arena, s...)
		}
		n++
		return true
	})
}

// Match evaluates ev, whose event time is t, against every rule whose
// logsource the event belongs to, feeds correlation state and returns the
// single-event and correlation matches (nil when nothing matched).
func (e *Engine) Match(ev Event, t time.Time) []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.match(ev, t)
}

// match is Match; e.mu is held. It ends reading ahead (MatchAhead).
func (e *Engine) match(ev Event, t time.Time) []Match {
	defer func() { e.sc.ahead = nil }()
	idx := e.seq
	e.seq++
	e.stats.Events++
	if e.stats.Events%aheadWindow == 0 {
		e.chooseAhead()
	}
	sc := &e.sc
	sc.reset(ev)
	if sc.gen == 1 {
		// First event, or the generation counter wrapped: stamps left
		// from 2^32 events ago must not pass for this event's.
		e.clearGens()
	}
	e.out = e.out[:0]
	e.activeM = e.activeM[:0]
	gen := sc.gen

	// Which pipeline mappings does the event belong to?
	for i := range e.lsIndex {
		lf := &e.lsIndex[i]
		fv := sc.fid(lf.fid)
		if !fv.present || fv.null {
			continue
		}
		for _, ci := range lf.any {
			e.checkCond(ci, gen)
		}
		// The value as sent usually has a spelling the pipeline lists
		// (byRaw), which saves lowercasing it.
		cs, ok := lf.byRaw[fv.str]
		if !ok {
			cs = lf.byVal[sc.lowOf(fv)]
		}
		for _, ci := range cs {
			e.checkCond(ci, gen)
		}
	}
	for _, m := range e.activeM {
		sc.fmap = e.tables[m]
		e.evalRules(e.buckets[m], idx, t)
	}
	if len(e.fallback) > 0 {
		e.evalFallback(idx, t)
	}
	if t.After(e.eventNow) {
		e.eventNow = t
	}
	e.prune(t, 2)
	if len(e.out) == 0 {
		return nil
	}
	out := make([]Match, len(e.out))
	copy(out, e.out)
	e.stats.Matches += uint64(len(out))
	return out
}

// clearGens zeroes every per-event generation stamp outside the scratch.
func (e *Engine) clearGens() {
	clear(e.activeGn)
	for _, cr := range e.rules {
		cr.seenGen = 0
	}
	for _, b := range e.buckets {
		if b != nil {
			clear(b.found)
			clear(b.scanGen)
		}
	}
	for _, b := range e.fallbackB {
		clear(b.found)
		clear(b.scanGen)
	}
}

func (e *Engine) checkCond(ci int, gen uint32) {
	c := &e.lsConds[ci]
	if e.activeGn[c.mapping] == gen {
		return
	}
	for k := 1; k < len(c.fields); k++ {
		fv := e.sc.fid(c.fields[k])
		if !fv.present || fv.null {
			return
		}
		ok := false
		for _, v := range c.values[k] {
			if v == "*" || (fv.ascii && equalFoldLower(fv.str, v)) || (!fv.ascii && v == e.sc.lowOf(fv)) {
				ok = true
				break
			}
		}
		if !ok {
			return
		}
	}
	e.activeGn[c.mapping] = gen
	e.activeM = append(e.activeM, c.mapping)
}

func (e *Engine) evalFallback(idx int, t time.Time) {
	sc := &e.sc
	var key [3]string
	for i, fids := range e.srcFields {
		for _, id := range fids {
			if fv := sc.fid(id); fv.present && !fv.null && fv.str != "" {
				key[i] = sc.lowOf(fv)
				break
			}
		}
	}
	sc.fmap = e.tables[len(e.tables)-1]
	for _, mask := range e.fallbackMasks {
		var k [3]string
		ok := true
		for i := 0; i < 3; i++ {
			if mask&(1<<i) != 0 {
				if key[i] == "" {
					ok = false
					break
				}
				k[i] = key[i]
			}
		}
		if !ok {
			continue
		}
		if b, found := e.fallbackB[k]; found {
			e.evalRules(b, idx, t)
		}
	}
}

func (e *Engine) evalRules(b *bucket, idx int, t time.Time) {
	sc := &e.sc
	gen := sc.gen
	for i, cr := range b.rules {
		if cr.seenGen == gen || !b.mayMatch(sc, i) {
			continue
		}
		e.stats.RuleEvaluations++
		if !cr.root.eval(sc) {
			continue
		}
		cr.seenGen = gen
		if !cr.suppress {
			e.out = append(e.out, Match{Rule: cr.rule, EventIndex: idx, Time: t})
		}
		for _, f := range cr.feeds {
			e.feedCorrelation(f, idx, t)
		}
	}
}
