package query

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Columns maps a field to the SQL expression holding its value. typed is
// true when the expression is a numeric column (compared as a number), false
// when it is a VARCHAR expression (NULL when the event lacks the field).
// ToSQL also asks for two special names:
//
//   - TextField ("message"): the text that bare words and phrases search;
//   - name + IPSuffix: a BLOB of 16 bytes, the field's IP address in
//     IPv6 form (IPv4 mapped to ::ffff:a.b.c.d) — see IPKey — or "" when
//     the field has no such column. CIDR filters use it when present.
//
// The expressions are trusted SQL written by the caller; ToSQL never embeds
// a user-supplied value in the SQL text.
type Columns func(field string) (sqlExpr string, typed bool)

// TextField is the field that bare words and phrases search.
const TextField = "message"

// IPSuffix is appended to a field name to ask Columns for the field's
// numeric IP column.
const IPSuffix = "#ip"

// IPKey is the 16-byte big-endian form of an address used by IP columns:
// byte order equals numeric order, so a prefix is a BETWEEN range.
func IPKey(a netip.Addr) []byte {
	b := a.Unmap().As16() // an IPv4 address comes back as ::ffff:a.b.c.d
	return b[:]
}

// prefixRange returns the first and last keys of a prefix.
func prefixRange(p netip.Prefix) (lo, hi []byte) {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	lo = IPKey(p.Addr())
	hi = append([]byte(nil), lo...)
	for i := bits; i < 128; i++ {
		hi[i/8] |= 0x80 >> (i % 8)
	}
	return lo, hi
}

// ToSQL translates n into a SQL boolean expression with '?' placeholders
// and their arguments, in order. Field filters compare exactly and
// case-sensitively; bare words and phrases match the message
// case-insensitively anywhere in it; '*' and '?' become LIKE wildcards with
// LIKE's own '%', '_' and '\' escaped. An absent field never matches a
// filter, so NOT f:v matches events without f.
func ToSQL(n Node, cols Columns) (where string, args []any, err error) {
	if n == nil {
		return "", nil, fmt.Errorf("query: to SQL: nil query")
	}
	t := &translator{cols: cols}
	where, err = t.node(n)
	if err != nil {
		return "", nil, fmt.Errorf("query: to SQL: %w", err)
	}
	return where, t.args, nil
}

type translator struct {
	cols Columns
	args []any
}

func (t *translator) arg(v any) string {
	t.args = append(t.args, v)
	return "?"
}

func (t *translator) node(n Node) (string, error) {
	switch n := n.(type) {
	case All:
		return "TRUE", nil
	case And:
		return t.list(n.Nodes, " AND ")
	case Or:
		return t.list(n.Nodes, " OR ")
	case Not:
		s, err := t.node(n.Node)
		if err != nil {
			return "", err
		}
		// Unknown (NULL: the field is absent) counts as no match, so its
		// negation matches.
		return "(NOT coalesce(" + s + ", false))", nil
	case Exists:
		if !ValidFieldName(n.Field) {
			return "", fmt.Errorf("field %q: invalid name", n.Field)
		}
		expr, _ := t.cols(n.Field)
		return "(" + expr + " IS NOT NULL)", nil
	case Text:
		expr, _ := t.cols(TextField)
		var pat string
		if n.Wildcard {
			pat = "%" + likePattern(n.Value) + "%"
		} else {
			pat = "%" + likeEscape(n.Value) + "%"
		}
		return "(" + expr + " ILIKE " + t.arg(pat) + " ESCAPE '\\')", nil
	case Field:
		return t.field(n)
	}
	return "", fmt.Errorf("unknown node type %T", n)
}

func (t *translator) list(nodes []Node, sep string) (string, error) {
	if len(nodes) == 0 {
		return "", fmt.Errorf("empty %q group", strings.TrimSpace(sep))
	}
	parts := make([]string, len(nodes))
	for i, c := range nodes {
		s, err := t.node(c)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	return "(" + strings.Join(parts, sep) + ")", nil
}

func (t *translator) field(f Field) (string, error) {
	if !ValidFieldName(f.Name) {
		return "", fmt.Errorf("field %q: invalid name", f.Name)
	}
	expr, typed := t.cols(f.Name)
	text := expr
	if typed {
		text = "CAST(" + expr + " AS VARCHAR)"
	}
	if isNumericOp(f.Op) {
		v, err := strconv.ParseFloat(f.Value, 64)
		if err != nil {
			return "", fmt.Errorf("field %q: %q is not a number", f.Name, f.Value)
		}
		if !typed {
			expr = "TRY_CAST(" + expr + " AS DOUBLE)"
		}
		return "(" + expr + " " + f.Op + " " + t.arg(v) + ")", nil
	}
	var match string
	switch {
	case f.Op != OpMatch && f.Op != OpNotEqual:
		return "", fmt.Errorf("field %q: unknown operator %q", f.Name, f.Op)
	case f.Phrase:
		match = "(" + text + " = " + t.arg(f.Value) + ")"
	case f.Wildcard:
		match = "(" + text + " LIKE " + t.arg(likePattern(f.Value)) + " ESCAPE '\\')"
	case f.CIDR != nil:
		m, err := t.cidr(f, text)
		if err != nil {
			return "", err
		}
		match = m
	case typed:
		if v, err := strconv.ParseFloat(f.Value, 64); err == nil {
			match = "(" + expr + " = " + t.arg(v) + ")"
		} else {
			match = "(" + text + " = " + t.arg(f.Value) + ")"
		}
	default:
		match = "(" + text + " = " + t.arg(f.Value) + ")"
	}
	if f.Op == OpNotEqual {
		return "(NOT coalesce(" + match + ", false))", nil
	}
	return match, nil
}

// cidr matches a prefix: on the field's IP column when it has one, else (for
// IPv4) by computing the address's number from dotted-quad text.
func (t *translator) cidr(f Field, text string) (string, error) {
	if ipExpr, _ := t.cols(f.Name + IPSuffix); ipExpr != "" {
		lo, hi := prefixRange(*f.CIDR)
		return "(" + ipExpr + " BETWEEN " + t.arg(lo) + " AND " + t.arg(hi) + ")", nil
	}
	if !f.CIDR.Addr().Is4() {
		return "", fmt.Errorf("field %q: IPv6 prefixes work only on IP fields (source.ip, destination.ip)", f.Name)
	}
	v4 := f.CIDR.Addr().As4()
	lo := int64(binary.BigEndian.Uint32(v4[:]))
	hi := lo | (1<<(32-f.CIDR.Bits()) - 1)
	// regexp_full_match guards the arithmetic: only dotted quads whose
	// octets are at most 255 have a number.
	num := fmt.Sprintf(`(TRY_CAST(split_part(%[1]s, '.', 1) AS BIGINT) * 16777216 + TRY_CAST(split_part(%[1]s, '.', 2) AS BIGINT) * 65536 + TRY_CAST(split_part(%[1]s, '.', 3) AS BIGINT) * 256 + TRY_CAST(split_part(%[1]s, '.', 4) AS BIGINT))`, text)
	return "(regexp_full_match(" + text + `, '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])){3}') AND ` +
		num + " BETWEEN " + t.arg(lo) + " AND " + t.arg(hi) + ")", nil
}

// likeEscape escapes LIKE's metacharacters in a literal.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// likePattern turns a query pattern ('*', '?', '\' escapes) into a LIKE
// pattern with '\' as its escape character.
func likePattern(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(likeEscape(p[i : i+1]))
		case c == '*':
			b.WriteByte('%')
		case c == '?':
			b.WriteByte('_')
		default:
			b.WriteString(likeEscape(p[i : i+1]))
		}
	}
	return b.String()
}
