package compliance

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadError is one reason a policy file was refused, located by line.
type LoadError struct {
	File   string
	Line   int
	Reason string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// MaxPolicyBytes bounds one policy file.
const MaxPolicyBytes = 1 << 20

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,99}$`)

// Severities a check may have.
var severities = map[string]bool{"low": true, "medium": true, "high": true, "critical": true}

// ParsePolicy parses one policy document. Every problem is reported as a
// *LoadError with file:line; a policy with any problem is refused whole.
func ParsePolicy(file string, src []byte, source string) (*Policy, error) {
	if len(src) > MaxPolicyBytes {
		return nil, &LoadError{File: file, Reason: fmt.Sprintf("policy is larger than %d bytes", MaxPolicyBytes)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		return nil, &LoadError{File: file, Line: yamlErrLine(err), Reason: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &LoadError{File: file, Line: extra.Line, Reason: "one policy per file: a second YAML document follows"}
	}
	p := &parser{file: file}
	pol := p.policy(&doc)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	pol.Source, pol.File, pol.Raw = source, file, string(src)
	return pol, nil
}

var lineNumRe = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := lineNumRe.FindStringSubmatch(err.Error()); m != nil {
		var n int
		fmt.Sscan(m[1], &n)
		return n
	}
	return 0
}

// LoadDir parses every *.yml and *.yaml file of fsys (not recursive) in
// name order. A refused file adds its errors; the others still load.
// Files are named display/name in errors (display "" means dir).
func LoadDir(fsys fs.FS, dir, display, source string) ([]*Policy, []error) {
	if display == "" {
		display = dir
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read policies %s: %w", dir, err)}
	}
	var out []*Policy
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
			continue
		}
		p := path.Join(dir, name)
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read policy %s: %w", p, err))
			continue
		}
		pol, err := ParsePolicy(path.Join(display, name), src, source)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, pol)
	}
	return out, errs
}

type parser struct {
	file string
	errs []error
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &LoadError{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

// mapping returns n's key/value pairs, reporting unknown or repeated keys.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: expected a mapping, got %s", what, kind(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if len(known) > 0 && !contains(known, k.Value) {
			p.errf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errf(k, "%s: key %q repeated", what, k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode) {
		if n.Kind == yaml.DocumentNode {
			if len(n.Content) == 0 {
				return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
			}
			n = n.Content[0]
		} else {
			n = n.Alias
		}
	}
	return n
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// str reads a required (or optional) string scalar.
func (p *parser) str(parent *yaml.Node, m map[string]*yaml.Node, key, what string, required bool) string {
	n, ok := m[key]
	if !ok {
		if required {
			p.errf(deref(parent), "%s.%s: is required", what, key)
		}
		return ""
	}
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n, "%s.%s: expected a string, got %s", what, key, kind(n))
		return ""
	}
	return n.Value
}

func (p *parser) policy(doc *yaml.Node) *Policy {
	root := deref(doc)
	m := p.mapping(root, "policy file", "policy", "checks")
	if m == nil {
		return nil
	}
	pol := &Policy{}
	if pn, ok := m["policy"]; ok {
		pm := p.mapping(pn, "policy", "id", "name", "description")
		if pm != nil {
			pol.ID = p.str(pn, pm, "id", "policy", true)
			pol.Name = p.str(pn, pm, "name", "policy", true)
			pol.Description = p.str(pn, pm, "description", "policy", false)
			if _, ok := pm["id"]; ok && !idRe.MatchString(pol.ID) {
				p.errf(keyNode(pn, "id"), "policy.id: %q must be 1-100 lowercase letters, digits, '.', '_' or '-'", pol.ID)
			}
		}
	} else {
		p.errf(root, "policy: is required (id, name, description)")
	}
	cn, ok := m["checks"]
	if !ok {
		p.errf(root, "checks: is required (a list of checks)")
		return pol
	}
	cn = deref(cn)
	if cn.Kind != yaml.SequenceNode || len(cn.Content) == 0 {
		p.errf(cn, "checks: expected a non-empty list, got %s", kind(cn))
		return pol
	}
	seen := map[string]bool{}
	for i, c := range cn.Content {
		ch := p.check(c, i)
		if ch == nil {
			continue
		}
		if seen[ch.ID] {
			p.errf(keyNode(c, "id"), "checks[%d].id: %q repeated", i, ch.ID)
			continue
		}
		seen[ch.ID] = true
		ch.Policy = pol.ID
		pol.Checks = append(pol.Checks, ch)
	}
	return pol
}

// keyNode returns the value node of key in mapping n (for its line), or n.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return n
}

func (p *parser) check(n *yaml.Node, i int) *Check {
	what := fmt.Sprintf("checks[%d]", i)
	m := p.mapping(n, what, "id", "title", "rationale", "remediation", "severity", "controls", "test")
	if m == nil {
		return nil
	}
	before := len(p.errs)
	c := &Check{Line: deref(n).Line, Controls: map[string][]string{}}
	c.ID = p.str(n, m, "id", what, true)
	if _, ok := m["id"]; ok && !idRe.MatchString(c.ID) {
		p.errf(keyNode(n, "id"), "%s.id: %q must be 1-100 lowercase letters, digits, '.', '_' or '-'", what, c.ID)
	}
	what = fmt.Sprintf("check %q", c.ID)
	c.Title = p.str(n, m, "title", what, true)
	c.Rationale = p.str(n, m, "rationale", what, false)
	c.Remediation = p.str(n, m, "remediation", what, false)
	c.Severity = p.str(n, m, "severity", what, false)
	if c.Severity == "" {
		c.Severity = "medium"
	}
	if !severities[c.Severity] {
		p.errf(keyNode(n, "severity"), "%s: severity %q must be low, medium, high or critical", what, c.Severity)
	}
	if cn, ok := m["controls"]; ok {
		cm := p.mapping(cn, what+".controls")
		for fw, ids := range cm {
			ids = deref(ids)
			var list []*yaml.Node
			switch ids.Kind {
			case yaml.ScalarNode:
				list = []*yaml.Node{ids}
			case yaml.SequenceNode:
				list = ids.Content
			default:
				p.errf(ids, "%s.controls.%s: expected a control id or a list of them", what, fw)
				continue
			}
			for _, idn := range list {
				idn = deref(idn)
				if idn.Kind != yaml.ScalarNode {
					p.errf(idn, "%s.controls.%s: expected a control id, got %s", what, fw, kind(idn))
					continue
				}
				if err := ValidateControl(fw, idn.Value); err != nil {
					p.errf(idn, "%s: %v", what, err)
					continue
				}
				if !contains(c.Controls[fw], idn.Value) {
					c.Controls[fw] = append(c.Controls[fw], idn.Value)
				}
			}
		}
	}
	if len(c.Controls) == 0 {
		p.errf(n, "%s: controls: at least one framework control is required", what)
	}
	for fw := range c.Controls {
		sort.Slice(c.Controls[fw], func(a, b int) bool { return CompareControls(c.Controls[fw][a], c.Controls[fw][b]) < 0 })
	}
	tn, ok := m["test"]
	if !ok {
		p.errf(n, "%s: test is required", what)
	} else {
		c.test = p.test(tn, what+".test")
		if out, err := yaml.Marshal(deref(tn)); err == nil {
			c.TestText = strings.TrimSpace(string(out))
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return c
}
