package alert

import (
	"fmt"
	"regexp"
	"strings"
)

// Matcher operators, as in Alertmanager.
const (
	MatchEqual     = "="
	MatchNotEqual  = "!="
	MatchRegexp    = "=~"
	MatchNotRegexp = "!~"
)

// Matcher is one Alertmanager-style label matcher such as
// severity="critical", team!=noc or service=~"db|cache".
type Matcher struct {
	Name  string
	Op    string // "=", "!=", "=~", "!~"
	Value string
	re    *regexp.Regexp
}

// NewMatcher builds a matcher from its parts; a regex is fully anchored
// like Alertmanager's (service=~"db" does not match "mydb").
func NewMatcher(name, op, value string) (Matcher, error) {
	m := Matcher{Name: name, Op: op, Value: value}
	if !validLabelName(name) {
		return Matcher{}, fmt.Errorf("invalid label name %q", name)
	}
	switch op {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		// Compile the bare value first so the error quotes what the
		// operator wrote, not our anchoring.
		if _, err := regexp.Compile(value); err != nil {
			return Matcher{}, fmt.Errorf("invalid regex: %w", err)
		}
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("invalid regex: %w", err)
		}
		m.re = re
	default:
		return Matcher{}, fmt.Errorf("unknown operator %q (one of =, !=, =~, !~)", op)
	}
	return m, nil
}

// Matches reports whether labels satisfy m. A missing label counts as the
// empty string, as in Alertmanager, so team!="soc" matches an alert without
// a team label and team="" matches only alerts without one.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re != nil && m.re.MatchString(v)
	case MatchNotRegexp:
		return m.re != nil && !m.re.MatchString(v)
	}
	return false
}

// String returns the matcher in the syntax ParseMatcher reads, with the
// value always quoted.
func (m Matcher) String() string {
	return m.Name + m.Op + quoteValue(m.Value)
}

// quoteValue quotes with exactly the escapes the parser reads, so that
// String's output always parses back (strconv.Quote would write \t).
func quoteValue(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// MatchAll reports whether labels satisfy every matcher (true for none).
func MatchAll(ms []Matcher, labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// ParseMatcher reads one matcher: name, operator, then a value that is
// either double-quoted (escapes \" \\ \n) or unquoted (the rest of the
// string, trimmed). Errors quote the input and give the byte offset.
func ParseMatcher(s string) (Matcher, error) {
	p := matcherParser{src: s}
	p.skipSpace()
	m, err := p.matcher(false)
	if err != nil {
		return Matcher{}, fmt.Errorf("matcher %q: %w", s, err)
	}
	p.skipSpace()
	if p.pos < len(s) {
		return Matcher{}, fmt.Errorf("matcher %q: unexpected %q at offset %d", s, s[p.pos], p.pos)
	}
	return m, nil
}

// ParseMatchers reads a list of matchers. Each string is one matcher or a
// braced list such as {a="b", c=~"d"}.
func ParseMatchers(ss []string) ([]Matcher, error) {
	out := make([]Matcher, 0, len(ss))
	for _, s := range ss {
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") {
			ms, err := parseBraced(s)
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
			continue
		}
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseBraced reads `{a="b", c=~"d"}`; a trailing comma and an empty
// list are accepted.
func parseBraced(s string) ([]Matcher, error) {
	p := matcherParser{src: s}
	p.skipSpace()
	p.pos++ // the '{' checked by the caller
	var out []Matcher
	for {
		p.skipSpace()
		if p.pos >= len(s) {
			return nil, fmt.Errorf("matcher %q: missing closing '}'", s)
		}
		if s[p.pos] == '}' {
			p.pos++
			break
		}
		m, err := p.matcher(true)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: %w", s, err)
		}
		out = append(out, m)
		p.skipSpace()
		if p.pos < len(s) && s[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(s) && s[p.pos] == '}' {
			continue
		}
		if p.pos >= len(s) {
			return nil, fmt.Errorf("matcher %q: missing closing '}'", s)
		}
		return nil, fmt.Errorf("matcher %q: expected ',' or '}' at offset %d, got %q", s, p.pos, s[p.pos])
	}
	p.skipSpace()
	if p.pos < len(s) {
		return nil, fmt.Errorf("matcher %q: unexpected %q at offset %d after '}'", s, s[p.pos], p.pos)
	}
	return out, nil
}

type matcherParser struct {
	src string
	pos int
}

func (p *matcherParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return true
	case c >= '0' && c <= '9', c == '.' || c == '-':
		// Dots and dashes are allowed after the first byte so that dotted
		// event field names (host.name) can be matched.
		return !first
	}
	return false
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// matcher reads name, operator and value at p.pos. In a braced list an
// unquoted value ends at ',' or '}'.
func (p *matcherParser) matcher(braced bool) (Matcher, error) {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos], p.pos == start) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name == "" {
		if p.pos >= len(p.src) {
			return Matcher{}, fmt.Errorf("missing label name at offset %d", p.pos)
		}
		return Matcher{}, fmt.Errorf("expected a label name at offset %d, got %q", p.pos, p.src[p.pos])
	}
	p.skipSpace()
	opPos := p.pos
	var op string
	switch rest := p.src[p.pos:]; {
	case strings.HasPrefix(rest, "=~"):
		op = MatchRegexp
	case strings.HasPrefix(rest, "!~"):
		op = MatchNotRegexp
	case strings.HasPrefix(rest, "!="):
		op = MatchNotEqual
	case strings.HasPrefix(rest, "="):
		op = MatchEqual
	case rest == "":
		return Matcher{}, fmt.Errorf("missing operator after %q at offset %d (one of =, !=, =~, !~)", name, p.pos)
	default:
		return Matcher{}, fmt.Errorf("expected an operator (=, !=, =~, !~) at offset %d, got %q", p.pos, rest[0])
	}
	p.pos += len(op)
	p.skipSpace()
	valPos := p.pos
	var value string
	if p.pos < len(p.src) && p.src[p.pos] == '"' {
		v, err := p.quoted()
		if err != nil {
			return Matcher{}, err
		}
		value = v
	} else {
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			if braced && (c == ',' || c == '}') {
				break
			}
			if c == '"' {
				return Matcher{}, fmt.Errorf("unexpected '\"' at offset %d inside an unquoted value; quote the whole value", p.pos)
			}
			p.pos++
		}
		value = strings.TrimSpace(p.src[valPos:p.pos])
	}
	m, err := NewMatcher(name, op, value)
	if err != nil {
		if op == MatchRegexp || op == MatchNotRegexp {
			return Matcher{}, fmt.Errorf("%w (value at offset %d)", err, valPos)
		}
		return Matcher{}, fmt.Errorf("%w (operator at offset %d)", err, opPos)
	}
	return m, nil
}

// quoted reads a double-quoted value with the escapes \" \\ and \n.
func (p *matcherParser) quoted() (string, error) {
	open := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			if p.pos+1 >= len(p.src) {
				return "", fmt.Errorf("unterminated escape at offset %d", p.pos)
			}
			switch e := p.src[p.pos+1]; e {
			case '"', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			default:
				return "", fmt.Errorf("unknown escape \\%c at offset %d (use \\\", \\\\ or \\n)", e, p.pos)
			}
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", fmt.Errorf("unterminated quoted value starting at offset %d", open)
}
