package compliance

import (
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// outcome is a test's tri-state answer: the facts needed may be missing.
type outcome int8

const (
	unknown outcome = iota
	pass
	fail
)

func okOf(b bool) outcome {
	if b {
		return pass
	}
	return fail
}

// test is one compiled condition over Facts. eval appends the facts it
// looked at to ev.
type test interface {
	eval(f *Facts, ev *[]Evidence) outcome
	needs(n FactNeeds)
}

// testTypes lists the condition keys, for error messages.
var testTypes = []string{"all", "any", "none", "file_exists", "file_absent", "file_contains", "file_matches", "file_mode",
	"package_installed", "package_absent", "package_min_version", "service_enabled", "service_running",
	"sysctl", "command", "port_listening", "port_absent"}

// maxDepth bounds combinator nesting.
const maxDepth = 8

func (p *parser) test(n *yaml.Node, what string) test {
	return p.testDepth(n, what, 0)
}

func (p *parser) testDepth(n *yaml.Node, what string, depth int) test {
	n = deref(n)
	if depth > maxDepth {
		p.errf(n, "%s: conditions nested deeper than %d", what, maxDepth)
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errf(n, "%s: expected a mapping with exactly one condition (one of: %s)", what, strings.Join(testTypes, ", "))
		return nil
	}
	k, v := n.Content[0], deref(n.Content[1])
	what = what + "." + k.Value
	switch k.Value {
	case "all", "any", "none":
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			p.errf(v, "%s: expected a non-empty list of conditions", what)
			return nil
		}
		c := &combinator{op: k.Value}
		for i, cn := range v.Content {
			if t := p.testDepth(cn, fmt.Sprintf("%s[%d]", what, i), depth+1); t != nil {
				c.children = append(c.children, t)
			}
		}
		return c
	case "file_exists", "file_absent":
		pth := p.pathArg(v, what)
		return &fileExists{path: pth, want: k.Value == "file_exists"}
	case "file_contains":
		m := p.mapping(v, what, "path", "text")
		pth := p.pathArg(m["path"], what+".path")
		txt := p.scalar(v, m, "text", what)
		p.contentPath(m["path"], what, pth)
		return &fileMatch{path: pth, text: txt}
	case "file_matches":
		m := p.mapping(v, what, "path", "regex")
		pth := p.pathArg(m["path"], what+".path")
		re := p.regex(v, m, "regex", what)
		p.contentPath(m["path"], what, pth)
		return &fileMatch{path: pth, re: re}
	case "file_mode":
		m := p.mapping(v, what, "path", "max_mode", "owner", "group")
		t := &fileMode{path: p.pathArg(m["path"], what+".path"), mode: -1}
		if mn, ok := m["max_mode"]; ok {
			mv, err := strconv.ParseUint(deref(mn).Value, 8, 32)
			if err != nil || mv > 0o7777 {
				p.errf(mn, "%s.max_mode: %q is not an octal mode like \"0644\"", what, deref(mn).Value)
			}
			t.mode = int64(mv)
		}
		if on, ok := m["owner"]; ok {
			t.owner = deref(on).Value
		}
		if gn, ok := m["group"]; ok {
			t.group = deref(gn).Value
		}
		if t.mode < 0 && t.owner == "" && t.group == "" {
			p.errf(v, "%s: give max_mode, owner or group", what)
		}
		return t
	case "package_installed", "package_absent":
		return &pkgTest{name: p.nameArg(v, what), want: k.Value == "package_installed"}
	case "package_min_version":
		m := p.mapping(v, what, "name", "version")
		t := &pkgMin{name: p.scalar(v, m, "name", what), raw: p.scalar(v, m, "version", what)}
		if t.raw != "" {
			dv, err := ParseDebVersion(t.raw)
			if err != nil {
				p.errf(m["version"], "%s.version: %v", what, err)
			}
			t.ver = dv
		}
		return t
	case "service_enabled", "service_running":
		return &svcTest{unit: serviceUnit(p.nameArg(v, what)), enabled: k.Value == "service_enabled"}
	case "sysctl":
		m := p.mapping(v, what, "key", "value")
		t := &sysctlTest{key: p.scalar(v, m, "key", what), value: strings.Join(strings.Fields(p.scalar(v, m, "value", what)), " ")}
		if t.key != "" && !agentproto.SysctlKeyValid(t.key) {
			p.errf(m["key"], "%s.key: %q is not a sysctl key like net.ipv4.ip_forward", what, t.key)
		}
		return t
	case "command":
		m := p.mapping(v, what, "name", "contains", "matches", "not_matches", "empty", "exit_code")
		t := &cmdTest{name: p.scalar(v, m, "name", what), exit: -1}
		if _, ok := agentproto.AllowedCommand(t.name); t.name != "" && !ok {
			p.errf(m["name"], "%s.name: command %q is not on the allow-list (%s)", what, t.name, strings.Join(agentproto.AllowedCommands(), ", "))
		}
		n := 0
		if _, ok := m["contains"]; ok {
			t.contains = p.scalar(v, m, "contains", what)
			n++
		}
		if _, ok := m["matches"]; ok {
			t.re = p.regex(v, m, "matches", what)
			n++
		}
		if _, ok := m["not_matches"]; ok {
			t.notRe = p.regex(v, m, "not_matches", what)
			n++
		}
		if en, ok := m["empty"]; ok {
			b, err := strconv.ParseBool(deref(en).Value)
			if err != nil {
				p.errf(en, "%s.empty: expected true or false", what)
			}
			t.empty, t.emptySet = b, true
			n++
		}
		if en, ok := m["exit_code"]; ok {
			c, err := strconv.Atoi(deref(en).Value)
			if err != nil || c < 0 || c > 255 {
				p.errf(en, "%s.exit_code: expected 0-255", what)
			}
			t.exit = c
			n++
		}
		if n == 0 {
			p.errf(v, "%s: give contains, matches, not_matches, empty or exit_code", what)
		}
		return t
	case "port_listening", "port_absent":
		t := &portTest{want: k.Value == "port_listening"}
		if v.Kind == yaml.MappingNode {
			m := p.mapping(v, what, "port", "proto")
			t.port = p.portArg(m["port"], what)
			t.proto = p.scalar(v, m, "proto", what)
			if t.proto != "tcp" && t.proto != "tcp6" {
				p.errf(m["proto"], "%s.proto: must be tcp or tcp6", what)
			}
		} else {
			t.port = p.portArg(v, what)
		}
		return t
	}
	p.errf(k, "%s: unknown test type %q (known: %s)", strings.TrimSuffix(what, "."+k.Value), k.Value, strings.Join(testTypes, ", "))
	return nil
}

func (p *parser) scalar(parent *yaml.Node, m map[string]*yaml.Node, key, what string) string {
	if m == nil {
		return ""
	}
	n, ok := m[key]
	if !ok {
		p.errf(parent, "%s.%s: is required", what, key)
		return ""
	}
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		p.errf(n, "%s.%s: expected a non-empty string, got %s", what, key, kind(n))
		return ""
	}
	return n.Value
}

func (p *parser) pathArg(n *yaml.Node, what string) string {
	if n == nil {
		p.errf(nil, "%s: is required", what)
		return ""
	}
	n = deref(n)
	if n.Kind != yaml.ScalarNode || !path.IsAbs(n.Value) || path.Clean(n.Value) != n.Value || len(n.Value) > 4096 {
		p.errf(n, "%s: expected an absolute, clean file path, got %s", what, kind(n))
		return ""
	}
	return n.Value
}

func (p *parser) contentPath(n *yaml.Node, what, pth string) {
	if pth != "" && !agentproto.ContentAllowed(pth) {
		p.errf(n, "%s: the content of %s is never collected (a secret store)", what, pth)
	}
}

func (p *parser) nameArg(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Value == "" || strings.ContainsAny(n.Value, " \t/") {
		p.errf(n, "%s: expected a name, got %s", what, kind(n))
		return ""
	}
	return n.Value
}

func (p *parser) portArg(n *yaml.Node, what string) int {
	if n == nil {
		p.errf(nil, "%s.port: is required", what)
		return 0
	}
	n = deref(n)
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 1 || v > 65535 {
		p.errf(n, "%s: expected a port 1-65535, got %s", what, kind(n))
	}
	return v
}

// pattern is a compiled regex with a literal every match must contain:
// when the text lacks it, the regex need not run (most failing checks).
type pattern struct {
	re  *regexp.Regexp
	lit string
}

func (pt *pattern) find(s string) []int {
	if pt.lit != "" && !strings.Contains(s, pt.lit) {
		return nil
	}
	return pt.re.FindStringIndex(s)
}

// requiredLiteral returns the longest case-sensitive literal that every
// match of re contains, or "".
func requiredLiteral(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return ""
		}
		return string(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiteral(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiteral(re.Sub[0])
		}
	case syntax.OpConcat:
		best := ""
		for _, sub := range re.Sub {
			if l := requiredLiteral(sub); len(l) > len(best) {
				best = l
			}
		}
		return best
	}
	return ""
}

func (p *parser) regex(parent *yaml.Node, m map[string]*yaml.Node, key, what string) *pattern {
	s := p.scalar(parent, m, key, what)
	if s == "" {
		return nil
	}
	// (?m): ^ and $ match at line boundaries, which is what config
	// file tests mean.
	re, err := regexp.Compile("(?m)" + s)
	if err != nil {
		p.errf(m[key], "%s.%s: regex does not compile: %v", what, key, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	pt := &pattern{re: re}
	if tree, err := syntax.Parse("(?m)"+s, syntax.Perl); err == nil {
		pt.lit = requiredLiteral(tree)
	}
	return pt
}

// --- conditions ---

type combinator struct {
	op       string
	children []test
}

func (c *combinator) needs(n FactNeeds) {
	for _, t := range c.children {
		t.needs(n)
	}
}

func (c *combinator) eval(f *Facts, ev *[]Evidence) outcome {
	var passed, failed, unk int
	for _, t := range c.children {
		switch t.eval(f, ev) {
		case pass:
			passed++
		case fail:
			failed++
		default:
			unk++
		}
	}
	switch c.op {
	case "all":
		if failed > 0 {
			return fail
		}
		if unk > 0 {
			return unknown
		}
		return pass
	case "any":
		if passed > 0 {
			return pass
		}
		if unk > 0 {
			return unknown
		}
		return fail
	default: // none
		if passed > 0 {
			return fail
		}
		if unk > 0 {
			return unknown
		}
		return pass
	}
}

func missing(ev *[]Evidence, test, subject, why string) outcome {
	*ev = append(*ev, Evidence{Test: test, Subject: subject, Observed: why})
	return unknown
}

type fileExists struct {
	path string
	want bool
}

func (t *fileExists) needs(n FactNeeds) { n.files[t.path] = true }

func (t *fileExists) eval(f *Facts, ev *[]Evidence) outcome {
	name := "file_absent"
	if t.want {
		name = "file_exists"
	}
	ff := f.Files[t.path]
	if ff == nil {
		return missing(ev, name, t.path, "not collected")
	}
	obs := "absent"
	if ff.Exists {
		obs = "exists"
	}
	ok := ff.Exists == t.want
	*ev = append(*ev, Evidence{Test: name, Subject: t.path, Observed: obs, OK: ok})
	return okOf(ok)
}

type fileMatch struct {
	path string
	text string
	re   *pattern
}

func (t *fileMatch) needs(n FactNeeds) { n.files[t.path] = true; n.contents[t.path] = true }

func (t *fileMatch) eval(f *Facts, ev *[]Evidence) outcome {
	name := "file_matches"
	if t.re == nil {
		name = "file_contains"
	}
	ff := f.Files[t.path]
	switch {
	case ff == nil || (ff.Exists && !ff.HasContent && ff.Error == ""):
		return missing(ev, name, t.path, "content not collected")
	case !ff.Exists:
		*ev = append(*ev, Evidence{Test: name, Subject: t.path, Observed: "file absent"})
		return fail
	case ff.Error != "":
		return missing(ev, name, t.path, "unreadable: "+ff.Error)
	}
	var line string
	var ok bool
	if t.re != nil {
		if loc := t.re.find(ff.Content); loc != nil {
			ok, line = true, lineAt(ff.Content, loc[0])
		}
	} else if i := strings.Index(ff.Content, t.text); i >= 0 {
		ok, line = true, lineAt(ff.Content, i)
	}
	obs := "no line matches"
	if ok {
		obs = "matched: " + line
	}
	if ff.Truncated && !ok {
		obs += " (file truncated at collection)"
	}
	*ev = append(*ev, Evidence{Test: name, Subject: t.path, Observed: obs, OK: ok})
	return okOf(ok)
}

// lineAt returns the line of s containing offset i, at most 200 bytes.
func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		end = len(s)
	} else {
		end += i
	}
	l := strings.TrimSpace(s[start:end])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

type fileMode struct {
	path         string
	mode         int64
	owner, group string
}

func (t *fileMode) needs(n FactNeeds) { n.files[t.path] = true }

func (t *fileMode) eval(f *Facts, ev *[]Evidence) outcome {
	ff := f.Files[t.path]
	if ff == nil {
		return missing(ev, "file_mode", t.path, "not collected")
	}
	if !ff.Exists {
		*ev = append(*ev, Evidence{Test: "file_mode", Subject: t.path, Observed: "file absent"})
		return fail
	}
	ok := true
	if t.mode >= 0 && int64(ff.Mode)&^t.mode != 0 {
		ok = false
	}
	if t.owner != "" && ff.Owner != t.owner && strconv.Itoa(ff.UID) != t.owner {
		ok = false
	}
	if t.group != "" && ff.Group != t.group && strconv.Itoa(ff.GID) != t.group {
		ok = false
	}
	*ev = append(*ev, Evidence{Test: "file_mode", Subject: t.path,
		Observed: fmt.Sprintf("mode %04o owner %s group %s", ff.Mode, orID(ff.Owner, ff.UID), orID(ff.Group, ff.GID)), OK: ok})
	return okOf(ok)
}

func orID(name string, id int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(id)
}

type pkgTest struct {
	name string
	want bool
}

func (t *pkgTest) needs(FactNeeds) {}

func (t *pkgTest) eval(f *Facts, ev *[]Evidence) outcome {
	name := "package_absent"
	if t.want {
		name = "package_installed"
	}
	if !f.PackagesKnown {
		return missing(ev, name, t.name, "package list not collected")
	}
	v, ok := f.Packages[t.name]
	obs := "not installed"
	if ok {
		obs = "installed " + v
	}
	good := ok == t.want
	*ev = append(*ev, Evidence{Test: name, Subject: t.name, Observed: obs, OK: good})
	return okOf(good)
}

type pkgMin struct {
	name string
	raw  string
	ver  DebVersion
}

func (t *pkgMin) needs(FactNeeds) {}

func (t *pkgMin) eval(f *Facts, ev *[]Evidence) outcome {
	if !f.PackagesKnown {
		return missing(ev, "package_min_version", t.name, "package list not collected")
	}
	v, ok := f.Packages[t.name]
	if !ok {
		*ev = append(*ev, Evidence{Test: "package_min_version", Subject: t.name, Observed: "not installed"})
		return fail
	}
	have, err := ParseDebVersion(v)
	if err != nil {
		return missing(ev, "package_min_version", t.name, "unparsable version "+v)
	}
	good := CompareDebVersions(have, t.ver) >= 0
	*ev = append(*ev, Evidence{Test: "package_min_version", Subject: t.name, Observed: fmt.Sprintf("installed %s (need ≥ %s)", v, t.raw), OK: good})
	return okOf(good)
}

type svcTest struct {
	unit    string
	enabled bool
}

func (t *svcTest) needs(FactNeeds) {}

func (t *svcTest) eval(f *Facts, ev *[]Evidence) outcome {
	if t.enabled {
		if !f.EnabledKnown {
			return missing(ev, "service_enabled", t.unit, "enabled services not collected")
		}
		ok := f.Enabled[t.unit]
		*ev = append(*ev, Evidence{Test: "service_enabled", Subject: t.unit, Observed: map[bool]string{true: "enabled", false: "not enabled"}[ok], OK: ok})
		return okOf(ok)
	}
	if !f.RunningKnown {
		return missing(ev, "service_running", t.unit, "running services not collected")
	}
	ok := f.Running[t.unit]
	*ev = append(*ev, Evidence{Test: "service_running", Subject: t.unit, Observed: map[bool]string{true: "running", false: "not running"}[ok], OK: ok})
	return okOf(ok)
}

type sysctlTest struct{ key, value string }

func (t *sysctlTest) needs(n FactNeeds) { n.sysctls[t.key] = true }

func (t *sysctlTest) eval(f *Facts, ev *[]Evidence) outcome {
	s, ok := f.Sysctls[t.key]
	if !ok {
		return missing(ev, "sysctl", t.key, "not collected")
	}
	if !s.Found {
		*ev = append(*ev, Evidence{Test: "sysctl", Subject: t.key, Observed: "key does not exist"})
		return fail
	}
	got := strings.Join(strings.Fields(s.Value), " ")
	good := got == t.value
	*ev = append(*ev, Evidence{Test: "sysctl", Subject: t.key, Observed: fmt.Sprintf("%s (want %s)", got, t.value), OK: good})
	return okOf(good)
}

type cmdTest struct {
	name            string
	contains        string
	re, notRe       *pattern
	empty, emptySet bool
	exit            int
}

func (t *cmdTest) needs(n FactNeeds) { n.commands[t.name] = true }

func (t *cmdTest) eval(f *Facts, ev *[]Evidence) outcome {
	c := f.Commands[t.name]
	switch {
	case c == nil:
		return missing(ev, "command", t.name, "not collected")
	case c.Missing:
		return missing(ev, "command", t.name, "program not installed")
	case c.Error != "":
		return missing(ev, "command", t.name, "failed: "+c.Error)
	}
	ok := true
	var obs []string
	if t.exit >= 0 {
		ok = ok && c.ExitCode == t.exit
		obs = append(obs, fmt.Sprintf("exit %d", c.ExitCode))
	}
	if t.contains != "" {
		i := strings.Index(c.Output, t.contains)
		ok = ok && i >= 0
		if i >= 0 {
			obs = append(obs, "matched: "+lineAt(c.Output, i))
		} else {
			obs = append(obs, fmt.Sprintf("output lacks %q", t.contains))
		}
	}
	if t.re != nil {
		loc := t.re.find(c.Output)
		ok = ok && loc != nil
		if loc != nil {
			obs = append(obs, "matched: "+lineAt(c.Output, loc[0]))
		} else {
			obs = append(obs, "no line matches")
		}
	}
	if t.notRe != nil {
		loc := t.notRe.find(c.Output)
		ok = ok && loc == nil
		if loc != nil {
			obs = append(obs, "unwanted line: "+lineAt(c.Output, loc[0]))
		}
	}
	if t.emptySet {
		isEmpty := strings.TrimSpace(c.Output) == ""
		ok = ok && isEmpty == t.empty
		if !isEmpty {
			obs = append(obs, fmt.Sprintf("%d output lines, first: %s", strings.Count(strings.TrimSpace(c.Output), "\n")+1, lineAt(c.Output, 0)))
		} else {
			obs = append(obs, "no output")
		}
	}
	*ev = append(*ev, Evidence{Test: "command", Subject: t.name, Observed: strings.Join(obs, "; "), OK: ok})
	return okOf(ok)
}

type portTest struct {
	port  int
	proto string
	want  bool
}

func (t *portTest) needs(FactNeeds) {}

func (t *portTest) eval(f *Facts, ev *[]Evidence) outcome {
	name := "port_absent"
	if t.want {
		name = "port_listening"
	}
	subject := strconv.Itoa(t.port)
	if t.proto != "" {
		subject = t.proto + "/" + subject
	}
	if !f.PortsKnown {
		return missing(ev, name, subject, "listening ports not collected")
	}
	var found []string
	for _, p := range f.Ports {
		if p.Port == t.port && (t.proto == "" || p.Proto == t.proto) {
			found = append(found, p.Proto+" "+p.Addr)
		}
	}
	obs := "not listening"
	if len(found) > 0 {
		obs = "listening on " + strings.Join(found, ", ")
	}
	good := (len(found) > 0) == t.want
	*ev = append(*ev, Evidence{Test: name, Subject: subject, Observed: obs, OK: good})
	return okOf(good)
}
