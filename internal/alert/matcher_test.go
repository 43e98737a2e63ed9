package alert

import (
	"strings"
	"testing"
)

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() of the result
		err  string // substring of the error
	}{
		{in: `severity="critical"`, want: `severity="critical"`},
		{in: `team!=noc`, want: `team!="noc"`},
		{in: ` service =~ "db|cache" `, want: `service=~"db|cache"`},
		{in: `env!~staging.*`, want: `env!~"staging.*"`},
		{in: `msg="say \"hi\"\\n\n"`, want: `msg="say \"hi\"\\n\n"`},
		{in: `host.name=web-1`, want: `host.name="web-1"`},
		{in: `empty=""`, want: `empty=""`},
		{in: `a=b c`, want: `a="b c"`},
		{in: `sev=~"("`, err: `matcher "sev=~\"(\"": invalid regex: error parsing regexp: missing closing ): ` + "`(`" + ` (value at offset 5)`},
		{in: `="x"`, err: `expected a label name at offset 0, got '='`},
		{in: `1a="x"`, err: `expected a label name at offset 0`},
		{in: `team`, err: `missing operator after "team" at offset 4`},
		{in: `team>x`, err: `expected an operator (=, !=, =~, !~) at offset 4, got '>'`},
		{in: `a="x`, err: `unterminated quoted value starting at offset 2`},
		{in: `a="x\t"`, err: `unknown escape \t at offset 4`},
		{in: `a="x" b`, err: `unexpected 'b' at offset 6`},
		{in: `a=x"y"`, err: `unexpected '"' at offset 3 inside an unquoted value`},
		{in: ``, err: `missing label name at offset 0`},
	}
	for _, tt := range tests {
		m, err := ParseMatcher(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMatcher(%q) error = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatcher(%q): %v", tt.in, err)
			continue
		}
		if got := m.String(); got != tt.want {
			t.Errorf("ParseMatcher(%q).String() = %s, want %s", tt.in, got, tt.want)
		}
		// String must read back to the same matcher.
		back, err := ParseMatcher(m.String())
		if err != nil || back.String() != m.String() {
			t.Errorf("round trip of %s: %v, %v", m, back, err)
		}
	}
}

func TestMatcherMatches(t *testing.T) {
	labels := map[string]string{"severity": "critical", "service": "mydb", "team": "noc"}
	tests := []struct {
		m    string
		want bool
	}{
		{`severity="critical"`, true},
		{`severity="warning"`, false},
		{`severity!="warning"`, true},
		{`service=~"db|cache"`, false}, // anchored: "mydb" is not "db"
		{`service=~".*db"`, true},
		{`service!~"db|cache"`, true},
		{`missing=""`, true}, // a missing label is ""
		{`missing!=""`, false},
		{`missing!="x"`, true},
		{`missing=~".*"`, true},
		{`missing=~".+"`, false},
		{`team=~"NOC"`, false},
		{`team=~"(?i)NOC"`, true},
	}
	for _, tt := range tests {
		m, err := ParseMatcher(tt.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Matches(labels); got != tt.want {
			t.Errorf("%s.Matches(%v) = %v, want %v", tt.m, labels, got, tt.want)
		}
	}
}

func TestParseMatchers(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		err  string
	}{
		{in: []string{`{a="b", c=~"d"}`}, want: `a="b" c=~"d"`},
		{in: []string{`{a=b,c!=d,}`, `e="f"`}, want: `a="b" c!="d" e="f"`},
		{in: []string{`{}`}, want: ``},
		{in: []string{` { a = "x,}" } `}, want: `a="x,}"`},
		{in: []string{`{a="b"`}, err: `missing closing '}'`},
		{in: []string{`{a="b" c="d"}`}, err: `expected ',' or '}' at offset 7, got 'c'`},
		{in: []string{`{a="b"} x`}, err: `unexpected 'x' at offset 8 after '}'`},
		{in: []string{`a="b"`, `c=~"["`}, err: `matcher "c=~\"[\"": invalid regex`},
	}
	for _, tt := range tests {
		ms, err := ParseMatchers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMatchers(%q) error = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatchers(%q): %v", tt.in, err)
			continue
		}
		var parts []string
		for _, m := range ms {
			parts = append(parts, m.String())
		}
		if got := strings.Join(parts, " "); got != tt.want {
			t.Errorf("ParseMatchers(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`a="b"`, `{a=~"x|y", b!=c}`, `a=~"("`, `x!~"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers([]string{s})
		if err != nil {
			return
		}
		// Every parsed matcher prints in a form that parses back the same.
		for _, m := range ms {
			back, err := ParseMatcher(m.String())
			if err != nil {
				t.Fatalf("%q parsed to %s which does not parse back: %v", s, m, err)
			}
			if back.Name != m.Name || back.Op != m.Op || back.Value != m.Value {
				t.Fatalf("%q: %s round-trips to %s", s, m, back)
			}
		}
	})
}
