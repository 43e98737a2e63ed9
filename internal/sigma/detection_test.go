package sigma

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type ev = MapEvent

// detectionCases is a table of small rules × events covering every
// modifier and condition form; want[i] is whether events[i] matches.
var detectionCases = []struct {
	name   string
	det    string
	events []MapEvent
	want   []bool
}{
	{"plain equality is case-insensitive", "sel: {Image: 'C:\\Windows\\cmd.exe'}\ncondition: sel",
		[]MapEvent{{"Image": `c:\windows\CMD.EXE`}, {"Image": `c:\windows\cmd.exe2`}, {}}, []bool{true, false, false}},
	{"list of values is OR", "sel: {User: [alice, bob]}\ncondition: sel",
		[]MapEvent{{"User": "Bob"}, {"User": "carol"}}, []bool{true, false}},
	{"map is AND", "sel: {A: x, B: y}\ncondition: sel",
		[]MapEvent{{"A": "x", "B": "y"}, {"A": "x", "B": "z"}}, []bool{true, false}},
	{"list of maps is OR", "sel:\n  - {A: x}\n  - {B: y}\ncondition: sel",
		[]MapEvent{{"B": "y"}, {"A": "y"}}, []bool{true, false}},
	{"wildcards", "sel: {F: 'a*c?e'}\ncondition: sel",
		[]MapEvent{{"F": "abbbcde"}, {"F": "ACXE"}, {"F": "ace"}, {"F": "abcdef"}}, []bool{true, true, false, false}},
	{"escaped wildcards", "sel: {F: 'a\\*b\\?c\\\\'}\ncondition: sel",
		[]MapEvent{{"F": `a*b?c\`}, {"F": `axb?c\`}}, []bool{true, false}},
	{"backslash before a wildcard", "sel: {F: 'C:\\\\*\\x.exe'}\ncondition: sel",
		[]MapEvent{{"F": `c:\windows\x.exe`}, {"F": `c:x.exe`}}, []bool{true, false}},
	{"null means absent or null", "sel: {F: null}\ncondition: sel",
		[]MapEvent{{}, {"F": nil}, {"F": ""}}, []bool{true, true, false}},
	{"empty string", "sel: {F: ''}\ncondition: sel",
		[]MapEvent{{"F": ""}, {}, {"F": "x"}}, []bool{true, false, false}},
	{"numbers compare as text", "sel: {EventID: 4688}\ncondition: sel",
		[]MapEvent{{"EventID": 4688.0}, {"EventID": "4688"}, {"EventID": 4689}}, []bool{true, true, false}},
	{"contains", "sel: {CommandLine|contains: 'invoke-'}\ncondition: sel",
		[]MapEvent{{"CommandLine": "powershell Invoke-Expr"}, {"CommandLine": "x"}}, []bool{true, false}},
	{"startswith", "sel: {F|startswith: ab}\ncondition: sel",
		[]MapEvent{{"F": "ABc"}, {"F": "cab"}}, []bool{true, false}},
	{"endswith", "sel: {Image|endswith: '\\cmd.exe'}\ncondition: sel",
		[]MapEvent{{"Image": `C:\x\CMD.exe`}, {"Image": `C:\x\cmd.exe.bak`}}, []bool{true, false}},
	{"contains|all", "sel: {F|contains|all: [a1, b2]}\ncondition: sel",
		[]MapEvent{{"F": "xx b2 a1"}, {"F": "a1 only"}}, []bool{true, false}},
	{"all alone", "sel: {F|all: [x, x]}\ncondition: sel",
		[]MapEvent{{"F": "x"}, {"F": "y"}}, []bool{true, false}},
	{"cased", "sel: {F|cased: Abc}\ncondition: sel",
		[]MapEvent{{"F": "Abc"}, {"F": "abc"}}, []bool{true, false}},
	{"cased contains", "sel: {F|contains|cased: Abc}\ncondition: sel",
		[]MapEvent{{"F": "xAbcx"}, {"F": "xabcx"}}, []bool{true, false}},
	{"re is case-sensitive", "sel: {F|re: '^a[0-9]+$'}\ncondition: sel",
		[]MapEvent{{"F": "a123"}, {"F": "A123"}, {"F": "a12b"}}, []bool{true, false, false}},
	{"re|i", "sel: {F|re|i: '^a[0-9]+$'}\ncondition: sel",
		[]MapEvent{{"F": "A123"}}, []bool{true}},
	{"re|m", "sel: {F|re|m: '^b$'}\ncondition: sel",
		[]MapEvent{{"F": "a\nb\nc"}, {"F": "ab"}}, []bool{true, false}},
	{"re|s", "sel: {F|re|s: 'a.b'}\ncondition: sel",
		[]MapEvent{{"F": "a\nb"}}, []bool{true}},
	{"re unanchored", "sel: {F|re: 'b+'}\ncondition: sel",
		[]MapEvent{{"F": "abbc"}}, []bool{true}},
	{"cidr v4", "sel: {ip|cidr: ['10.0.0.0/8', '192.168.1.0/24']}\ncondition: sel",
		[]MapEvent{{"ip": "10.2.3.4"}, {"ip": "192.168.2.1"}, {"ip": "not-an-ip"}, {"ip": "::ffff:10.1.1.1"}}, []bool{true, false, false, true}},
	{"cidr v6", "sel: {ip|cidr: 'fe80::/10'}\ncondition: sel",
		[]MapEvent{{"ip": "fe80::1"}, {"ip": "2001:db8::1"}}, []bool{true, false}},
	{"base64", "sel: {F|base64: 'hello'}\ncondition: sel",
		[]MapEvent{{"F": "aGVsbG8="}, {"F": "hello"}}, []bool{true, false}},
	{"base64|contains", "sel: {F|base64|contains: 'hello'}\ncondition: sel",
		[]MapEvent{{"F": "xx aGVsbG8= yy"}}, []bool{true}},
	{"base64offset|contains", "sel: {F|base64offset|contains: 'http://'}\ncondition: sel",
		// "http://" at offsets 0, 1 and 2 of the encoded data.
		[]MapEvent{{"F": "aHR0cDovL2V4"}, {"F": "eGh0dHA6Ly9l"}, {"F": "eHhodHRwOi8vZQ=="}, {"F": "aGVsbG8="}}, []bool{true, true, true, false}},
	{"wide|base64offset|contains", "sel: {F|wide|base64offset|contains: 'ping'}\ncondition: sel",
		// base64 of UTF-16LE "ping " and " ping".
		[]MapEvent{{"F": "cABpAG4AZwAgAA=="}, {"F": "IABwAGkAbgBnAA=="}, {"F": "cGluZw=="}}, []bool{true, true, false}},
	{"utf16be|base64", "sel: {F|utf16be|base64: 'ab'}\ncondition: sel",
		[]MapEvent{{"F": "AGEAYg=="}}, []bool{true}},
	{"utf16|base64 has a BOM", "sel: {F|utf16|base64: 'a'}\ncondition: sel",
		[]MapEvent{{"F": "//5hAA=="}}, []bool{true}},
	{"windash", "sel: {CommandLine|contains|windash: ' -enc '}\ncondition: sel",
		[]MapEvent{{"CommandLine": "ps -enc x"}, {"CommandLine": "ps /enc x"}, {"CommandLine": "ps \u2013enc x"}, {"CommandLine": "ps \u2014enc x"}, {"CommandLine": "ps \u2015enc x"}, {"CommandLine": "ps enc x"}},
		[]bool{true, true, true, true, true, false}},
	{"exists true", "sel: {F|exists: true}\ncondition: sel",
		[]MapEvent{{"F": "x"}, {}, {"F": nil}}, []bool{true, false, false}},
	{"exists false", "sel: {F|exists: false}\ncondition: sel",
		[]MapEvent{{"F": "x"}, {}}, []bool{false, true}},
	{"fieldref", "sel: {A|fieldref: B}\ncondition: sel",
		[]MapEvent{{"A": "X", "B": "x"}, {"A": "x", "B": "y"}, {"A": "x"}}, []bool{true, false, false}},
	{"fieldref|endswith", "sel: {A|fieldref|endswith: B}\ncondition: sel",
		[]MapEvent{{"A": "c:\\x\\a.exe", "B": "a.exe"}, {"A": "a.exe.x", "B": "a.exe"}}, []bool{true, false}},
	{"lt", "sel: {n|lt: 10}\ncondition: sel", []MapEvent{{"n": 9.0}, {"n": 10.0}, {"n": "3"}, {"n": "x"}}, []bool{true, false, true, false}},
	{"lte", "sel: {n|lte: 10}\ncondition: sel", []MapEvent{{"n": 10.0}, {"n": 11}}, []bool{true, false}},
	{"gt", "sel: {n|gt: 10}\ncondition: sel", []MapEvent{{"n": 11.0}, {"n": 10.0}}, []bool{true, false}},
	{"gte", "sel: {n|gte: 10}\ncondition: sel", []MapEvent{{"n": 10.0}, {"n": 9.5}}, []bool{true, false}},
	{"expand", "sel: {F|expand: '%admins%'}\ncondition: sel",
		[]MapEvent{{"F": "root"}, {"F": "Admin"}, {"F": "bob"}}, []bool{true, true, false}},
	{"keywords on message", "keywords: ['failed password', 'invalid user']\ncondition: keywords",
		[]MapEvent{{"message": "Failed password for root"}, {"message": "accepted"}, {"other": "failed password"}}, []bool{true, false, true}},
	{"keywords with modifiers", "keywords:\n  '|all': [foo, bar]\ncondition: keywords",
		[]MapEvent{{"message": "foo and bar"}, {"message": "foo"}}, []bool{true, false}},
	{"keywords wildcard", "keywords: ['pass*root']\ncondition: keywords",
		[]MapEvent{{"message": "password for root"}, {"message": "password"}}, []bool{true, false}},
	{"list values in event", "sel: {tags: admin}\ncondition: sel",
		[]MapEvent{{"tags": []any{"x", "Admin"}}, {"tags": []string{"y"}}}, []bool{true, false}},
	{"nested map event", "sel: {source.ip: 1.2.3.4}\ncondition: sel",
		[]MapEvent{{"source": map[string]any{"ip": "1.2.3.4"}}}, []bool{true}},
	{"and / or / not precedence", "a: {A: 1}\nb: {B: 1}\nc: {C: 1}\ncondition: a or b and not c",
		[]MapEvent{{"A": 1}, {"B": 1}, {"B": 1, "C": 1}, {"A": 1, "C": 1}}, []bool{true, true, false, true}},
	{"parentheses", "a: {A: 1}\nb: {B: 1}\nc: {C: 1}\ncondition: (a or b) and not c",
		[]MapEvent{{"A": 1, "C": 1}, {"B": 1}}, []bool{false, true}},
	{"not not", "a: {A: 1}\ncondition: not not a", []MapEvent{{"A": 1}, {}}, []bool{true, false}},
	{"1 of pattern", "sel_a: {A: 1}\nsel_b: {B: 1}\nfilter: {C: 1}\ncondition: 1 of sel_* and not filter",
		[]MapEvent{{"B": 1}, {"B": 1, "C": 1}, {"C": 1}}, []bool{true, false, false}},
	{"all of pattern", "sel_a: {A: 1}\nsel_b: {B: 1}\ncondition: all of sel_*",
		[]MapEvent{{"A": 1, "B": 1}, {"A": 1}}, []bool{true, false}},
	{"1 of them", "a: {A: 1}\nb: {B: 1}\ncondition: 1 of them", []MapEvent{{"B": 1}, {}}, []bool{true, false}},
	{"all of them", "a: {A: 1}\nb: {B: 1}\ncondition: all of them", []MapEvent{{"A": 1, "B": 1}, {"B": 1}}, []bool{true, false}},
	{"not 1 of", "a: {A: 1}\nf_1: {B: 1}\nf_2: {C: 1}\ncondition: a and not 1 of f_*",
		[]MapEvent{{"A": 1}, {"A": 1, "C": 1}}, []bool{true, false}},
	{"condition list is OR", "a: {A: 1}\nb: {B: 1}\ncondition: [a, b]", []MapEvent{{"B": 1}, {}}, []bool{true, false}},
}

func compileOne(t *testing.T, src string) *Engine {
	t.Helper()
	rules, errs := ParseRule("test.yml", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	p := DefaultPipeline()
	p.Vars = map[string]Strings{"admins": {"root", "admin"}}
	eng, errs := Compile(rules, p)
	if len(errs) > 0 {
		t.Fatalf("compile: %v", errs)
	}
	return eng
}

func TestDetectionGolden(t *testing.T) {
	var out strings.Builder
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range detectionCases {
		src := "title: t\nid: x\nauthor: test\ndetection:\n" + indent(c.det, "  ") + "\n"
		eng := compileOne(t, src)
		fmt.Fprintf(&out, "## %s\n", c.name)
		for i, e := range c.events {
			got := len(eng.Match(e, t0)) > 0
			if got != c.want[i] {
				t.Errorf("%s: event %d %v: got match=%v, want %v", c.name, i, e, got, c.want[i])
			}
			fmt.Fprintf(&out, "event %d %v: %v\n", i, e, got)
		}
	}
	golden(t, "testdata/detection.golden", out.String())
}

func indent(s, p string) string {
	return p + strings.ReplaceAll(s, "\n", "\n"+p)
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs; run go test -update and review the diff:\n%s", path, got)
	}
}
