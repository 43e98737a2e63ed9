package query

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SyntaxError is a query that does not parse. Pos is the 1-based character
// (not byte) position in the query where the problem was found.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("position %d: %s", e.Pos, e.Msg) }

// MaxLength is the longest query Parse accepts, in bytes.
const MaxLength = 8192

// maxDepth bounds nesting (parentheses and NOT) so a hostile query cannot
// exhaust the stack.
const maxDepth = 64

// existsField is the pseudo-field of _exists_:field.
const existsField = "_exists_"

// Parse parses a query. The empty query and "*" parse to All. Errors are a
// *SyntaxError naming the position.
func Parse(q string) (Node, error) {
	if len(q) > MaxLength {
		return nil, &SyntaxError{Pos: 1, Msg: fmt.Sprintf("query is longer than %d bytes", MaxLength)}
	}
	if !utf8.ValidString(q) {
		i := 0
		for i < len(q) {
			r, size := utf8.DecodeRuneInString(q[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return nil, &SyntaxError{Pos: utf8.RuneCountInString(q[:i]) + 1, Msg: "invalid UTF-8"}
	}
	p := &parser{src: q}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return All{}, nil
	}
	n, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tEOF:
	case tRParen:
		return nil, p.errAt(p.tok.pos, "unexpected ')'")
	default:
		return nil, p.errAt(p.tok.pos, "unexpected "+p.tok.describe())
	}
	if t, ok := n.(Text); ok && t.Wildcard && t.Value == "*" {
		return All{}, nil
	}
	return n, nil
}

type tokenKind int

const (
	tEOF tokenKind = iota
	tLParen
	tRParen
	tAnd
	tOr
	tNot
	tMinus
	tQuoted // a quoted phrase on its own
	tWord   // a word, possibly field:value, possibly field:"quoted"
)

type token struct {
	kind tokenKind
	pos  int    // byte offset
	raw  string // tWord: the word with escapes kept
	// tQuoted: the phrase; tWord: a quoted value that followed the word
	// directly (field:"value").
	quoted    string
	hasQuoted bool
	quotePos  int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tAnd:
		return "AND"
	case tOr:
		return "OR"
	case tNot:
		return "NOT"
	case tMinus:
		return "'-'"
	}
	return "term"
}

type parser struct {
	src string
	off int // next byte to lex
	tok token
}

func (p *parser) errAt(off int, msg string) error {
	return &SyntaxError{Pos: utf8.RuneCountInString(p.src[:off]) + 1, Msg: msg}
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

// next lexes the next token into p.tok.
func (p *parser) next() error {
	for p.off < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[p.off:])
		if !isSpace(r) {
			break
		}
		p.off += size
	}
	start := p.off
	if start >= len(p.src) {
		p.tok = token{kind: tEOF, pos: start}
		return nil
	}
	switch c := p.src[start]; c {
	case '(':
		p.off++
		p.tok = token{kind: tLParen, pos: start}
		return nil
	case ')':
		p.off++
		p.tok = token{kind: tRParen, pos: start}
		return nil
	case '"':
		s, end, err := p.lexQuoted(start)
		if err != nil {
			return err
		}
		p.off = end
		p.tok = token{kind: tQuoted, pos: start, quoted: s, hasQuoted: true, quotePos: start}
		return nil
	case '-':
		if start+1 < len(p.src) {
			r, _ := utf8.DecodeRuneInString(p.src[start+1:])
			if !isSpace(r) && r != ')' {
				p.off++
				p.tok = token{kind: tMinus, pos: start}
				return nil
			}
		}
	}
	// A word runs to the next unescaped space, parenthesis or quote.
	i := start
	for i < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[i:])
		if r == '\\' {
			if i+1 >= len(p.src) {
				return p.errAt(i, "nothing to escape after '\\' at the end of the query")
			}
			_, s2 := utf8.DecodeRuneInString(p.src[i+1:])
			i += 1 + s2
			continue
		}
		if isSpace(r) || r == '(' || r == ')' || r == '"' {
			break
		}
		i += size
	}
	tok := token{kind: tWord, pos: start, raw: p.src[start:i]}
	if i < len(p.src) && p.src[i] == '"' && endsWithOp(tok.raw) {
		s, end, err := p.lexQuoted(i)
		if err != nil {
			return err
		}
		tok.quoted, tok.hasQuoted, tok.quotePos = s, true, i
		i = end
	}
	p.off = i
	if !tok.hasQuoted {
		switch strings.ToUpper(tok.raw) {
		case "AND":
			tok.kind = tAnd
		case "OR":
			tok.kind = tOr
		case "NOT":
			tok.kind = tNot
		}
	}
	p.tok = tok
	return nil
}

// endsWithOp reports whether a word ends in a field operator, so that a quote
// right after it is the field's value.
func endsWithOp(raw string) bool {
	if strings.HasSuffix(raw, `\:`) || strings.HasSuffix(raw, `\>`) || strings.HasSuffix(raw, `\<`) || strings.HasSuffix(raw, `\=`) {
		return false
	}
	return strings.HasSuffix(raw, ":") || strings.HasSuffix(raw, "=") || strings.HasSuffix(raw, ">") || strings.HasSuffix(raw, "<")
}

// lexQuoted reads a quoted string starting at the quote at off and returns
// its unescaped content and the offset after the closing quote.
func (p *parser) lexQuoted(off int) (string, int, error) {
	var b strings.Builder
	i := off + 1
	for i < len(p.src) {
		c := p.src[i]
		switch c {
		case '\\':
			if i+1 >= len(p.src) {
				return "", 0, p.errAt(off, "unterminated quoted phrase")
			}
			_, size := utf8.DecodeRuneInString(p.src[i+1:])
			b.WriteString(p.src[i+1 : i+1+size])
			i += 1 + size
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, p.errAt(off, "unterminated quoted phrase")
}

func startsUnary(k tokenKind) bool {
	switch k {
	case tLParen, tNot, tMinus, tQuoted, tWord:
		return true
	}
	return false
}

func (p *parser) parseOr(depth int) (Node, error) {
	first, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	nodes := []Node{first}
	for p.tok.kind == tOr {
		if err := p.next(); err != nil {
			return nil, err
		}
		n, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 1 {
		return first, nil
	}
	return Or{Nodes: nodes}, nil
}

func (p *parser) parseAnd(depth int) (Node, error) {
	first, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	nodes := []Node{first}
	for {
		if p.tok.kind == tAnd {
			if err := p.next(); err != nil {
				return nil, err
			}
		} else if !startsUnary(p.tok.kind) {
			break
		}
		n, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 1 {
		return first, nil
	}
	return And{Nodes: nodes}, nil
}

func (p *parser) parseUnary(depth int) (Node, error) {
	if depth >= maxDepth {
		return nil, p.errAt(p.tok.pos, fmt.Sprintf("query nests deeper than %d levels", maxDepth))
	}
	switch p.tok.kind {
	case tNot, tMinus:
		if err := p.next(); err != nil {
			return nil, err
		}
		n, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return Not{Node: n}, nil
	case tLParen:
		open := p.tok.pos
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind == tRParen {
			return nil, p.errAt(p.tok.pos, "expected a term inside '()'")
		}
		n, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errAt(p.tok.pos, fmt.Sprintf("expected ')' to close the '(' at position %d, found %s",
				utf8.RuneCountInString(p.src[:open])+1, p.tok.describe()))
		}
		return n, p.next()
	case tQuoted:
		n := Text{Value: p.tok.quoted, Phrase: true}
		return n, p.next()
	case tWord:
		n, err := p.term(p.tok)
		if err != nil {
			return nil, err
		}
		return n, p.next()
	case tEOF:
		return nil, p.errAt(p.tok.pos, "expected a term, found end of query")
	}
	return nil, p.errAt(p.tok.pos, "expected a term, found "+p.tok.describe())
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '@'
}

func isNameByte(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '.' || c == '-'
}

// ValidFieldName reports whether name can be used as a field in a query:
// ASCII letters, digits, '_', '@', '.' and '-', starting with a letter, '_'
// or '@'. Store code relies on this to embed names safely.
func ValidFieldName(name string) bool {
	if name == "" || !isNameStart(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return false
		}
	}
	return true
}

// splitField finds "name op" at the start of a raw word. It returns ok false
// when the word is not a field filter.
func splitField(raw string) (name, op string, rest int, ok bool) {
	if raw == "" || !isNameStart(raw[0]) {
		return "", "", 0, false
	}
	i := 1
	for i < len(raw) && isNameByte(raw[i]) {
		i++
	}
	name, tail := raw[:i], raw[i:]
	for _, o := range []string{":>=", ":<=", ":>", ":<", ":", ">=", "<=", "!=", ">", "<"} {
		if strings.HasPrefix(tail, o) {
			op = strings.TrimPrefix(o, ":")
			if op == "" {
				op = OpMatch
			}
			return name, op, i + len(o), true
		}
	}
	return "", "", 0, false
}

// unescape turns a raw word into its literal value and, when it holds an
// unescaped '*' or '?', a pattern that keeps '\' before literal '*', '?'
// and '\'.
func unescape(raw string) (lit, pattern string, wildcard bool) {
	var l, pt strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < len(raw):
			i++
			c = raw[i]
			l.WriteByte(c)
			if c == '*' || c == '?' || c == '\\' {
				pt.WriteByte('\\')
			}
			pt.WriteByte(c)
		case c == '*' || c == '?':
			wildcard = true
			l.WriteByte(c)
			pt.WriteByte(c)
		default:
			l.WriteByte(c)
			pt.WriteByte(c)
		}
	}
	return l.String(), pt.String(), wildcard
}

func (p *parser) term(t token) (Node, error) {
	name, op, rest, ok := splitField(t.raw)
	if !ok {
		lit, pat, wild := unescape(t.raw)
		if wild {
			return Text{Value: pat, Wildcard: true}, nil
		}
		return Text{Value: lit}, nil
	}
	valRaw := t.raw[rest:]
	valPos := t.pos + rest
	f := Field{Name: name, Op: op}
	if t.hasQuoted {
		if valRaw != "" {
			return nil, p.errAt(t.quotePos, "unexpected quote inside a value")
		}
		f.Value, f.Phrase = t.quoted, true
	} else {
		if valRaw == "" {
			return nil, p.errAt(valPos, fmt.Sprintf("expected a value after '%s%s'", name, op))
		}
		lit, pat, wild := unescape(valRaw)
		f.Value = lit
		if wild {
			f.Value, f.Wildcard = pat, true
		}
	}
	if name == existsField {
		if op != OpMatch || f.Phrase || f.Wildcard || !ValidFieldName(f.Value) || f.Value != valRaw {
			return nil, p.errAt(valPos, "_exists_ takes a field name: _exists_:user.name")
		}
		return Exists{Field: f.Value}, nil
	}
	if isNumericOp(op) {
		v, err := strconv.ParseFloat(f.Value, 64)
		if f.Phrase || f.Wildcard || err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, p.errAt(valPos, fmt.Sprintf("expected a number after '%s%s'", name, op))
		}
		return f, nil
	}
	if !f.Phrase && !f.Wildcard && strings.Contains(f.Value, "/") && f.Value == valRaw {
		addr, _, _ := strings.Cut(f.Value, "/")
		if pfx, err := netip.ParsePrefix(f.Value); err == nil {
			m := pfx.Masked()
			f.CIDR, f.Value = &m, m.String()
		} else if _, aerr := netip.ParseAddr(addr); aerr == nil {
			return nil, p.errAt(valPos, fmt.Sprintf("invalid CIDR prefix %q", f.Value))
		}
	}
	return f, nil
}
