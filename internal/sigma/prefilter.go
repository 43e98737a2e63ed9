package sigma

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// The prefilter shares work between rules: for every rule it derives a
// set of literals of which at least one must occur in a given field for
// the rule to match, and per rule bucket one Aho-Corasick automaton per
// field finds all of them in a single pass over the lowercased value.
// Rules none of whose literals occurred are skipped without evaluation.

type lit struct {
	slot     int32
	s        string
	anchored bool // from an equality, prefix or suffix: the field is likely short
}

// necessary returns literals one of which must occur for n to be true.
func necessary(n evalNode) ([]lit, bool) {
	switch x := n.(type) {
	case *matcher:
		if x.kind == mRegex {
			return regexNecessary(x)
		}
		if x.kind != mString || x.cased || x.null || len(x.pats) == 0 {
			return nil, false
		}
		var out []lit
		for i := range x.pats {
			l := patternLiteral(&x.pats[i])
			if l == "" {
				if x.all {
					continue
				}
				return nil, false
			}
			out = append(out, lit{x.slot, l, x.pats[i].kind == pEq || x.pats[i].kind == pPrefix || x.pats[i].kind == pSuffix})
		}
		if x.all {
			if len(out) == 0 {
				return nil, false
			}
			sort.SliceStable(out, func(i, j int) bool { return len(out[i].s) > len(out[j].s) })
			return out[:1], true
		}
		return out, true
	case andNode:
		var best []lit
		bestScore := -1 << 30
		for _, c := range x {
			ls, ok := necessary(c)
			if !ok {
				continue
			}
			if s := litScore(ls); s > bestScore {
				best, bestScore = ls, s
			}
		}
		return best, best != nil
	case orNode:
		var out []lit
		for _, c := range x {
			ls, ok := necessary(c)
			if !ok {
				return nil, false
			}
			out = append(out, ls...)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// regexNecessary uses the literal prefixes of a regex matcher: a match of
// a case-sensitive regular expression starts with its literal prefix, so
// the lowercased prefix occurs in the lowercased value (lowercasing maps
// rune by rune). Case-folding prefixes are never reported by LiteralPrefix.
func regexNecessary(x *matcher) ([]lit, bool) {
	if x.null || len(x.res) == 0 {
		return nil, false
	}
	var out []lit
	for _, re := range x.res {
		pfx, _ := re.LiteralPrefix()
		if pfx == "" || !utf8.ValidString(pfx) {
			if x.all {
				continue
			}
			return nil, false
		}
		out = append(out, lit{x.slot, lowerString(pfx), false})
	}
	if len(out) == 0 {
		return nil, false
	}
	if x.all {
		sort.SliceStable(out, func(i, j int) bool { return len(out[i].s) > len(out[j].s) })
		return out[:1], true
	}
	return out, true
}

func litScore(ls []lit) int {
	minLen := 1 << 30
	for _, l := range ls {
		if len(l.s) < minLen {
			minLen = len(l.s)
		}
	}
	if minLen > 6 {
		minLen = 6
	}
	score := minLen*1000 - len(ls)
	anchored := true
	for _, l := range ls {
		anchored = anchored && l.anchored
	}
	switch {
	case anchored && minLen >= 5:
		// Prefer short fields (Image, OriginalFileName) over long ones
		// (CommandLine): scanning is lazy, so a field nobody needs is
		// never scanned.
		score += 3000
	case anchored:
		// A whole value of three or four characters is a category (an
		// HTTP method, "GET"), found in most events of its kind: choosing
		// it would evaluate the rule on all of them. Among literals as
		// short, those found inside a value ("={{") are rarer.
		score -= 500
	}
	return score
}

func patternLiteral(p *pattern) string {
	switch p.kind {
	case pEq, pPrefix, pSuffix, pContains:
		return p.s
	case pGlob:
		best := ""
		for _, t := range p.glob {
			if t.kind == 'l' && len(t.s) > len(best) {
				best = t.s
			}
		}
		return best
	}
	return ""
}

// bucket is a list of rules evaluated together (one pipeline mapping or
// one fallback logsource), with its prefilter.
type bucket struct {
	rules   []*crule
	needs   [][]int32 // per rule: literal ids, nil = always evaluate
	fields  []pfField
	litFld  []int32 // literal id → field index
	nlits   int
	found   []uint32 // per literal: the event generation it was last found in
	scanGen []uint32
}

type pfField struct {
	slot   int32 // -1: keyword text
	ac     *acAuto
	lo, hi int32 // literal id range
	// Few literals are searched one by one with IndexByte on a rare byte,
	// which beats a byte-at-a-time automaton; nil: use ac.
	lits    []string
	anchors []int
	// perValue: no literal holds a NUL byte, so keyword literals can be
	// searched value by value instead of in the NUL-joined keyword text.
	perValue bool
	// numSafe: no literal can occur in a formatted number, so numeric
	// values need no formatting or scan.
	numSafe bool
}

// maxDirectLits is the largest literal set searched literal by literal.
const maxDirectLits = 3

func newBucket(rules []*crule) *bucket {
	b := &bucket{rules: rules, needs: make([][]int32, len(rules))}
	type key struct {
		slot int32
		s    string
	}
	perRule := make([][]lit, len(rules))
	bySlot := map[int32][]string{}
	seen := map[key]bool{}
	var slots []int32
	for i, cr := range rules {
		ls, ok := necessary(cr.root)
		if !ok {
			continue
		}
		perRule[i] = ls
		for _, l := range ls {
			k := key{l.slot, l.s}
			if seen[k] {
				continue
			}
			seen[k] = true
			if _, ok := bySlot[l.slot]; !ok {
				slots = append(slots, l.slot)
			}
			bySlot[l.slot] = append(bySlot[l.slot], l.s)
		}
	}
	ids := map[key]int32{}
	for fi, s := range slots {
		f := pfField{slot: s, lo: int32(len(ids))}
		var fids []int32
		for _, str := range bySlot[s] {
			id := int32(len(ids))
			ids[key{s, str}] = id
			fids = append(fids, id)
			b.litFld = append(b.litFld, int32(fi))
		}
		f.hi = int32(len(ids))
		f.ac = buildAC(bySlot[s], fids)
		if len(fids) <= maxDirectLits {
			f.lits = bySlot[s]
			for _, l := range f.lits {
				f.anchors = append(f.anchors, foldAnchor(l))
			}
		}
		f.perValue, f.numSafe = true, true
		for _, l := range bySlot[s] {
			if strings.IndexByte(l, 0) >= 0 {
				f.perValue = false
			}
			if strings.Trim(l, "0123456789.-+naif") == "" {
				f.numSafe = false
			}
		}
		b.fields = append(b.fields, f)
	}
	for i, ls := range perRule {
		for _, l := range ls {
			b.needs[i] = append(b.needs[i], ids[key{l.slot, l.s}])
		}
	}
	b.nlits = len(ids)
	b.found = make([]uint32, b.nlits)
	b.scanGen = make([]uint32, len(b.fields))
	return b
}

// scanField fills the found bits of field fi for the current event.
func (b *bucket) scanField(sc *scratch, fi int32) {
	gen := sc.gen
	b.scanGen[fi] = gen
	f := &b.fields[fi]
	if f.slot < 0 {
		if f.perValue {
			b.scanKeywordValues(sc, f)
			return
		}
		_, low := sc.keywordText()
		f.scan(low, false, b.found, gen)
		return
	}
	fv := sc.field(f.slot)
	if !fv.present || fv.null {
		return
	}
	if fv.list != nil || fv.slist != nil {
		// Lists are not scanned: every literal counts as found.
		for id := f.lo; id < f.hi; id++ {
			b.found[id] = gen
		}
		return
	}
	if fv.ascii {
		f.scan(fv.str, true, b.found, gen)
		return
	}
	f.scan(sc.lowOf(fv), false, b.found, gen)
}

// scan sets the found bits of the literals occurring in s: s is the
// original ASCII text when fold is set (compared ignoring ASCII case,
// which is what lowercasing it would do), else already lowercased.
func (f *pfField) scan(s string, fold bool, found []uint32, gen uint32) {
	if f.lits == nil {
		f.ac.scan(s, found, gen) // the automaton's byte classes fold ASCII case
		return
	}
	for k, l := range f.lits {
		var hit bool
		if fold {
			hit = indexFoldLower(s, l, f.anchors[k]) >= 0
		} else {
			hit = strings.Contains(s, l)
		}
		if hit {
			id := f.lo + int32(k)
			found[id] = gen
		}
	}
}

// scanValue scans one keyword value.
func (f *pfField) scanValue(sc *scratch, s string, found []uint32, gen uint32) {
	if isASCII(s) {
		f.scan(s, true, found, gen)
		return
	}
	f.scan(sc.lower(s), false, found, gen)
}

// scanKeywordValues finds keyword literals value by value: a literal
// without NUL bytes occurs in the NUL-joined keyword text exactly when it
// occurs in one of the values, so the joined, lowercased text is only
// built if a rule then needs it. The values are those keywordText joins.
func (b *bucket) scanKeywordValues(sc *scratch, f *pfField) {
	gen := sc.gen
	n := 0
	for _, id := range sc.keywordFids {
		fv := sc.fid(id)
		if !fv.present || fv.null {
			continue
		}
		if fv.list == nil && fv.slist == nil {
			n++
			if fv.ascii {
				f.scan(fv.str, true, b.found, gen)
			} else {
				f.scan(sc.lowOf(fv), false, b.found, gen)
			}
			continue
		}
		for _, s := range fv.slist {
			n++
			f.scanValue(sc, s, b.found, gen)
		}
		for _, v := range fv.list {
			if s, _, _, ok := sc.text(v); ok {
				n++
				f.scanValue(sc, s, b.found, gen)
			}
		}
	}
	if n > 0 {
		return
	}
	r, ok := sc.ev.(Ranger)
	if !ok {
		return
	}
	sc.kwScan, sc.kwFound = f, b.found
	r.Range(sc.rangeScan)
	sc.kwScan, sc.kwFound = nil, nil
}

// scanRanged scans one value of an event's Range for scanKeywordValues;
// it is bound once as scratch.rangeScan, so ranging does not allocate a
// closure per event.
func (sc *scratch) scanRanged(_ string, v any) bool {
	f := sc.kwScan
	if f.numSafe && isNumber(v) {
		return true
	}
	mark := len(sc.arena)
	if s, _, _, ok := sc.text(v); ok {
		f.scanValue(sc, s, sc.kwFound, sc.gen)
	}
	sc.arena = sc.arena[:mark] // nothing formatted here outlives the scan
	return true
}

// isNumber reports whether text(v) formats a number (digits, sign, point,
// NaN or Inf).
func isNumber(v any) bool {
	switch v.(type) {
	case float64, float32, int, int64, int32, uint64:
		return true
	}
	return false
}

// mayMatch reports whether rule i can match: one of its necessary
// literals occurs. Fields are scanned on first need.
func (b *bucket) mayMatch(sc *scratch, i int) bool {
	ids := b.needs[i]
	if ids == nil {
		return true
	}
	for _, id := range ids {
		fi := b.litFld[id]
		if b.scanGen[fi] != sc.gen {
			b.scanField(sc, fi)
		}
		if b.found[id] == sc.gen {
			return true
		}
	}
	return false
}

// acAuto is an Aho-Corasick automaton compiled to a DFA over byte classes.
type acAuto struct {
	class  [256]uint8
	nclass int
	delta  []int32
	out    [][]int32
}

func buildAC(pats []string, ids []int32) *acAuto {
	a := &acAuto{}
	// Bytes that occur in no pattern share class 0.
	n := 1
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			if a.class[p[i]] == 0 {
				a.class[p[i]] = uint8(n)
				n++
				if n == 256 {
					n = 255
				}
			}
		}
	}
	a.nclass = n
	// Literals are lowercase: upper-case ASCII shares its lower-case
	// class, so ASCII text is scanned without being lowercased first.
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c+'a'-'A']
	}
	type node struct {
		next map[uint8]int32
		fail int32
		out  []int32
	}
	nodes := []node{{next: map[uint8]int32{}}}
	for k, p := range pats {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.class[p[i]]
			nx, ok := nodes[s].next[c]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, node{next: map[uint8]int32{}})
				nodes[s].next[c] = nx
			}
			s = nx
		}
		nodes[s].out = append(nodes[s].out, ids[k])
	}
	a.delta = make([]int32, len(nodes)*n)
	a.out = make([][]int32, len(nodes))
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := 0; c < n; c++ {
			nx, ok := nodes[s].next[uint8(c)]
			if !ok {
				if s == 0 {
					a.delta[c] = 0
				} else {
					a.delta[int(s)*n+c] = a.delta[int(nodes[s].fail)*n+c]
				}
				continue
			}
			if s != 0 {
				nodes[nx].fail = a.delta[int(nodes[s].fail)*n+c]
			}
			a.delta[int(s)*n+c] = nx
			queue = append(queue, nx)
		}
		out := append([]int32(nil), nodes[s].out...)
		if s != 0 {
			out = append(out, a.out[nodes[s].fail]...)
		}
		a.out[s] = out
	}
	a.finalize()
	return a
}

// finalize turns delta into premultiplied state offsets with the top bit
// marking states that have outputs, so the scan loop does one table load
// per byte.
func (a *acAuto) finalize() {
	n := int32(a.nclass)
	for i, nx := range a.delta {
		v := nx * n
		if len(a.out[nx]) > 0 {
			v |= -1 << 31
		}
		a.delta[i] = v
	}
}

func (a *acAuto) scan(s string, found []uint32, gen uint32) {
	st := int32(0)
	delta := a.delta
	for i := 0; i < len(s); i++ {
		x := delta[st+int32(a.class[s[i]])]
		st = x & 0x7fffffff
		if x < 0 {
			for _, id := range a.out[st/int32(a.nclass)] {
				found[id] = gen
			}
		}
	}
}
