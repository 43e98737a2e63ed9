package sigma

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

type matcherKind uint8

const (
	mString matcherKind = iota
	mRegex
	mCIDR
	mNumeric
	mExists
	mFieldref
)

type patKind uint8

const (
	pEq patKind = iota
	pPrefix
	pSuffix
	pContains
	pAny
	pGlob
)

// pattern is one compiled wildcard value.
type pattern struct {
	kind patKind
	s    string
	glob []globTok
}

type globTok struct {
	kind byte // 'l' literal, '*', '?'
	s    string
}

// matcher is one compiled field item ("Image|endswith: [...]").
type matcher struct {
	field   string // Sigma field ("" for keywords)
	slot    int32  // Sigma field slot; -1 for keywords
	kind    matcherKind
	all     bool
	cased   bool
	null    bool // a null value is listed: absent or null fields match
	pats    []pattern
	res     []*regexp.Regexp
	nets    []netip.Prefix
	numOp   string
	nums    []float64
	exists  bool
	refs    []int32 // fieldref slots
	refKind patKind
	cost    int
}

type valueMods struct {
	contains, startswith, endswith, all, re, ri, rm, rs, cidr, b64, b64off bool
	utf16                                                                  string // "le", "be"
	windash, exists, cased, fieldref, expand                               bool
	num                                                                    string
}

func parseMods(mods []string) (valueMods, error) {
	var vm valueMods
	for _, m := range mods {
		switch m {
		case "contains":
			vm.contains = true
		case "startswith":
			vm.startswith = true
		case "endswith":
			vm.endswith = true
		case "all":
			vm.all = true
		case "re":
			vm.re = true
		case "i":
			vm.ri = true
		case "m":
			vm.rm = true
		case "s":
			vm.rs = true
		case "cidr":
			vm.cidr = true
		case "base64":
			vm.b64 = true
		case "base64offset":
			vm.b64off = true
		case "utf16le", "wide":
			vm.utf16 = "le"
		case "utf16be":
			vm.utf16 = "be"
		case "utf16":
			vm.utf16 = "bom"
		case "windash":
			vm.windash = true
		case "exists":
			vm.exists = true
		case "cased":
			vm.cased = true
		case "fieldref":
			vm.fieldref = true
		case "expand":
			vm.expand = true
		case "lt", "lte", "gt", "gte":
			if vm.num != "" {
				return vm, fmt.Errorf("only one of lt/lte/gt/gte allowed")
			}
			vm.num = m
		default:
			return vm, fmt.Errorf("unknown modifier %q", m)
		}
	}
	n := 0
	for _, b := range []bool{vm.contains, vm.startswith, vm.endswith} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return vm, fmt.Errorf("contains, startswith and endswith exclude each other")
	case (vm.ri || vm.rm || vm.rs) && !vm.re:
		return vm, fmt.Errorf("modifiers i, m, s need re")
	case vm.re && (n > 0 || vm.b64 || vm.b64off || vm.windash || vm.cidr || vm.num != ""):
		return vm, fmt.Errorf("re cannot be combined with string or encoding modifiers")
	case vm.cidr && (n > 0 || vm.b64 || vm.b64off || vm.num != ""):
		return vm, fmt.Errorf("cidr cannot be combined with other value modifiers")
	case vm.utf16 != "" && !vm.b64 && !vm.b64off:
		return vm, fmt.Errorf("utf16/wide need base64 or base64offset")
	case vm.b64 && vm.b64off:
		return vm, fmt.Errorf("base64 and base64offset exclude each other")
	case vm.exists && (n > 0 || vm.re || vm.cidr || vm.num != "" || vm.fieldref):
		return vm, fmt.Errorf("exists cannot be combined with other modifiers")
	case vm.num != "" && (n > 0 || vm.fieldref):
		return vm, fmt.Errorf("%s cannot be combined with string modifiers", vm.num)
	}
	return vm, nil
}

// compileItem compiles one field item. vars resolves expand placeholders;
// with vars == nil (parse-time validation) placeholders are accepted as is.
func compileItem(it fieldItem, vars map[string]Strings, slotOf func(string) int32) (*matcher, error) {
	vm, err := parseMods(it.mods)
	if err != nil {
		return nil, err
	}
	m := &matcher{field: it.field, slot: -1, all: vm.all, cased: vm.cased}
	if it.field != "" {
		m.slot = slotOf(it.field)
	} else if vm.exists || vm.fieldref || vm.num != "" || vm.cidr {
		return nil, fmt.Errorf("keyword searches cannot use exists, fieldref, cidr or comparisons")
	}
	if len(it.values) == 0 {
		return nil, fmt.Errorf("no values")
	}
	switch {
	case vm.exists:
		if len(it.values) != 1 {
			return nil, fmt.Errorf("exists takes one boolean")
		}
		b, ok := it.values[0].(bool)
		if !ok {
			if s, isStr := it.values[0].(string); isStr && (strings.EqualFold(s, "true") || strings.EqualFold(s, "false")) {
				b, ok = strings.EqualFold(s, "true"), true
			}
		}
		if !ok {
			return nil, fmt.Errorf("exists takes true or false")
		}
		m.kind, m.exists = mExists, b
		return m, nil
	case vm.num != "":
		m.kind, m.numOp = mNumeric, vm.num
		for _, v := range it.values {
			f, ok := v.(float64)
			if !ok {
				s, _ := v.(string)
				var err error
				if f, err = strconv.ParseFloat(s, 64); err != nil {
					return nil, fmt.Errorf("%s needs a number, got %v", vm.num, v)
				}
			}
			m.nums = append(m.nums, f)
		}
		m.cost = 3
		return m, nil
	case vm.fieldref:
		m.kind = mFieldref
		m.refKind = pEq
		switch {
		case vm.contains:
			m.refKind = pContains
		case vm.startswith:
			m.refKind = pPrefix
		case vm.endswith:
			m.refKind = pSuffix
		}
		for _, v := range it.values {
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("fieldref needs field names")
			}
			m.refs = append(m.refs, slotOf(s))
		}
		m.cost = 4
		return m, nil
	case vm.cidr:
		m.kind = mCIDR
		for _, v := range it.values {
			s, _ := v.(string)
			pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				addr, err2 := netip.ParseAddr(strings.TrimSpace(s))
				if err2 != nil {
					return nil, fmt.Errorf("cidr: invalid network %q", s)
				}
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			}
			m.nets = append(m.nets, pfx.Masked())
		}
		m.cost = 3
		return m, nil
	case vm.re:
		m.kind = mRegex
		flags := ""
		if vm.ri {
			flags += "i"
		}
		if vm.rm {
			flags += "m"
		}
		if vm.rs {
			flags += "s"
		}
		for _, v := range it.values {
			s, ok := v.(string)
			if !ok {
				s = scalarString(v)
			}
			if flags != "" {
				s = "(?" + flags + ")" + s
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("re: %w", err)
			}
			m.res = append(m.res, re)
		}
		m.cost = 20
		return m, nil
	}
	// Keywords are substring searches of the event text (documented in
	// docs/sigma.md), as free-text search in SIEM backends behaves.
	if it.field == "" && !vm.startswith && !vm.endswith {
		vm.contains = true
	}
	// String values.
	for _, v := range it.values {
		if v == nil {
			if it.field == "" {
				return nil, fmt.Errorf("null is not a keyword")
			}
			m.null = true
			continue
		}
		raw := scalarString(v)
		variants := []string{raw}
		if vm.expand {
			variants, err = expandPlaceholders(raw, vars)
			if err != nil {
				return nil, err
			}
		}
		if vm.windash {
			var out []string
			for _, s := range variants {
				out = append(out, windashVariants(s)...)
			}
			variants = out
		}
		encoded := vm.b64 || vm.b64off
		if encoded {
			var out []string
			for _, s := range variants {
				b := encodeText(unescapeAll(s), vm.utf16)
				if vm.b64 {
					out = append(out, escapeWild(base64.StdEncoding.EncodeToString(b)))
				} else {
					for _, e := range base64Offsets(b) {
						out = append(out, escapeWild(e))
					}
				}
			}
			variants = out
		}
		for _, s := range variants {
			switch {
			case vm.contains:
				s = "*" + s + "*"
			case vm.startswith:
				s = s + "*"
			case vm.endswith:
				s = "*" + s
			}
			m.pats = append(m.pats, compilePattern(s, !vm.cased))
		}
	}
	if m.all && m.null {
		return nil, fmt.Errorf("all cannot be combined with null")
	}
	m.cost = patternCost(m)
	return m, nil
}

func patternCost(m *matcher) int {
	c := 0
	for _, p := range m.pats {
		switch p.kind {
		case pEq, pAny:
			c++
		case pPrefix, pSuffix:
			c += 2
		case pContains:
			c += 4
		default:
			c += 8
		}
	}
	if m.slot < 0 {
		c *= 4
	}
	return c
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// expandPlaceholders replaces %name% with every value of pipeline var name.
func expandPlaceholders(s string, vars map[string]Strings) ([]string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return []string{s}, nil
	}
	j := strings.IndexByte(s[i+1:], '%')
	if j < 0 {
		return []string{s}, nil
	}
	name := s[i+1 : i+1+j]
	if vars == nil {
		// Parse-time validation: the pipeline is not known yet.
		return []string{s}, nil
	}
	vals, ok := vars[name]
	if !ok || len(vals) == 0 {
		return nil, fmt.Errorf("placeholder %%%s%% is not defined in the pipeline's vars", name)
	}
	var out []string
	for _, v := range vals {
		rest, err := expandPlaceholders(s[i+2+j:], vars)
		if err != nil {
			return nil, err
		}
		for _, r := range rest {
			out = append(out, s[:i]+v+r)
		}
	}
	return out, nil
}

// windashVariants replaces each dash or slash that starts an option (at the
// start or after a non-word character) with -, /, en dash, em dash and
// horizontal bar, in every combination (capped).
func windashVariants(s string) []string {
	dashes := []string{"-", "/", "\u2013", "\u2014", "\u2015"}
	var pos []int
	for i := 0; i < len(s); i++ {
		if s[i] != '-' && s[i] != '/' {
			continue
		}
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		if i+1 < len(s) && !isWordByte(s[i+1]) {
			continue
		}
		pos = append(pos, i)
	}
	if len(pos) > 3 {
		pos = pos[:3] // 125 variants at most
	}
	out := []string{s}
	for k := len(pos) - 1; k >= 0; k-- {
		p := pos[k]
		var next []string
		for _, v := range out {
			for _, d := range dashes {
				next = append(next, v[:p]+d+v[p+1:])
			}
		}
		out = next
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func encodeText(s, utf string) []byte {
	switch utf {
	case "le", "be", "bom":
		u := utf16.Encode([]rune(s))
		var b []byte
		if utf == "bom" {
			b = append(b, 0xff, 0xfe)
		}
		for _, c := range u {
			if utf == "be" {
				b = append(b, byte(c>>8), byte(c))
			} else {
				b = append(b, byte(c), byte(c>>8))
			}
		}
		return b
	}
	return []byte(s)
}

// base64Offsets returns the three encodings of b at byte offsets 0, 1, 2
// within a larger base64 stream, trimmed to the characters that do not
// depend on the surrounding bytes.
func base64Offsets(b []byte) []string {
	start := []int{0, 2, 3}
	endTrim := []int{0, 3, 2}
	var out []string
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, i), b...))
		enc = strings.TrimRight(enc, "=")
		e := len(enc)
		if (len(b)+i)%3 != 0 {
			e -= endTrim[(len(b)+i)%3]
		}
		if start[i] > e {
			continue
		}
		out = append(out, enc[start[i]:e])
	}
	return out
}

// unescapeAll turns a Sigma value with escapes into its literal text
// (wildcards kept as characters), for encoding modifiers.
func unescapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func escapeWild(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)
	return r.Replace(s)
}

// compilePattern parses Sigma wildcards (* and ?, escaped with \) and
// classifies the pattern so that common shapes use plain string tests.
func compilePattern(s string, fold bool) pattern {
	var toks []globTok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t := lit.String()
			if fold {
				t = lowerString(t)
			}
			toks = append(toks, globTok{kind: 'l', s: t})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				lit.WriteByte(s[i+1])
				i++
			} else {
				lit.WriteByte(c)
			}
		case '*':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != '*' {
				toks = append(toks, globTok{kind: '*'})
			}
		case '?':
			flush()
			toks = append(toks, globTok{kind: '?'})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	switch {
	case len(toks) == 0:
		return pattern{kind: pEq, s: ""}
	case len(toks) == 1 && toks[0].kind == 'l':
		return pattern{kind: pEq, s: toks[0].s}
	case len(toks) == 1 && toks[0].kind == '*':
		return pattern{kind: pAny}
	case len(toks) == 2 && toks[0].kind == '*' && toks[1].kind == 'l':
		return pattern{kind: pSuffix, s: toks[1].s}
	case len(toks) == 2 && toks[0].kind == 'l' && toks[1].kind == '*':
		return pattern{kind: pPrefix, s: toks[0].s}
	case len(toks) == 3 && toks[0].kind == '*' && toks[1].kind == 'l' && toks[2].kind == '*':
		return pattern{kind: pContains, s: toks[1].s}
	}
	return pattern{kind: pGlob, glob: toks}
}

func (p *pattern) match(s string) bool {
	switch p.kind {
	case pEq:
		return s == p.s
	case pPrefix:
		return strings.HasPrefix(s, p.s)
	case pSuffix:
		return strings.HasSuffix(s, p.s)
	case pContains:
		return strings.Contains(s, p.s)
	case pAny:
		return true
	}
	return globMatch(p.glob, s)
}

// globMatch matches tokens against s with single-star backtracking, which
// is linear in practice and never recursive.
func globMatch(toks []globTok, s string) bool {
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch t.kind {
			case '*':
				starTi, starSi = ti, si
				ti++
				continue
			case '?':
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.s) {
					si += len(t.s)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		// Skip ahead to the next place the following literal can start.
		if starTi+1 < len(toks) && toks[starTi+1].kind == 'l' {
			k := strings.Index(s[starSi:], toks[starTi+1].s)
			if k < 0 {
				return false
			}
			starSi += k
		}
		ti, si = starTi+1, starSi
	}
}

// lowerString lowercases like the evaluator does (per rune, no special
// casing), so compiled literals and event values agree.
func lowerString(s string) string {
	return string(appendLower(nil, s))
}

func needsLower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

func appendLower(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, s...)
	b := dst[start:]
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			// Non-ASCII: redo the rest rune by rune.
			dst = dst[:start+i]
			rest := s[i:]
			for _, r := range rest {
				dst = utf8.AppendRune(dst, unicode.ToLower(r))
			}
			return dst
		}
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return dst
}

// isASCII reports whether s has only ASCII bytes, eight at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// equalFoldLower reports whether lowerString(s) == low for an ASCII s,
// folding bytes instead of building the lowercased copy.
func equalFoldLower(s, low string) bool {
	if len(s) != len(low) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != low[i] {
			return false
		}
	}
	return true
}

// indexFoldLower returns the first index at which lit (lowercased) occurs
// in the ASCII string s ignoring ASCII case, or -1. anchor is the position
// in lit of a byte that is not a letter, searched for with IndexByte; -1
// when lit is all letters.
func indexFoldLower(s, lit string, anchor int) int {
	n := len(lit)
	if n == 0 {
		return 0
	}
	if anchor < 0 {
		// Search the first letter in both cases.
		lo := lit[0]
		up := lo - ('a' - 'A')
		for i := 0; i+n <= len(s); {
			j := strings.IndexByte(s[i:len(s)-n+1], lo)
			k := strings.IndexByte(s[i:len(s)-n+1], up)
			if j < 0 || (k >= 0 && k < j) {
				j = k
			}
			if j < 0 {
				return -1
			}
			if equalFoldLower(s[i+j:i+j+n], lit) {
				return i + j
			}
			i += j + 1
		}
		return -1
	}
	c := lit[anchor]
	for i := anchor; i+n-anchor <= len(s); {
		j := strings.IndexByte(s[i:len(s)-(n-anchor)+1], c)
		if j < 0 {
			return -1
		}
		if st := i + j - anchor; equalFoldLower(s[st:st+n], lit) {
			return st
		}
		i += j + 1
	}
	return -1
}

// foldAnchor picks the byte of lit that indexFoldLower searches for: a
// non-letter, preferring bytes that are rare in log text; -1 if lit is
// all letters (or its first byte is not a lowercase letter either).
func foldAnchor(lit string) int {
	best, bestScore := -1, 0
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		score := 3
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			continue
		case strings.IndexByte(` \/.-_:="',`, c) >= 0:
			score = 1
		case c >= '0' && c <= '9':
			score = 2
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}
