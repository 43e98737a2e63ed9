package runbook

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/check"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"disk-full.md": "---\ntitle: Disk full\nchecks: [db]\nrules: [0f1e2d3c-aaaa-bbbb-cccc-000000000001]\nmatchers: ['alertname=\"DiskFull\"']\nteam: noc\n---\n# Ignored heading\n\n- [ ] Check the disk\n",
		"no-front.md":  "Intro line.\n\n# SSH brute force\n\nText.\n",
		"crlf.md":      "---\r\nteam: soc\r\n---\r\n# Windows line ends\r\n",
		"untitled.md":  "just text\n",
		"empty-fm.md":  "---\n---\n# Empty front matter\n",
		"notes.txt":    "not a runbook",
		"sub/inner.md": "# in a subdirectory: not loaded\n",
		// Bad files.
		"unknown-key.md": "---\ntitle: X\nowner: bob\n---\nbody\n",
		"bad-yaml.md":    "---\ntitle: X\nchecks: [a\n---\nbody\n",
		"not-closed.md":  "---\ntitle: X\nbody\n",
		"bad-team.md":    "---\nteam: ops\n---\nbody\n",
		"bad-matcher.md": "---\nmatchers: ['alertname=~\"(\"']\n---\nbody\n",
		"bad-type.md":    "---\ntitle: X\nchecks: db\n---\nbody\n",
		"Upper.md":       "# Upper-case name\n",
		"blank.md":       "---\ntitle: Blank\n---\n\n  \n",
		"dup.md":         "---\nteam: noc\nteam: soc\n---\nbody\n",
		"list.md":        "---\n- a\n- b\n---\nbody\n",
	})
	rbs, errs := LoadDir(dir)

	var names []string
	for _, r := range rbs {
		names = append(names, r.Name)
		if !r.Provisioned || r.UpdatedAt.IsZero() {
			t.Errorf("%s: Provisioned=%v UpdatedAt=%v; want provisioned with a time", r.Name, r.Provisioned, r.UpdatedAt)
		}
	}
	if want := []string{"crlf", "disk-full", "empty-fm", "no-front", "untitled"}; !slices.Equal(names, want) {
		t.Errorf("loaded %q; want %q", names, want)
	}
	byName := map[string]Runbook{}
	for _, r := range rbs {
		byName[r.Name] = r
	}
	d := byName["disk-full"]
	if d.Title != "Disk full" || d.Team != "noc" || !slices.Equal(d.Checks, []string{"db"}) ||
		!slices.Equal(d.Rules, []string{"0f1e2d3c-aaaa-bbbb-cccc-000000000001"}) ||
		!slices.Equal(d.Matchers, []string{`alertname="DiskFull"`}) {
		t.Errorf("disk-full = %+v", d)
	}
	if strings.Contains(d.Markdown, "team: noc") || !strings.HasPrefix(d.Markdown, "# Ignored heading") {
		t.Errorf("disk-full markdown should be the body only, got %q", d.Markdown)
	}
	if got := byName["no-front"].Title; got != "SSH brute force" {
		t.Errorf("no-front title = %q; want the first # heading", got)
	}
	if got := byName["crlf"]; got.Title != "Windows line ends" || got.Team != "soc" {
		t.Errorf("crlf = %+v", got)
	}
	if got := byName["untitled"].Title; got != "untitled" {
		t.Errorf("untitled title = %q; want the name", got)
	}
	if got := byName["empty-fm"].Title; got != "Empty front matter" {
		t.Errorf("empty-fm title = %q", got)
	}

	wantErrs := map[string]string{
		"unknown-key.md": `unknown-key.md:3: unknown key "owner"`,
		"bad-yaml.md":    "bad-yaml.md:",
		"not-closed.md":  "not-closed.md:1: front matter is not closed",
		"bad-team.md":    `bad-team.md: team: "ops" must be noc or soc`,
		"bad-matcher.md": "bad-matcher.md: matchers[0]: ",
		"bad-type.md":    "bad-type.md:3: checks: must be a list",
		"Upper.md":       "Upper.md: name: ",
		"blank.md":       "blank.md: markdown: is required",
		"dup.md":         `dup.md:3: duplicate key "team"`,
		"list.md":        "list.md:2: front matter must be a mapping",
	}
	if len(errs) != len(wantErrs) {
		t.Errorf("got %d errors, want %d: %v", len(errs), len(wantErrs), errs)
	}
	for file, want := range wantErrs {
		found := false
		for _, err := range errs {
			msg := err.Error()
			if strings.HasPrefix(msg, filepath.Join(dir, file)) {
				found = true
				if !strings.Contains(msg, want) {
					t.Errorf("error for %s = %q; want it to contain %q", file, msg, want)
				}
			}
		}
		if !found {
			t.Errorf("no error reported for %s; errors: %v", file, errs)
		}
	}
}

func TestLoadDirMissing(t *testing.T) {
	rbs, errs := LoadDir(filepath.Join(t.TempDir(), "nope"))
	if len(rbs) != 0 || len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("LoadDir(missing) = %v, %v; want one not-exist error", rbs, errs)
	}
}

func TestLoadRepoRunbooks(t *testing.T) {
	// The example runbooks shipped in the repository must load cleanly
	// and carry checklists.
	rbs, errs := LoadDir("../../runbooks")
	for _, err := range errs {
		t.Error(err)
	}
	if len(rbs) < 2 {
		t.Fatalf("loaded %d runbooks from runbooks/; want at least 2", len(rbs))
	}
	for _, r := range rbs {
		if len(Checklist(r.Markdown)) < 3 {
			t.Errorf("%s: checklist has %d items; want at least 3", r.Name, len(Checklist(r.Markdown)))
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Runbook{Name: "disk-full", Markdown: "# x", Team: "noc", Matchers: []string{`a="b"`, `c!~"d|e"`}}
	tests := []struct {
		name  string
		edit  func(r *Runbook)
		field string
	}{
		{"valid", func(r *Runbook) {}, ""},
		{"no name", func(r *Runbook) { r.Name = "" }, "name"},
		{"upper name", func(r *Runbook) { r.Name = "Disk" }, "name"},
		{"leading dash", func(r *Runbook) { r.Name = "-disk" }, "name"},
		{"slash", func(r *Runbook) { r.Name = "a/b" }, "name"},
		{"dots ok", func(r *Runbook) { r.Name = "db.disk_full-2" }, ""},
		{"long name", func(r *Runbook) { r.Name = strings.Repeat("a", 129) }, "name"},
		{"empty markdown", func(r *Runbook) { r.Markdown = " \n" }, "markdown"},
		{"max markdown", func(r *Runbook) { r.Markdown = strings.Repeat("a", MaxMarkdown) }, ""},
		{"huge markdown", func(r *Runbook) { r.Markdown = strings.Repeat("a", MaxMarkdown+1) }, "markdown"},
		{"bad team", func(r *Runbook) { r.Team = "ops" }, "team"},
		{"no team ok", func(r *Runbook) { r.Team = "" }, ""},
		{"empty check", func(r *Runbook) { r.Checks = []string{"db", ""} }, "checks[1]"},
		{"empty rule", func(r *Runbook) { r.Rules = []string{" "} }, "rules[0]"},
		{"bad regex", func(r *Runbook) { r.Matchers = []string{`a="b"`, `x=~"("`} }, "matchers[1]"},
		{"no operator", func(r *Runbook) { r.Matchers = []string{`alertname`} }, "matchers[0]"},
		{"bad quote", func(r *Runbook) { r.Matchers = []string{`a="b`} }, "matchers[0]"},
		{"bad label", func(r *Runbook) { r.Matchers = []string{`1a="b"`} }, "matchers[0]"},
		{"bare value ok", func(r *Runbook) { r.Matchers = []string{`severity=critical`} }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			err := r.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			var fe *check.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate() = %v; want a FieldError on %q", err, tc.field)
			}
		})
	}
}
