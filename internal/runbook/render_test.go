package runbook

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// safeTags are the elements goldmark may produce for runbooks.
var safeTags = []string{"p", "a", "img", "ul", "ol", "li", "input", "table", "thead", "tbody", "tr", "th", "td",
	"strong", "em", "del", "code", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br"}

// checkSafe tokenizes out and fails on any element, attribute or URL an
// attacker could use to run script.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if !slices.Contains(safeTags, tok.Data) {
			t.Errorf("%q: unsafe element <%s> in %q", in, tok.Data, out)
		}
		for _, a := range tok.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") || a.Key == "style" || a.Key == "srcdoc" {
				t.Errorf("%q: unsafe attribute %s in %q", in, a.Key, out)
			}
			if (a.Key == "href" || a.Key == "src") && !allowedURL([]byte(a.Val), a.Key == "href") {
				t.Errorf("%q: unsafe URL %s=%q in %q", in, a.Key, a.Val, out)
			}
		}
	}
}

func TestRenderNeutralisesXSS(t *testing.T) {
	tests := []struct {
		name, md string
		// keep must still appear in the output (the text is not lost).
		keep string
	}{
		{"script block", "<script>alert(1)</script>", ""},
		{"script inline", "before <script>alert(1)</script> after", "after"},
		{"javascript link", "[click](javascript:alert(1))", "click"},
		{"javascript upper", "[click](JavaScript:alert(1))", "click"},
		{"javascript tab", "[click](<java\tscript:alert(1)>)", "click"},
		{"javascript entity", "[click](&#106;avascript:alert(1))", "click"},
		{"javascript leading space entity", "[click](&#32;javascript:alert(1))", "click"},
		{"javascript reference", "[click][r]\n\n[r]: javascript:alert(1)", "click"},
		{"javascript autolink", "<javascript:alert(1)>", "alert(1)"},
		{"vbscript", "[click](vbscript:msgbox)", "click"},
		{"data html link", "[**click**](data:text/html;base64,PHNjcmlwdD4=)", "<strong>click</strong>"},
		{"data image", "![pic](data:image/svg+xml;base64,PHN2Zz4=)", "pic"},
		{"raw a tag", `<a href="javascript:alert(1)">x</a>`, "x"},
		{"raw img onerror", `look <img src=x onerror=alert(1)> here`, "here"},
		{"raw img block", "<img src=x onerror=alert(1)>", ""},
		{"image attribute break", `![a](x" onerror="alert(1))`, ""},
		{"image javascript", "![alt text](javascript:alert(1))", "alt text"},
		{"link title break", `[x](/ok "a\" onmouseover=\"alert(1)")`, ""},
		{"iframe", `<iframe src="https://evil.example"></iframe>`, ""},
		{"svg", `<svg onload=alert(1)>`, ""},
		{"style", `<style>body{display:none}</style>`, ""},
		{"html comment break", "<!-- --><script>alert(1)</script> -->", ""},
		{"table cell", "| a |\n|---|\n| <script>x</script> [c](javascript:x) |", "c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.md)
			if err != nil {
				t.Fatal(err)
			}
			s := string(out)
			checkSafe(t, tc.md, s)
			if strings.Contains(strings.ToLower(s), "javascript:") && strings.Contains(s, "href") {
				t.Errorf("javascript: URL survived: %q", s)
			}
			if tc.keep != "" && !strings.Contains(s, tc.keep) {
				t.Errorf("Render(%q) = %q; want it to keep %q", tc.md, s, tc.keep)
			}
		})
	}
}

func TestRenderKeepsAllowedMarkup(t *testing.T) {
	tests := []struct{ md, want string }{
		{"[x](https://ok.example/a?b=1)", `<a href="https://ok.example/a?b=1">x</a>`},
		{"[x](http://ok.example/)", `<a href="http://ok.example/">x</a>`},
		{"[rel](/incidents/4)", `<a href="/incidents/4">rel</a>`},
		{"[rel](../x#y)", `<a href="../x#y">rel</a>`},
		{"[anchor](#step-2)", `<a href="#step-2">anchor</a>`},
		{"[mail](mailto:noc@example.com)", `<a href="mailto:noc@example.com">mail</a>`},
		{"<https://x.example>", `<a href="https://x.example">https://x.example</a>`},
		{"see www.example.com", `<a href="http://www.example.com">www.example.com</a>`},
		{"![graph](/static/g.png)", `<img src="/static/g.png" alt="graph">`},
		{"- [ ] todo\n- [x] done", `<li><input disabled="" type="checkbox"> todo</li>`},
		{"| a | b |\n|---|---|\n| 1 | 2 |", "<td>1</td>"},
		{"~~old~~", "<del>old</del>"},
		{"`rm -rf /tmp/x`", "<code>rm -rf /tmp/x</code>"},
		{"a < b & c", "a &lt; b &amp; c"},
	}
	for _, tc := range tests {
		out, err := Render(tc.md)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("Render(%q) = %q; want it to contain %q", tc.md, out, tc.want)
		}
		checkSafe(t, tc.md, string(out))
	}
}

func TestAllowedURL(t *testing.T) {
	tests := []struct {
		url    string
		mailto bool
		want   bool
	}{
		{"https://x", false, true},
		{"HTTP://x", false, true},
		{"/a/b", false, true},
		{"a/b:c", false, true},
		{"?q=1", false, true},
		{"#frag", false, true},
		{"//cdn.example/x", false, true},
		{"mailto:a@b", true, true},
		{"mailto:a@b", false, false},
		{"javascript:alert(1)", true, false},
		{" javascript:alert(1)", true, false},
		{"\x01javascript:alert(1)", true, false},
		{"java\nscript:alert(1)", true, false},
		{"&#x6A;avascript:alert(1)", true, false},
		{"data:text/html,x", true, false},
		{"ftp://x", true, false},
		{"file:///etc/passwd", true, false},
	}
	for _, tc := range tests {
		if got := allowedURL([]byte(tc.url), tc.mailto); got != tc.want {
			t.Errorf("allowedURL(%q, %v) = %v; want %v", tc.url, tc.mailto, got, tc.want)
		}
	}
}

func TestChecklist(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want []string
	}{
		{"none", "# Title\n\nJust text.\n\n- a plain item\n", nil},
		{"simple", "- [ ] Check the disk\n- [x] Page the DBA\n", []string{"Check the disk", "Page the DBA"}},
		{"star and plus bullets", "* [ ] one\n+ [ ] two\n", []string{"one", "two"}},
		{"ordered", "1. [ ] first\n2. [ ] second\n", []string{"first", "second"}},
		{"inline markup flattened", "- [ ] Run `df -h` on **every** [node](https://x)\n", []string{"Run df -h on every node"}},
		{"soft break joined", "- [ ] Check the\n  replication lag\n", []string{"Check the replication lag"}},
		{"nested in order", "- [ ] parent\n  - [ ] child\n- [ ] next\n", []string{"parent", "child", "next"}},
		{"code block ignored", "```\n- [ ] not a task\n```\n- [ ] real\n", []string{"real"}},
		{"indented code ignored", "text\n\n    - [ ] not a task\n\n- [ ] real\n", []string{"real"}},
		{"raw html dropped", "- [ ] <b>bold</b> check\n", []string{"bold check"}},
		{"empty item skipped", "- [ ] \n- [ ] x\n", []string{"x"}},
		{"mixed with prose", "## Triage\n\n1. Look first.\n\n- [ ] Ack\n\nThen:\n\n- [ ] Fix\n", []string{"Ack", "Fix"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Checklist(tc.md)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Checklist(%q) = %q; want %q", tc.md, got, tc.want)
			}
		})
	}
}
