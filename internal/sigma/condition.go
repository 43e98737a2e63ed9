package sigma

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// condNode is a parsed condition expression.
type condNode interface{ isCond() }

type condRef struct{ name string }
type condBin struct {
	and  bool
	l, r condNode
}
type condNot struct{ x condNode }
type condOf struct {
	all     bool
	pattern string // "them" is stored as "*"
}

func (*condRef) isCond() {}
func (*condBin) isCond() {}
func (*condNot) isCond() {}
func (*condOf) isCond()  {}

// aggregation is a legacy "| count(field) by group > N" clause.
type aggregation struct {
	field   string // count(field): distinct values of field; empty: events
	groupBy string
	op      string // gt, gte, lt, lte, eq
	n       float64
	window  time.Duration // set from the rule's timeframe
}

type condToken struct {
	text string
	pos  int
}

func tokenizeCondition(s string) []condToken {
	var toks []condToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '|' || c == ',':
			toks = append(toks, condToken{string(c), i})
			i++
		case c == '>' || c == '<' || c == '=' || c == '!':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			toks = append(toks, condToken{s[i:j], i})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()|,<>=!", rune(s[j])) {
				j++
			}
			toks = append(toks, condToken{s[i:j], i})
			i = j
		}
	}
	return toks
}

type condParser struct {
	toks []condToken
	i    int
	src  string
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].text
	}
	return ""
}

func (p *condParser) pos() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].pos + 1
	}
	return len(p.src) + 1
}

func (p *condParser) errf(format string, args ...any) error {
	return fmt.Errorf("at column %d: %s", p.pos(), fmt.Sprintf(format, args...))
}

// parseCondition parses a detection condition and an optional legacy
// aggregation after "|".
func parseCondition(s string) (condNode, *aggregation, error) {
	p := &condParser{toks: tokenizeCondition(s), src: s}
	if len(p.toks) == 0 {
		return nil, nil, fmt.Errorf("empty condition")
	}
	n, err := p.parseOr(0)
	if err != nil {
		return nil, nil, err
	}
	var agg *aggregation
	if p.peek() == "|" {
		p.i++
		agg, err = p.parseAgg()
		if err != nil {
			return nil, nil, err
		}
	}
	if p.i < len(p.toks) {
		return nil, nil, p.errf("unexpected %q", p.peek())
	}
	return n, agg, nil
}

// maxCondDepth bounds nesting so hostile input cannot exhaust the stack.
const maxCondDepth = 200

func (p *condParser) parseOr(depth int) (condNode, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.i++
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &condBin{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *condParser) parseAnd(depth int) (condNode, error) {
	l, err := p.parseNot(depth)
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.i++
		r, err := p.parseNot(depth)
		if err != nil {
			return nil, err
		}
		l = &condBin{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *condParser) parseNot(depth int) (condNode, error) {
	if depth > maxCondDepth {
		return nil, p.errf("condition nested too deeply")
	}
	if strings.EqualFold(p.peek(), "not") {
		p.i++
		x, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		return &condNot{x: x}, nil
	}
	return p.parsePrimary(depth)
}

func (p *condParser) parsePrimary(depth int) (condNode, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, p.errf("expected a search identifier, got end of condition")
	case t == "(":
		p.i++
		n, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.errf("expected )")
		}
		p.i++
		return n, nil
	case t == ")" || t == "|" || t == ",":
		return nil, p.errf("unexpected %q", t)
	case strings.EqualFold(t, "and") || strings.EqualFold(t, "or"):
		return nil, p.errf("unexpected %q", t)
	}
	if (t == "1" || strings.EqualFold(t, "all") || strings.EqualFold(t, "any")) && p.i+1 < len(p.toks) && strings.EqualFold(p.toks[p.i+1].text, "of") {
		p.i += 2
		pat := p.peek()
		if pat == "" || pat == "(" || pat == ")" || pat == "|" {
			return nil, p.errf("expected a pattern or 'them' after 'of'")
		}
		p.i++
		if strings.EqualFold(pat, "them") {
			pat = "*"
		}
		return &condOf{all: strings.EqualFold(t, "all"), pattern: pat}, nil
	}
	if strings.EqualFold(t, "of") || strings.EqualFold(t, "them") {
		return nil, p.errf("unexpected %q", t)
	}
	p.i++
	return &condRef{name: t}, nil
}

func (p *condParser) parseAgg() (*aggregation, error) {
	fn := strings.ToLower(p.peek())
	if fn != "count" {
		if fn == "near" {
			return nil, p.errf("'near' aggregations are not supported; use a temporal correlation rule")
		}
		return nil, p.errf("unsupported aggregation %q (only count() is supported)", p.peek())
	}
	p.i++
	if p.peek() != "(" {
		return nil, p.errf("expected ( after count")
	}
	p.i++
	agg := &aggregation{}
	if t := p.peek(); t != ")" {
		agg.field = t
		p.i++
	}
	if p.peek() != ")" {
		return nil, p.errf("expected )")
	}
	p.i++
	if strings.EqualFold(p.peek(), "by") {
		p.i++
		agg.groupBy = p.peek()
		if agg.groupBy == "" {
			return nil, p.errf("expected a field after 'by'")
		}
		p.i++
	}
	op := map[string]string{">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "eq", "==": "eq", "!=": "neq"}[p.peek()]
	if op == "" {
		return nil, p.errf("expected a comparison operator")
	}
	p.i++
	n, err := strconv.ParseFloat(p.peek(), 64)
	if err != nil {
		return nil, p.errf("expected a number")
	}
	p.i++
	agg.op, agg.n = op, n
	return agg, nil
}

// matchingSearches returns the search identifiers matching an "of" pattern,
// in definition order. "them" excludes identifiers starting with "_", as the
// specification reserves those.
func matchingSearches(det *detection, pattern string) []string {
	var out []string
	for _, name := range det.order {
		if pattern == "*" {
			if !strings.HasPrefix(name, "_") {
				out = append(out, name)
			}
			continue
		}
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	return out
}

func checkRefs(n condNode, det *detection) error {
	switch x := n.(type) {
	case *condRef:
		if _, ok := det.searches[x.name]; !ok {
			return fmt.Errorf("unknown search identifier %q", x.name)
		}
	case *condBin:
		if err := checkRefs(x.l, det); err != nil {
			return err
		}
		return checkRefs(x.r, det)
	case *condNot:
		return checkRefs(x.x, det)
	case *condOf:
		if _, err := path.Match(x.pattern, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", x.pattern, err)
		}
		if len(matchingSearches(det, x.pattern)) == 0 {
			return fmt.Errorf("no search identifier matches %q", x.pattern)
		}
	}
	return nil
}
