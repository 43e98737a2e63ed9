package compliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dirPolicy(id string, checks ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy: {id: %s, name: %s}\nchecks:\n", id, id)
	for _, c := range checks {
		fmt.Fprintf(&b, "  - id: %s\n    title: %s\n    controls: {pci-dss-4.0: 2.2.6}\n    test: {package_installed: %s}\n", c, c, c)
	}
	return b.String()
}

func writePolicy(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadedChecks(pols []*Policy) map[string][]string {
	out := map[string][]string{}
	for _, p := range pols {
		for _, c := range p.Checks {
			out[p.ID] = append(out[p.ID], c.ID)
		}
	}
	return out
}

func errText(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

// TestDirLoaderReload: files added, changed, broken, fixed and removed
// between loads; a broken change keeps the previous version in force and
// is reported with file:line on every load until the file changes.
func TestDirLoaderReload(t *testing.T) {
	dir := t.TempDir()
	now := t0
	l := NewDirLoader(dir, "directory", func() time.Time { return now })
	writePolicy(t, dir, "a.yml", dirPolicy("a", "a1"))
	writePolicy(t, dir, "b.yaml", dirPolicy("b", "b1"))
	writePolicy(t, dir, "notes.txt", "not a policy")

	r := l.Load()
	if len(r.Errors) > 0 || !reflect.DeepEqual(r.Changed, []string{"a.yml", "b.yaml"}) {
		t.Fatalf("first load: changed %v errors %v", r.Changed, r.Errors)
	}
	if got := loadedChecks(r.Policies); !reflect.DeepEqual(got, map[string][]string{"a": {"a1"}, "b": {"b1"}}) {
		t.Fatalf("first load checks %v", got)
	}
	if l.Stale() {
		t.Error("stale right after a load")
	}
	first := r.Policies

	// Nothing changed: nothing re-parsed.
	r = l.Load()
	if len(r.Changed) != 0 || r.Policies[0] != first[0] || r.Policies[1] != first[1] {
		t.Fatalf("unchanged load: changed %v", r.Changed)
	}
	// Rewriting the same content (a touch) is no change either.
	writePolicy(t, dir, "a.yml", dirPolicy("a", "a1"))
	if l.Stale() {
		t.Error("same content counted as a change")
	}

	// A changed and an added file.
	now = t0.Add(time.Minute)
	writePolicy(t, dir, "a.yml", dirPolicy("a", "a1", "a2"))
	writePolicy(t, dir, "c.yml", dirPolicy("c", "c1"))
	if !l.Stale() {
		t.Fatal("changes not seen")
	}
	r = l.Load()
	if !reflect.DeepEqual(r.Changed, []string{"a.yml", "c.yml"}) || len(r.Errors) > 0 {
		t.Fatalf("changed %v errors %v", r.Changed, r.Errors)
	}
	if got := loadedChecks(r.Policies); !reflect.DeepEqual(got, map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}, "c": {"c1"}}) {
		t.Fatalf("checks %v", got)
	}

	// b breaks: its regex does not compile. The previous b stays, the
	// refusal names file and line, and says what stays in force.
	broken := dirPolicy("b", "b1", "b2") + "  - id: b3\n    title: b3\n    controls: {pci-dss-4.0: 2.2.6}\n    test: {file_matches: {path: /etc/x, regex: 'a(b'}}\n"
	writePolicy(t, dir, "b.yaml", broken)
	now = t0.Add(2 * time.Minute)
	r = l.Load()
	msg := errText(r.Errors)
	bpath := filepath.Join(dir, "b.yaml")
	if !strings.Contains(msg, bpath+":14: ") || !strings.Contains(msg, "does not compile") ||
		!strings.Contains(msg, bpath+": refused; the version loaded at 2026-11-02T10:00:00Z stays in force") {
		t.Fatalf("refusal not reported with file:line and the version in force:\n%s", msg)
	}
	if got := loadedChecks(r.Policies); !reflect.DeepEqual(got["b"], []string{"b1"}) || len(got) != 3 {
		t.Fatalf("previous b not in force: %v", got)
	}
	// Reported again on the next load, without re-reading a change.
	r = l.Load()
	if len(r.Changed) != 0 || errText(r.Errors) != msg {
		t.Fatalf("second load after the break: changed %v errors\n%s", r.Changed, errText(r.Errors))
	}
	// A file broken from the start loads nothing and is reported.
	writePolicy(t, dir, "d.yml", "policy: {id: d, name: d}\nchecks: []\n")
	r = l.Load()
	if !strings.Contains(errText(r.Errors), filepath.Join(dir, "d.yml")+":2: checks: expected a non-empty list") {
		t.Fatalf("d refusal: %s", errText(r.Errors))
	}
	if _, ok := loadedChecks(r.Policies)["d"]; ok {
		t.Fatal("broken new file loaded")
	}

	// Fixing b loads the new version; removing a and d drops them.
	writePolicy(t, dir, "b.yaml", dirPolicy("b", "b1", "b2"))
	if err := os.Remove(filepath.Join(dir, "a.yml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "d.yml")); err != nil {
		t.Fatal(err)
	}
	r = l.Load()
	if !reflect.DeepEqual(r.Changed, []string{"a.yml", "b.yaml", "d.yml"}) || len(r.Errors) > 0 {
		t.Fatalf("changed %v errors %v", r.Changed, r.Errors)
	}
	if got := loadedChecks(r.Policies); !reflect.DeepEqual(got, map[string][]string{"b": {"b1", "b2"}, "c": {"c1"}}) {
		t.Fatalf("checks after fix and removal %v", got)
	}

	// The set refuses the new b (say, a clashing id): Refuse puts the
	// previous version back and keeps reporting why.
	var newB *Policy
	for _, p := range r.Policies {
		if p.ID == "b" {
			newB = p
		}
	}
	if !l.Refuse(newB, errors.New(bpath+": policy id \"b\" is already defined by x.yml")) {
		t.Fatal("Refuse did not find b")
	}
	pols, errs := l.Current()
	if got := loadedChecks(pols); !reflect.DeepEqual(got["b"], []string{"b1"}) {
		t.Fatalf("after Refuse b has %v", got["b"])
	}
	if m := errText(errs); !strings.Contains(m, "already defined by x.yml") || !strings.Contains(m, "stays in force") {
		t.Fatalf("refusal %s", m)
	}

	// A directory that disappears keeps everything in force.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r = l.Load()
	if len(r.Policies) != 2 || !strings.Contains(errText(r.Errors), "the policies loaded before stay in force") {
		t.Fatalf("missing directory: %d policies, errors %v", len(r.Policies), r.Errors)
	}
}
