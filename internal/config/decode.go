package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/ingest"
	"github.com/nocsoc/nocsoc/internal/maintenance"
	"github.com/nocsoc/nocsoc/internal/notify"
	"github.com/nocsoc/nocsoc/internal/oncall"
)

// Error is one problem in a configuration file, located by line.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no position (an unreadable file).
	Line int
	// Field is the path of the offending value, e.g. "checks[3].interval"
	// (list indexes are 0-based); empty for syntax errors.
	Field  string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in one configuration file, in line order.
// errors.As finds the first *Error through Unwrap.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// decoder turns yaml.Node trees into typed values itself rather than through
// yaml.v3's Node.Decode, because Node.Decode cannot reject unknown keys
// (KnownFields only exists on the streaming Decoder, whose line numbers
// would be relative to a re-encoded fragment) and its errors lose the field
// path. Walking the tree lets every error carry the file's own line and the
// full field path. Scalars are still converted by yaml.v3.
type decoder struct {
	file string
}

func (d *decoder) errf(line int, field, format string, args ...any) *Error {
	return &Error{File: d.file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads exactly one YAML document. It returns nil for an empty
// document (only comments or nothing at all).
func (d *decoder) parse(src string) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, nil
		}
		return nil, d.syntaxError(src, err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, d.errf(second.Line, "", "only one YAML document is allowed")
	} else if err.Error() != "EOF" {
		return nil, d.syntaxError(src, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

func (d *decoder) syntaxError(src string, err error) *Error {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return d.errf(0, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	line, _ := strconv.Atoi(m[1])
	reason := m[2]
	// yaml.v3 reports a tab in indentation as an unexpected character;
	// say what it is, since the tab is invisible in most editors.
	lines := strings.Split(src, "\n")
	for _, l := range []int{line - 1, line} {
		if l >= 1 && l <= len(lines) && strings.Contains(lines[l-1], "\t") && strings.Contains(reason, "cannot start any token") {
			reason += " (tabs are not allowed in YAML indentation; use spaces)"
			break
		}
	}
	return d.errf(line, "", "%s", reason)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *defaults")
// expanded; explicit keys win over merged ones.
func pairs(n *yaml.Node) []pair {
	n = resolve(n)
	var out, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			v = resolve(v)
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				if s = resolve(s); s != nil && s.Kind == yaml.MappingNode {
					merged = append(merged, pairs(s)...)
				}
			}
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkKeys rejects duplicate and non-scalar keys anywhere in the tree
// (yaml.v3 only notices duplicates when decoding into a map or struct, and
// then without the field path).
func (d *decoder) checkKeys(n *yaml.Node, path string) *Error {
	switch n.Kind {
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return d.errf(k.Line, path, "mapping keys must be plain strings, got %s", describe(k))
			}
			if k.ShortTag() != "!!merge" {
				if l, dup := first[k.Value]; dup {
					return d.errf(k.Line, joinPath(path, k.Value), "duplicate key (first defined at line %d)", l)
				}
				first[k.Value] = k.Line
			}
			if err := d.checkKeys(v, joinPath(path, k.Value)); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			if err := d.checkKeys(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps a struct's YAML keys to field indexes. Fields tagged "-"
// are not settable from the file.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

// typeName names a struct type the way the documentation does.
func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Config]():
		return "the top level (server, checks, maintenance, alerting, inputs, detection, events)"
	case reflect.TypeFor[ingest.Config]():
		return "inputs"
	case reflect.TypeFor[ingest.SyslogInput]():
		return "syslog input"
	case reflect.TypeFor[ingest.FileInput]():
		return "file input"
	case reflect.TypeFor[Detection]():
		return "detection"
	case reflect.TypeFor[Events]():
		return "events"
	case reflect.TypeFor[Server]():
		return "server"
	case reflect.TypeFor[EventStore]():
		return "server.eventstore"
	case reflect.TypeFor[check.Spec]():
		return "check"
	case reflect.TypeFor[check.HTTPSpec]():
		return "http options"
	case reflect.TypeFor[check.JSONAssert]():
		return "json assertion"
	case reflect.TypeFor[check.TCPSpec]():
		return "tcp options"
	case reflect.TypeFor[check.DNSSpec]():
		return "dns options"
	case reflect.TypeFor[check.TLSSpec]():
		return "tls options"
	case reflect.TypeFor[check.SMTPSpec]():
		return "smtp options"
	case reflect.TypeFor[check.PushSpec]():
		return "push options"
	case reflect.TypeFor[maintenance.Window]():
		return "maintenance window"
	case reflect.TypeFor[Alerting]():
		return "alerting"
	case reflect.TypeFor[alert.RouteConfig]():
		return "route"
	case reflect.TypeFor[alert.InhibitRule]():
		return "inhibit rule"
	case reflect.TypeFor[notify.Channel]():
		return "channel"
	case reflect.TypeFor[notify.EmailSettings]():
		return "email settings"
	case reflect.TypeFor[oncall.Policy]():
		return "escalation policy"
	case reflect.TypeFor[oncall.Tier]():
		return "tier"
	case reflect.TypeFor[oncall.Target]():
		return "target"
	case reflect.TypeFor[oncall.Schedule]():
		return "schedule"
	case reflect.TypeFor[oncall.Override]():
		return "override"
	}
	return strings.ToLower(t.Name())
}

// expect says in words what a value of type t looks like.
func expect(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[check.Duration]():
		return `a duration like "30s" or "1h30m"`
	case reflect.TypeFor[time.Time]():
		return "a timestamp like 2025-06-01T02:00:00Z"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return expect(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// describe says in words what the file holds at n.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

// decode fills v from n. path names v for errors; line is the line of the
// key that introduced n, which is where an operator looks for the mistake.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, line int) *Error {
	n = resolve(n)
	t := v.Type()
	if isNull(n) {
		v.Set(reflect.Zero(t))
		return nil
	}
	if t == reflect.TypeFor[check.Duration]() || t == reflect.TypeFor[time.Time]() {
		return d.scalar(n, v, path, line)
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := d.decode(n, p.Elem(), path, line); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.errf(line, path, "must be %s, got %s", expect(t), describe(n))
		}
		fields := yamlFields(t)
		for _, p := range pairs(n) {
			idx, ok := fields[p.key.Value]
			if !ok {
				return d.unknownField(p.key, path, t, fields)
			}
			if err := d.decode(p.val, v.Field(idx), joinPath(path, p.key.Value), p.key.Line); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errf(line, path, "must be %s, got %s", expect(t), describe(n))
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			if err := d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i), e.Line); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errf(line, path, "must be %s, got %s", expect(t), describe(n))
		}
		ps := pairs(n)
		m := reflect.MakeMapWithSize(t, len(ps))
		for _, p := range ps {
			k := reflect.New(t.Key()).Elem()
			if err := d.scalar(p.key, k, path, p.key.Line); err != nil {
				return err
			}
			e := reflect.New(t.Elem()).Elem()
			if err := d.decode(p.val, e, joinPath(path, p.key.Value), p.key.Line); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
		return nil
	}
	return d.scalar(n, v, path, line)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string, line int) *Error {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return d.errf(line, path, "must be %s, got %s", expect(v.Type()), describe(n))
	}
	// yaml.v3 truncates 1.5 to 1 when decoding into an integer; refuse it.
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.ShortTag() != "!!int" && v.Type() != reflect.TypeFor[check.Duration]() {
			return d.errf(line, path, "must be %s, got %s", expect(v.Type()), describe(n))
		}
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		return d.errf(line, path, "must be %s, got %s", expect(v.Type()), describe(n))
	}
	v.Set(p.Elem())
	return nil
}

func (d *decoder) unknownField(key *yaml.Node, path string, t reflect.Type, fields map[string]int) *Error {
	reason := fmt.Sprintf("field %q not found in %s", key.Value, typeName(t))
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(key.Value, name); dist < bestDist || (dist == bestDist && best != "" && name < best) {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return d.errf(key.Line, path, "%s", reason)
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var segmentRE = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// lineOf finds the line of a field path such as "http.expect_status[1]"
// below n, falling back to the deepest part of the path that exists (a
// missing required field is reported at the line of its parent).
func lineOf(n *yaml.Node, field string) int {
	n = resolve(n)
	line := n.Line
	for _, seg := range segmentRE.FindAllString(field, -1) {
		n = resolve(n)
		if n == nil {
			break
		}
		if strings.HasPrefix(seg, "[") {
			i, _ := strconv.Atoi(seg[1 : len(seg)-1])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				break
			}
			n = n.Content[i]
			line = resolve(n).Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for _, p := range pairs(n) {
			if p.key.Value == seg {
				next, line = p.val, p.key.Line
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}
