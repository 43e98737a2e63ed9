package sigma

import (
	"strings"
	"testing"
	"time"
)

// TestIndexFoldLower checks the case-folding literal search against
// lowercasing the text and using strings.Index.
func TestIndexFoldLower(t *testing.T) {
	texts := []string{"", "a", `C:\Windows\System32\CMD.EXE`, `cmd.exe /c echo \PERFC.DAT`, "Failed password for ROOT",
		"xxxxABABABAC", `\\perfc.da`, "ERROR: Buffer_Get_Ret: trying"}
	lits := []string{"a", `\perfc.dat`, "cmd.exe", "failed", "ababac", "error: buffer_get_ret", "root", "zzz", "é", ".exe"}
	for _, s := range texts {
		for _, l := range lits {
			want := strings.Index(lowerString(s), l)
			if got := indexFoldLower(s, l, foldAnchor(l)); got != want {
				t.Errorf("indexFoldLower(%q, %q) = %d, want %d", s, l, got, want)
			}
			if got := equalFoldLower(s, l); got != (lowerString(s) == l) {
				t.Errorf("equalFoldLower(%q, %q) = %v", s, l, got)
			}
		}
		if got, want := isASCII(s), !needsLowerNonASCII(s); got != want {
			t.Errorf("isASCII(%q) = %v, want %v", s, got, want)
		}
	}
}

func needsLowerNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// TestPrefilterCases runs rules whose prefilter literals are searched in
// different ways (one literal, an automaton, keyword values of a Windows
// event without message, a regex literal prefix) over events in mixed case
// and with non-ASCII text that lowercases to ASCII (the Kelvin sign).
func TestPrefilterCases(t *testing.T) {
	src := `title: one literal
id: r1
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: 'vssadmin delete'}
  condition: sel
---
title: automaton
id: r2
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: ['\rundll32.exe', '\regsvr32.exe', '\mshta.exe', '\wscript.exe']}
  condition: sel
---
title: keyword
id: r3
logsource: {product: windows, category: process_creation}
detection:
  keywords: ['\perfc.dat']
  condition: keywords
---
title: regex
id: r4
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|re: 'net\s+stop Backup'}
  condition: sel
`
	rules, errs := ParseRule("t.yml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eng, cerrs := Compile(rules, nil)
	if len(cerrs) > 0 {
		t.Fatal(cerrs)
	}
	base := func(kv ...any) MapEvent {
		ev := MapEvent{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1.0}
		for i := 0; i < len(kv); i += 2 {
			ev[kv[i].(string)] = kv[i+1]
		}
		return ev
	}
	tests := []struct {
		name string
		ev   MapEvent
		want string
	}{
		{"one literal, upper case", base("CommandLine", "VSSADMIN DELETE shadows"), "r1"},
		{"one literal, absent", base("CommandLine", "vssadmin list shadows"), ""},
		{"automaton, mixed case", base("Image", `C:\Windows\System32\RegSvr32.EXE`), "r2"},
		{"automaton, Kelvin sign is not k", base("Image", "C:\\x\\mshta.exe\u212a"), ""},
		{"keyword in a value of a Windows event", base("Data", `C:\Windows\PERFC.DAT`), "r3"},
		{"keyword in a list value", base("Data", []any{"x", 3.0, `c:\perfc.dat`}), "r3"},
		{"keyword split across values", base("A", `\perfc`, "B", ".dat"), ""},
		{"keyword Kelvin sign", base("CommandLine", "\\perfc.dat\u212a"), "r3"},
		{"keyword in message only", base("message", "nothing", "Data", `\perfc.dat`), ""},
		{"regex", base("CommandLine", "net  stop Backup"), "r4"},
		{"regex is case-sensitive", base("CommandLine", "NET stop Backup"), ""},
		{"channel in other case", MapEvent{"Channel": "microsoft-windows-sysmon/OPERATIONAL", "EventID": "1", "CommandLine": "vssadmin delete"}, "r1"},
		{"other channel", MapEvent{"Channel": "Security", "EventID": 1.0, "CommandLine": "vssadmin delete"}, ""},
	}
	for i, tc := range tests {
		var got []string
		for _, m := range eng.Match(tc.ev, time.Unix(int64(i), 0)) {
			got = append(got, m.Rule.ID)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: matched %v, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPrefilterPrefersRareLiterals checks which literals the prefilter
// keys a rule on, by counting evaluations: a whole value of three or four
// characters (an HTTP method) is in most events of its kind, so a rule
// that also has keywords is keyed on these; a longer whole value (an image
// name) is still preferred to text searched inside a long field.
func TestPrefilterPrefersRareLiterals(t *testing.T) {
	src := `title: template injection
id: web1
logsource: {category: webserver}
detection:
  select_method: {cs-method: GET}
  keywords: ['={{', '=${', 'freemarker.template.utility.Execute']
  filter: {sc-status: 404}
  condition: select_method and keywords and not filter
---
title: method only
id: web2
logsource: {category: webserver}
detection:
  sel: {cs-method: PUT}
  condition: sel
---
title: image and command line
id: win1
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\cmd.exe', CommandLine|contains: 'whoami'}
  condition: sel
`
	rules, errs := ParseRule("t.yml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	web := func(method, uri string, status float64) MapEvent {
		return MapEvent{"event.category": "web", "http.request.method": method, "url.original": uri,
			"http.response.status_code": status, "message": method + " " + uri}
	}
	win := func(image, cmd string) MapEvent {
		return MapEvent{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1.0, "Image": image, "CommandLine": cmd}
	}
	tests := []struct {
		name  string
		ev    MapEvent
		want  string
		evals uint64
	}{
		{"GET without keywords: not evaluated", web("GET", "/index.html?q=1", 200), "", 0},
		{"GET with a keyword", web("GET", "/p?name={{7*7}}", 200), "web1", 1},
		{"POST with a keyword", web("POST", "/p?name={{7*7}}", 200), "", 1},
		{"GET with a keyword, 404", web("GET", "/p?name=${x}", 404), "", 1},
		{"a rule keyed on a method alone", web("PUT", "/upload", 201), "web2", 1},
		{"command line alone: not evaluated", win(`C:\Windows\powershell.exe`, "whoami /all"), "", 0},
		{"image and command line", win(`C:\Windows\System32\cmd.exe`, "cmd /c whoami"), "win1", 1},
	}
	for i, tc := range tests {
		eng, cerrs := Compile(rules, nil)
		if len(cerrs) > 0 {
			t.Fatal(cerrs)
		}
		var got []string
		for _, m := range eng.Match(tc.ev, time.Unix(int64(i), 0)) {
			got = append(got, m.Rule.ID)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: matched %v, want %q", tc.name, got, tc.want)
		}
		if n := eng.Stats().RuleEvaluations; n != tc.evals {
			t.Errorf("%s: %d rule evaluations, want %d", tc.name, n, tc.evals)
		}
	}
}
