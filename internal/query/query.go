// Package query owns nocsoc's event search language: a small Lucene-like
// syntax (field filters, phrases, bare words, AND/OR/NOT, parentheses,
// wildcards, CIDR and numeric comparisons) parsed into a tree, and the
// translation of that tree into a parameterised SQL predicate. It is pure:
// no I/O, no engine; docs/search.md describes the language for users.
package query

import (
	"net/netip"
	"strings"
)

// Node is a parsed query. The concrete types are All, And, Or, Not, Field,
// Text and Exists. String renders the node in the query language such that
// Parse(n.String()) yields an equal tree.
type Node interface {
	String() string
	node()
}

// All matches every event: the empty query and "*".
type All struct{}

// And matches when every one of Nodes matches (explicit AND or words next to
// each other).
type And struct{ Nodes []Node }

// Or matches when any of Nodes matches.
type Or struct{ Nodes []Node }

// Not matches when Node does not; an absent field counts as "does not
// match", so NOT user.name:root also matches events without a user.
type Not struct{ Node Node }

// Field is a filter on one field.
type Field struct {
	// Name is the dotted field name, e.g. "source.ip".
	Name string
	// Op is one of the Op* constants.
	Op string
	// Value is the value as written, unescaped. When Wildcard is true it is
	// a pattern: '*' matches any run of characters, '?' one character, and
	// '\' makes the next character literal.
	Value string
	// Wildcard says Value is a pattern (it held an unescaped '*' or '?').
	Wildcard bool
	// CIDR is set when Value is an IP prefix such as 10.0.0.0/8 (Op is
	// OpMatch or OpNotEqual); it is the masked prefix.
	CIDR *netip.Prefix
	// Phrase says the value was quoted: it is matched literally, never as a
	// pattern, number or prefix.
	Phrase bool
}

// Field operators.
const (
	OpMatch        = ":"  // equals (or pattern / prefix match)
	OpNotEqual     = "!=" // not equal (absent counts as not equal)
	OpGreater      = ">"
	OpGreaterEqual = ">="
	OpLess         = "<"
	OpLessEqual    = "<="
)

// Text is a bare word or a quoted phrase that the message must contain,
// case-insensitively.
type Text struct {
	// Value is the word or phrase, unescaped; a pattern when Wildcard is
	// set (see Field.Value).
	Value    string
	Phrase   bool
	Wildcard bool
}

// Exists matches events that have the field (_exists_:field).
type Exists struct{ Field string }

func (All) node()    {}
func (And) node()    {}
func (Or) node()     {}
func (Not) node()    {}
func (Field) node()  {}
func (Text) node()   {}
func (Exists) node() {}

// String implements Node.
func (All) String() string { return "*" }

// String implements Node.
func (n And) String() string { return joinNodes(n.Nodes, " AND ") }

// String implements Node.
func (n Or) String() string { return joinNodes(n.Nodes, " OR ") }

// String implements Node.
func (n Not) String() string { return "NOT " + group(n.Node) }

// String implements Node.
func (n Field) String() string {
	var b strings.Builder
	b.WriteString(n.Name)
	b.WriteString(n.Op)
	switch {
	case n.Phrase:
		b.WriteString(quote(n.Value))
	case n.Wildcard:
		b.WriteString(escapePattern(n.Value))
	case n.CIDR != nil:
		b.WriteString(n.CIDR.String())
	case isNumericOp(n.Op):
		b.WriteString(n.Value)
	default:
		b.WriteString(escapeWord(n.Value))
	}
	return b.String()
}

// String implements Node.
func (n Text) String() string {
	switch {
	case n.Phrase:
		return quote(n.Value)
	case n.Wildcard:
		return escapePattern(n.Value)
	}
	return escapeWord(n.Value)
}

// String implements Node.
func (n Exists) String() string { return existsField + ":" + n.Field }

func joinNodes(nodes []Node, sep string) string {
	parts := make([]string, len(nodes))
	for i, c := range nodes {
		parts[i] = group(c)
	}
	return strings.Join(parts, sep)
}

// group parenthesises And and Or children so the tree survives a round trip.
func group(n Node) string {
	switch n.(type) {
	case And, Or:
		return "(" + n.String() + ")"
	}
	return n.String()
}

func isNumericOp(op string) bool {
	switch op {
	case OpGreater, OpGreaterEqual, OpLess, OpLessEqual:
		return true
	}
	return false
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// special lists the characters that end a word or change its meaning; they
// are backslash-escaped when a literal value is printed.
const special = " \t\r\n\f\v()\"\\*?:<>=!/-"

// escapeWord prints a literal value as an unquoted word.
func escapeWord(s string) string {
	var b strings.Builder
	if isKeyword(s) {
		b.WriteByte('\\')
	}
	for _, r := range s {
		if strings.ContainsRune(special, r) || isSpace(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// escapePattern prints a pattern (whose literal '*', '?' and '\' are already
// escaped) as an unquoted word.
func escapePattern(p string) string {
	var b strings.Builder
	if isKeyword(p) {
		b.WriteByte('\\')
	}
	escaped := false
	for _, r := range p {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*' || r == '?':
		case strings.ContainsRune(special, r) || isSpace(r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isKeyword(s string) bool {
	return strings.EqualFold(s, "AND") || strings.EqualFold(s, "OR") || strings.EqualFold(s, "NOT")
}
