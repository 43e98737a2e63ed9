package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// detection is a parsed, pipeline-independent detection section.
type detection struct {
	searches map[string]*search
	order    []string // identifiers in definition order
	cond     condNode
	agg      *aggregation
}

// search is one named search identifier: an OR of field sets.
type search struct {
	name string
	alts []fieldSet
}

// fieldSet is an AND of field items (one YAML map).
type fieldSet []fieldItem

// fieldItem is one "field|mod|mod: values" entry; field is empty for keywords.
type fieldItem struct {
	field  string
	mods   []string
	values []any // string, float64, bool, nil
	line   int
}

// LoadDir loads every *.yml / *.yaml file under the given files or
// directories, sorted by path. Rules that fail are reported as *LoadError
// and the others are kept.
func LoadDir(paths ...string) (rules []*Rule, errs []error) {
	var files []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if ext := filepath.Ext(path); ext == ".yml" || ext == ".yaml" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, &LoadError{Path: p, Reason: err.Error()})
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &LoadError{Path: f, Reason: err.Error()})
			continue
		}
		rs, es := ParseRule(f, data)
		rules = append(rules, rs...)
		errs = append(errs, es...)
	}
	return rules, errs
}

// ParseRule parses one Sigma file, which may hold several YAML documents
// (rule collections with "action: global", or a correlation rule with its
// base rules).
func ParseRule(path string, data []byte) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var global *yaml.Node
	var prev *yaml.Node
	// Single-document files keep their bytes verbatim as Raw.
	single := !bytes.Contains(data, []byte("\n---"))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &LoadError{Path: path, Reason: "yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			errs = append(errs, &LoadError{Path: path, Line: root.Line, Reason: "document is not a mapping"})
			continue
		}
		switch scalarOf(mapGet(root, "action")) {
		case "global":
			global = root
			continue
		case "reset":
			global = nil
			continue
		case "repeat":
			if prev == nil {
				errs = append(errs, &LoadError{Path: path, Line: root.Line, Reason: "action: repeat without a previous rule"})
				continue
			}
			root = mergeNodes(prev, root)
		}
		if global != nil {
			root = mergeNodes(global, root)
		}
		prev = root
		raw := data
		if !single || global != nil {
			raw = docBytes(root)
		}
		r, err := parseDoc(path, root, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

func docBytes(n *yaml.Node) []byte {
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil
	}
	return b
}

// mergeNodes deep-merges mapping b over mapping a (used by rule collections).
func mergeNodes(a, b *yaml.Node) *yaml.Node {
	if a.Kind != yaml.MappingNode || b.Kind != yaml.MappingNode {
		return b
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: a.Tag, Line: b.Line, Column: b.Column}
	seen := map[string]bool{}
	for i := 0; i+1 < len(a.Content); i += 2 {
		k := a.Content[i].Value
		if k == "action" {
			continue
		}
		v := a.Content[i+1]
		if bv := mapGet(b, k); bv != nil {
			v = mergeNodes(v, bv)
		}
		seen[k] = true
		out.Content = append(out.Content, a.Content[i], v)
	}
	for i := 0; i+1 < len(b.Content); i += 2 {
		if k := b.Content[i].Value; !seen[k] && k != "action" {
			out.Content = append(out.Content, b.Content[i], b.Content[i+1])
		}
	}
	return out
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalarOf(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func stringList(n *yaml.Node, field string) ([]string, error) {
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: %s: expected a list of strings", c.Line, field)
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: %s: expected a string or a list of strings", n.Line, field)
}

func parseDoc(path string, root *yaml.Node, raw []byte) (*Rule, error) {
	fail := func(line int, format string, args ...any) error {
		return &LoadError{Path: path, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	r := &Rule{Path: path, Line: root.Line, Raw: raw}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "title":
			r.Title = scalarOf(v)
		case "id":
			r.ID = scalarOf(v)
		case "name":
			r.Name = scalarOf(v)
		case "status":
			r.Status = scalarOf(v)
		case "level":
			r.Level = scalarOf(v)
		case "description":
			r.Description = scalarOf(v)
		case "date":
			r.Date = scalarOf(v)
		case "modified":
			r.Modified = scalarOf(v)
		case "author":
			// Authors are credited with every match (DRL 1.1); a list is joined.
			var as []string
			as, err = stringList(v, "author")
			r.Author = strings.Join(as, ", ")
		case "tags":
			r.Tags, err = stringList(v, "tags")
		case "references":
			r.References, err = stringList(v, "references")
		case "falsepositives":
			r.FalsePositives, err = stringList(v, "falsepositives")
		case "fields":
			r.Fields, err = stringList(v, "fields")
		case "timeframe":
			r.Timeframe, err = parseTimespan(scalarOf(v))
			if err != nil {
				err = fmt.Errorf("line %d: timeframe: %w", v.Line, err)
			}
		case "logsource":
			if v.Kind != yaml.MappingNode {
				return nil, fail(v.Line, "logsource: expected a mapping")
			}
			r.Logsource = Logsource{
				Product:    scalarOf(mapGet(v, "product")),
				Category:   scalarOf(mapGet(v, "category")),
				Service:    scalarOf(mapGet(v, "service")),
				Definition: scalarOf(mapGet(v, "definition")),
			}
		}
		if err != nil {
			return nil, &LoadError{Path: path, Reason: err.Error()}
		}
	}
	if r.Title == "" {
		return nil, fail(root.Line, "title: missing")
	}
	if c := mapGet(root, "correlation"); c != nil {
		corr, err := parseCorrelation(c)
		if err != nil {
			return nil, &LoadError{Path: path, Reason: "correlation: " + err.Error()}
		}
		r.Correlation = corr
		return r, nil
	}
	d := mapGet(root, "detection")
	if d == nil {
		return nil, fail(root.Line, "detection: missing")
	}
	det, err := parseDetection(d)
	if err != nil {
		return nil, &LoadError{Path: path, Reason: "detection: " + err.Error()}
	}
	if det.agg != nil && det.agg.window == 0 {
		det.agg.window = r.Timeframe
		if det.agg.window == 0 {
			return nil, fail(root.Line, "timeframe: required by the aggregation in the condition")
		}
	}
	// Validate values and modifiers now so a bad rule fails at load; the
	// pipeline-specific compile happens in Compile.
	if _, err := compileDetection(det, nil, func(string) int32 { return 0 }); err != nil {
		return nil, &LoadError{Path: path, Reason: err.Error()}
	}
	r.det = det
	return r, nil
}

// parseTimespan parses Sigma durations: 30s, 5m, 1h, 2d, 1w.
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid timespan %q", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid timespan %q", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("invalid timespan unit in %q (want s, m, h, d or w)", s)
	}
	return time.Duration(n) * unit, nil
}

func parseDetection(d *yaml.Node) (*detection, error) {
	if d.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping", d.Line)
	}
	det := &detection{searches: map[string]*search{}}
	var condNode *yaml.Node
	for i := 0; i+1 < len(d.Content); i += 2 {
		k, v := d.Content[i], d.Content[i+1]
		switch k.Value {
		case "condition":
			condNode = v
			continue
		case "timeframe":
			continue
		}
		s, err := parseSearch(k.Value, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Value, err)
		}
		if _, dup := det.searches[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %s: defined twice", k.Line, k.Value)
		}
		det.searches[k.Value] = s
		det.order = append(det.order, k.Value)
	}
	if condNode == nil {
		return nil, fmt.Errorf("line %d: condition: missing", d.Line)
	}
	var conds []string
	switch condNode.Kind {
	case yaml.ScalarNode:
		conds = []string{condNode.Value}
	case yaml.SequenceNode:
		for _, c := range condNode.Content {
			conds = append(conds, c.Value)
		}
	}
	if len(conds) == 0 || strings.TrimSpace(strings.Join(conds, "")) == "" {
		return nil, fmt.Errorf("line %d: condition: empty", condNode.Line)
	}
	// A list of conditions is their disjunction (Sigma 1.0 semantics).
	for _, c := range conds {
		node, agg, err := parseCondition(c)
		if err != nil {
			return nil, fmt.Errorf("line %d: condition: %w", condNode.Line, err)
		}
		if agg != nil {
			if len(conds) > 1 || det.agg != nil {
				return nil, fmt.Errorf("line %d: condition: an aggregation needs a single condition", condNode.Line)
			}
			det.agg = agg
		}
		if err := checkRefs(node, det); err != nil {
			return nil, fmt.Errorf("line %d: condition: %w", condNode.Line, err)
		}
		if det.cond == nil {
			det.cond = node
		} else {
			det.cond = &condBin{and: false, l: det.cond, r: node}
		}
	}
	return det, nil
}

func parseSearch(name string, v *yaml.Node) (*search, error) {
	s := &search{name: name}
	switch v.Kind {
	case yaml.MappingNode:
		fs, err := parseFieldSet(v)
		if err != nil {
			return nil, err
		}
		s.alts = []fieldSet{fs}
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			return nil, fmt.Errorf("line %d: empty list", v.Line)
		}
		if v.Content[0].Kind == yaml.MappingNode {
			for _, c := range v.Content {
				if c.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: list mixes maps and values", c.Line)
				}
				fs, err := parseFieldSet(c)
				if err != nil {
					return nil, err
				}
				s.alts = append(s.alts, fs)
			}
		} else {
			vals, err := scalarValues(v)
			if err != nil {
				return nil, err
			}
			s.alts = []fieldSet{{{values: vals, line: v.Line}}}
		}
	case yaml.ScalarNode:
		// A single keyword.
		vals, err := scalarValues(v)
		if err != nil {
			return nil, err
		}
		s.alts = []fieldSet{{{values: vals, line: v.Line}}}
	default:
		return nil, fmt.Errorf("line %d: unsupported search form", v.Line)
	}
	return s, nil
}

func parseFieldSet(m *yaml.Node) (fieldSet, error) {
	var fs fieldSet
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		parts := strings.Split(k.Value, "|")
		vals, err := scalarValues(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Value, err)
		}
		mods := parts[1:]
		for _, md := range mods {
			if !knownModifiers[md] {
				return nil, fmt.Errorf("line %d: %s: unknown modifier %q", k.Line, k.Value, md)
			}
		}
		fs = append(fs, fieldItem{field: parts[0], mods: mods, values: vals, line: k.Line})
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("line %d: empty map", m.Line)
	}
	return fs, nil
}

func scalarValues(v *yaml.Node) ([]any, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		x, err := scalarValue(v)
		if err != nil {
			return nil, err
		}
		return []any{x}, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(v.Content))
		for _, c := range v.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: nested lists or maps are not allowed as values", c.Line)
			}
			x, err := scalarValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		if len(out) == 0 {
			// An empty list matches nothing; keep it explicit.
			return out, nil
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: expected a value or a list of values", v.Line)
}

func scalarValue(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			// Octal/hex spellings: keep the text.
			if i, err2 := strconv.ParseInt(n.Value, 0, 64); err2 == nil {
				return float64(i), nil
			}
			return n.Value, nil
		}
		return f, nil
	}
	return n.Value, nil
}

var knownModifiers = map[string]bool{
	"contains": true, "startswith": true, "endswith": true, "all": true, "re": true,
	"i": true, "m": true, "s": true, "cidr": true, "base64": true, "base64offset": true,
	"utf16le": true, "utf16be": true, "utf16": true, "wide": true, "windash": true,
	"exists": true, "cased": true, "fieldref": true, "lt": true, "lte": true, "gt": true,
	"gte": true, "expand": true,
}

func parseCorrelation(c *yaml.Node) (*Correlation, error) {
	if c.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping", c.Line)
	}
	corr := &Correlation{Type: scalarOf(mapGet(c, "type"))}
	switch corr.Type {
	case "event_count", "value_count", "temporal", "temporal_ordered", "silence":
	case "":
		return nil, fmt.Errorf("line %d: type: missing", c.Line)
	default:
		return nil, fmt.Errorf("line %d: type: unsupported %q", c.Line, corr.Type)
	}
	var err error
	if corr.Rules, err = stringList(mapGet(c, "rules"), "rules"); err != nil {
		return nil, err
	}
	if len(corr.Rules) == 0 {
		return nil, fmt.Errorf("line %d: rules: missing", c.Line)
	}
	if corr.GroupBy, err = stringList(mapGet(c, "group-by"), "group-by"); err != nil {
		return nil, err
	}
	ts := mapGet(c, "timespan")
	if ts == nil {
		ts = mapGet(c, "timeframe")
	}
	if ts == nil {
		return nil, fmt.Errorf("line %d: timespan: missing", c.Line)
	}
	if corr.Timespan, err = parseTimespan(ts.Value); err != nil {
		return nil, fmt.Errorf("line %d: timespan: %w", ts.Line, err)
	}
	if g := mapGet(c, "generate"); g != nil {
		corr.Generate = g.Value == "true"
	}
	if a := mapGet(c, "aliases"); a != nil {
		if a.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: aliases: expected a mapping", a.Line)
		}
		corr.Aliases = map[string]map[string]string{}
		for i := 0; i+1 < len(a.Content); i += 2 {
			m := map[string]string{}
			v := a.Content[i+1]
			for j := 0; j+1 < len(v.Content); j += 2 {
				m[v.Content[j].Value] = v.Content[j+1].Value
			}
			corr.Aliases[a.Content[i].Value] = m
		}
	}
	cond := mapGet(c, "condition")
	corr.Condition = map[string]float64{}
	if cond != nil {
		if cond.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: condition: expected a mapping", cond.Line)
		}
		for i := 0; i+1 < len(cond.Content); i += 2 {
			k, v := cond.Content[i].Value, cond.Content[i+1]
			switch k {
			case "field":
				corr.Field = v.Value
			case "gt", "gte", "lt", "lte", "eq", "neq":
				f, err := strconv.ParseFloat(v.Value, 64)
				if err != nil {
					return nil, fmt.Errorf("line %d: condition: %s: not a number", v.Line, k)
				}
				corr.Condition[k] = f
			default:
				return nil, fmt.Errorf("line %d: condition: unknown operator %q", cond.Content[i].Line, k)
			}
		}
	}
	switch corr.Type {
	case "event_count", "value_count":
		if len(corr.Condition) == 0 {
			return nil, fmt.Errorf("line %d: condition: missing", c.Line)
		}
	case "temporal", "temporal_ordered":
		if len(corr.Condition) == 0 {
			// Default: every referenced rule must have fired.
			corr.Condition["gte"] = float64(len(corr.Rules))
		}
	}
	if corr.Type == "value_count" && corr.Field == "" {
		return nil, fmt.Errorf("line %d: condition: field: required for value_count", c.Line)
	}
	return corr, nil
}
