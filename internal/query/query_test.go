package query

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func pfx(s string) *netip.Prefix {
	p := netip.MustParsePrefix(s).Masked()
	return &p
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Node
		str  string // String(); "" means same as in
	}{
		{"", All{}, "*"},
		{"   ", All{}, "*"},
		{"*", All{}, ""},
		{"source.ip:203.0.113.7", Field{Name: "source.ip", Op: ":", Value: "203.0.113.7"}, ""},
		{"event.outcome:failure", Field{Name: "event.outcome", Op: ":", Value: "failure"}, ""},
		{`user.name:"John Smith"`, Field{Name: "user.name", Op: ":", Value: "John Smith", Phrase: true}, ""},
		{`user.name:adm*`, Field{Name: "user.name", Op: ":", Value: "adm*", Wildcard: true}, ""},
		{`user.name:a?m\*`, Field{Name: "user.name", Op: ":", Value: `a?m\*`, Wildcard: true}, ""},
		{`url.path:\*`, Field{Name: "url.path", Op: ":", Value: `*`}, ""},
		{"source.ip:10.0.0.0/8", Field{Name: "source.ip", Op: ":", Value: "10.0.0.0/8", CIDR: pfx("10.0.0.0/8")}, ""},
		{"source.ip:10.1.2.3/8", Field{Name: "source.ip", Op: ":", Value: "10.0.0.0/8", CIDR: pfx("10.0.0.0/8")}, "source.ip:10.0.0.0/8"},
		{"source.ip:2001:db8::/32", Field{Name: "source.ip", Op: ":", Value: "2001:db8::/32", CIDR: pfx("2001:db8::/32")}, ""},
		{"source.ip:2001:db8::1", Field{Name: "source.ip", Op: ":", Value: "2001:db8::1"}, `source.ip:2001\:db8\:\:1`},
		{"url.path:/a/b", Field{Name: "url.path", Op: ":", Value: "/a/b"}, `url.path:\/a\/b`},
		{"http.response.status_code>=400", Field{Name: "http.response.status_code", Op: ">=", Value: "400"}, ""},
		{"http.response.status_code:>=400", Field{Name: "http.response.status_code", Op: ">=", Value: "400"}, "http.response.status_code>=400"},
		{"source.port:<1024", Field{Name: "source.port", Op: "<", Value: "1024"}, "source.port<1024"},
		{"x<=-1.5", Field{Name: "x", Op: "<=", Value: "-1.5"}, ""},
		{"x>2", Field{Name: "x", Op: ">", Value: "2"}, ""},
		{"user.name!=root", Field{Name: "user.name", Op: "!=", Value: "root"}, ""},
		{"_exists_:user.name", Exists{Field: "user.name"}, ""},
		{`"Failed password"`, Text{Value: "Failed password", Phrase: true}, ""},
		{`"say \"hi\""`, Text{Value: `say "hi"`, Phrase: true}, ""},
		{"error", Text{Value: "error"}, ""},
		{"err*", Text{Value: "err*", Wildcard: true}, ""},
		{"10.0.0.1:22", Text{Value: "10.0.0.1:22"}, `10.0.0.1\:22`},
		{`\AND`, Text{Value: "AND"}, ""},
		{"a b", And{[]Node{Text{Value: "a"}, Text{Value: "b"}}}, "a AND b"},
		{"a and b", And{[]Node{Text{Value: "a"}, Text{Value: "b"}}}, "a AND b"},
		{"a OR b c", Or{[]Node{Text{Value: "a"}, And{[]Node{Text{Value: "b"}, Text{Value: "c"}}}}}, "a OR (b AND c)"},
		{"(a or b) c", And{[]Node{Or{[]Node{Text{Value: "a"}, Text{Value: "b"}}}, Text{Value: "c"}}}, "(a OR b) AND c"},
		{"NOT a", Not{Text{Value: "a"}}, ""},
		{"not a", Not{Text{Value: "a"}}, "NOT a"},
		{"-user.name:root", Not{Field{Name: "user.name", Op: ":", Value: "root"}}, "NOT user.name:root"},
		{"a -(b OR c)", And{[]Node{Text{Value: "a"}, Not{Or{[]Node{Text{Value: "b"}, Text{Value: "c"}}}}}}, "a AND NOT (b OR c)"},
		{"a - b", And{[]Node{Text{Value: "a"}, Text{Value: "-"}, Text{Value: "b"}}}, `a AND \- AND b`},
		{`sshd AND event.outcome:failure AND NOT source.ip:10.0.0.0/8`, And{[]Node{
			Text{Value: "sshd"},
			Field{Name: "event.outcome", Op: ":", Value: "failure"},
			Not{Field{Name: "source.ip", Op: ":", Value: "10.0.0.0/8", CIDR: pfx("10.0.0.0/8")}},
		}}, ""},
		{`EventData.TargetUserName:"ADMIN$"`, Field{Name: "EventData.TargetUserName", Op: ":", Value: "ADMIN$", Phrase: true}, ""},
		{`@timestamp:x`, Field{Name: "@timestamp", Op: ":", Value: "x"}, ""},
		{"message:\"naïve café\"", Field{Name: "message", Op: ":", Value: "naïve café", Phrase: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) =\n %#v\nwant\n %#v", tt.in, got, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			again, err := Parse(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("re-parse of %q = %#v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"(a OR b", "position 8: expected ')' to close the '(' at position 1, found end of query"},
		{"a AND (b OR c", "position 14: expected ')' to close the '(' at position 7, found end of query"},
		{"a)", "position 2: unexpected ')'"},
		{"()", "position 2: expected a term inside '()'"},
		{"a AND", "position 6: expected a term, found end of query"},
		{"OR a", "position 1: expected a term, found OR"},
		{"a OR OR b", "position 6: expected a term, found OR"},
		{"NOT", "position 4: expected a term, found end of query"},
		{`"unterminated`, "position 1: unterminated quoted phrase"},
		{`user.name:"x`, "position 11: unterminated quoted phrase"},
		{"user.name:", "position 11: expected a value after 'user.name:'"},
		{"status>=abc", "position 9: expected a number after 'status>='"},
		{`status>"4"`, "position 8: expected a number after 'status>'"},
		{"status>4*", "position 8: expected a number after 'status>'"},
		{"source.ip:10.0.0.0/33", "position 11: invalid CIDR prefix \"10.0.0.0/33\""},
		{"_exists_:a*", "position 10: _exists_ takes a field name: _exists_:user.name"},
		{"_exists_:\"a\"", "position 10: _exists_ takes a field name: _exists_:user.name"},
		{`abc\`, "position 4: nothing to escape after '\\' at the end of the query"},
		{"héllo (", "position 8: expected a term, found end of query"},
		{"a\xffb", "position 2: invalid UTF-8"},
		{strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100), "position 65: query nests deeper than 64 levels"},
		{strings.Repeat("x", MaxLength+1), fmt.Sprintf("position 1: query is longer than %d bytes", MaxLength)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := Parse(tt.in)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, %v; want a *SyntaxError", tt.in, n, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %q, want %q", tt.in, err.Error(), tt.want)
			}
		})
	}
}

// testCols is a column map like the event store's: a few promoted columns,
// one numeric, IP columns for source.ip, JSON for the rest.
func testCols(field string) (string, bool) {
	switch field {
	case "message":
		return "coalesce(message, raw)", false
	case "source.ip":
		return "source_ip", false
	case "source.ip" + IPSuffix:
		return "source_ip_key", false
	case "http.response.status_code":
		return "http_status", true
	}
	if strings.HasSuffix(field, IPSuffix) {
		return "", false
	}
	return `json_extract_string(fields, '$."` + field + `"')`, false
}

func TestToSQLGolden(t *testing.T) {
	queries := []string{
		"*",
		"source.ip:203.0.113.7",
		"source.ip:10.0.0.0/8",
		"source.ip:2001:db8::/32",
		"source.ip!=10.0.0.0/8",
		"client.ip:192.168.1.0/24",
		"event.outcome:failure",
		`user.name:"John Smith"`,
		`user.name:adm*n_%`,
		`user.name:a\*b?`,
		`"Failed password"`,
		`100% fail*`,
		"http.response.status_code>=400",
		"http.response.status_code:404",
		"http.response.status_code:4*",
		"http.response.status_code:abc",
		"process.pid<100",
		"user.name!=root",
		"_exists_:user.name",
		"NOT (a OR b) c",
		`x:"it's"`,
	}
	var b strings.Builder
	for _, q := range queries {
		n, err := Parse(q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", q, err)
		}
		where, args, err := ToSQL(n, testCols)
		if err != nil {
			t.Fatalf("ToSQL(%q): %v", q, err)
		}
		if c := strings.Count(where, "?"); c != len(args) {
			t.Errorf("ToSQL(%q): %d placeholders, %d args", q, c, len(args))
		}
		fmt.Fprintf(&b, "query: %s\nwhere: %s\nargs:  %#v\n\n", q, where, args)
	}
	golden := filepath.Join("testdata", "tosql.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if b.String() != string(want) {
		t.Errorf("ToSQL output differs from %s (run with -update after checking):\n%s", golden, b.String())
	}
}

func TestToSQLErrors(t *testing.T) {
	n, err := Parse("client.ip:2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ToSQL(n, testCols); err == nil || !strings.Contains(err.Error(), `field "client.ip"`) {
		t.Errorf("IPv6 prefix on a text field: err = %v, want one naming the field", err)
	}
	if _, _, err := ToSQL(Field{Name: "a'b", Op: ":", Value: "x"}, testCols); err == nil {
		t.Error("a hand-built field with a quote in its name was accepted")
	}
}

func TestPrefixRange(t *testing.T) {
	tests := []struct {
		prefix, lo, hi string
	}{
		{"10.0.0.0/8", "10.0.0.0", "10.255.255.255"},
		{"192.168.1.128/25", "192.168.1.128", "192.168.1.255"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"1.2.3.4/32", "1.2.3.4", "1.2.3.4"},
		{"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		lo, hi := prefixRange(netip.MustParsePrefix(tt.prefix))
		if string(lo) != string(IPKey(netip.MustParseAddr(tt.lo))) || string(hi) != string(IPKey(netip.MustParseAddr(tt.hi))) {
			t.Errorf("prefixRange(%s) = %x..%x, want %s..%s", tt.prefix, lo, hi, tt.lo, tt.hi)
		}
	}
	if string(IPKey(netip.MustParseAddr("::ffff:10.1.2.3"))) != string(IPKey(netip.MustParseAddr("10.1.2.3"))) {
		t.Error("an IPv4-mapped address and its IPv4 form have different keys")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"source.ip:203.0.113.7", `"Failed password" AND NOT user.name:root`, "a OR (b -c)",
		"http.response.status_code:>=400", "source.ip:10.0.0.0/8", `x:"a\"b" y:c*d\?`, "_exists_:user.name",
		`\AND \- \: \(`, "a!=b", "((a))", "-", `"'; DROP TABLE events; --"`, "user.name:' OR 1=1 --",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n, err := Parse(q)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 1 {
				t.Fatalf("Parse(%q) error %v is not a *SyntaxError with a position", q, err)
			}
			return
		}
		s := n.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", q, s, err)
		}
		if !reflect.DeepEqual(again, n) {
			t.Fatalf("Parse(%q) = %#v; its String %q parses to %#v", q, n, s, again)
		}
		where, args, err := ToSQL(n, testCols)
		if err != nil {
			return // IPv6 prefixes on text fields
		}
		if strings.Count(where, "?") != len(args) {
			t.Fatalf("ToSQL(%q): placeholders and args differ: %s %v", q, where, args)
		}
		// No user text reaches the SQL: with every argument removed, the SQL
		// is built only from the column map, operators and fixed literals.
		for _, a := range args {
			if sv, ok := a.(string); ok && len(sv) > 3 && strings.Contains(where, sv) {
				t.Fatalf("ToSQL(%q): argument %q appears in the SQL %s", q, sv, where)
			}
		}
		if strings.Count(where, "'")%2 != 0 {
			t.Fatalf("ToSQL(%q): unbalanced quotes in %s", q, where)
		}
	})
}
