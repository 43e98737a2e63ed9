package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/app"
)

func pkgPolicy(id string, checks ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy: {id: %s, name: %s}\nchecks:\n", id, id)
	for _, c := range checks {
		// "installed-X" passes when package X is installed.
		fmt.Fprintf(&b, "  - id: %s\n    title: %s\n    controls: {pci-dss-4.0: 6.3.3}\n    test: {package_installed: %s}\n",
			c, c, strings.TrimPrefix(c, "installed-"))
	}
	return b.String()
}

type reloadFixture struct {
	h        *harness
	polDir   string
	write    func(name, src string)
	results  func() map[string]string
	policies func() polList
}

type polList struct {
	Policies []struct {
		ID     string `json:"id"`
		Source string `json:"source"`
		Checks int    `json:"checks"`
	} `json:"policies"`
	Errors []string `json:"errors"`
}

func same(got, want map[string]string) bool { return fmt.Sprint(got) == fmt.Sprint(want) }

// newReloadFixture starts a server whose only policy is site.yml in a
// policy directory (poll is the config and policy poll interval, -1 for
// none) and one endpoint that reported libc6 and openssh-server.
func newReloadFixture(t *testing.T, poll time.Duration) *reloadFixture {
	t.Helper()
	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	must(t, os.MkdirAll(polDir, 0o755))
	write := func(name, src string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(polDir, name), []byte(src), 0o644))
	}
	write("site.yml", pkgPolicy("site", "installed-libc6"))
	cfg := filepath.Join(dir, "nocsoc.yml")
	must(t, os.WriteFile(cfg, []byte("compliance:\n  policies: "+polDir+"\n  builtin: false\n  retention: 30d\n"), 0o644))
	h := startWith(t, app.Options{ConfigPath: cfg, ConfigPoll: poll})

	// One endpoint reports an inventory with two packages.
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"db1","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	must(t, json.Unmarshal(body, &er))
	now := time.Now().UTC()
	b := agentproto.Batch{BatchID: "4c1a9e2b-7d3f-4e5a-9b8c-000000000001", AgentID: er.AgentID, Seq: 1, SentAt: now,
		Inventory: &agentproto.Inventory{CollectedAt: now, Hostname: "db1", OS: "linux",
			Packages: []agentproto.Package{{Name: "libc6", Version: "2.36-9"}, {Name: "openssh-server", Version: "1:9.2p1-2"}}}}
	raw, _ := json.Marshal(b)
	if st, body := h.call(bearerHdr(er.Credential), "POST", agentproto.PathBatches, string(raw)); st != http.StatusOK {
		t.Fatalf("batch: %d %s", st, body)
	}
	results := func() map[string]string {
		t.Helper()
		var out struct {
			Results []resultJSON `json:"results"`
		}
		h.do("GET", "/api/v1/compliance/results?endpoint="+er.AgentID, "", http.StatusOK, &out)
		m := map[string]string{}
		for _, r := range out.Results {
			m[r.Check] = r.Status
		}
		return m
	}
	policies := func() polList {
		t.Helper()
		var out polList
		h.do("GET", "/api/v1/compliance/policies", "", http.StatusOK, &out)
		sort.Slice(out.Policies, func(i, j int) bool { return out.Policies[i].ID < out.Policies[j].ID })
		return out
	}
	return &reloadFixture{h: h, polDir: polDir, write: write, results: results, policies: policies}
}

// TestCompliancePolicyReload: policy files added, changed, broken and
// removed are picked up by a config reload; the endpoints are
// re-evaluated at once from their stored facts; a broken file keeps its
// previous version with the error reported as file:line; an uploaded
// policy survives reloads.
func TestCompliancePolicyReload(t *testing.T) {
	f := newReloadFixture(t, -1)
	h, write, results, policies, polDir := f.h, f.write, f.results, f.policies, f.polDir
	ctx := context.Background()
	if r := results(); !same(r, map[string]string{"installed-libc6": "pass"}) {
		t.Fatalf("first results %v", r)
	}

	// An API upload, which reloads must leave alone.
	h.do("POST", "/api/v1/compliance/policies", pkgPolicy("uploaded", "installed-openssh-server"), http.StatusCreated, nil)

	// Changed and added files, applied by a config reload: the endpoint
	// is re-evaluated without sending anything.
	write("site.yml", pkgPolicy("site", "installed-libc6", "installed-nginx"))
	write("extra.yaml", pkgPolicy("extra", "installed-openssh-server"))
	must(t, h.app.Reload(ctx))
	want := map[string]string{"installed-libc6": "pass", "installed-nginx": "fail", "installed-openssh-server": "pass"}
	if r := results(); !same(r, want) {
		t.Fatalf("after reload %v, want %v", r, want)
	}
	// extra's check id clashes with the uploaded policy's: the file
	// changed, so it takes the id (directory policies load before
	// uploaded ones) and the uploaded policy is refused while they clash.
	p := policies()
	if len(p.Policies) != 2 || p.Policies[0].ID != "extra" || p.Policies[1].ID != "site" {
		t.Fatalf("policies after reload %+v errors %q", p.Policies, p.Errors)
	}
	if len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0], "api:uploaded:3: ") || !strings.Contains(p.Errors[0], `is already defined by policy "extra"`) {
		t.Fatalf("clash not reported: %q", p.Errors)
	}
	// Once the file no longer clashes, the upload is back, untouched.
	write("extra.yaml", pkgPolicy("extra", "installed-zsh"))
	must(t, h.app.Reload(ctx))
	want["installed-zsh"] = "fail"
	if r := results(); !same(r, want) {
		t.Fatalf("after fixing extra %v, want %v", r, want)
	}
	if p := policies(); len(p.Policies) != 3 || p.Policies[2].ID != "uploaded" || p.Policies[2].Source != "api" || len(p.Errors) != 0 {
		t.Fatalf("upload not back: %+v %q", p.Policies, p.Errors)
	}
	// A reload with nothing changed changes nothing.
	must(t, h.app.Reload(ctx))
	if r := results(); !same(r, want) {
		t.Fatalf("after an idle reload %v, want %v", r, want)
	}

	// site.yml breaks: refused with file:line, its previous version (with
	// installed-nginx) stays in force, the other files still load.
	write("site.yml", pkgPolicy("site", "installed-libc6")+"  - id: bad\n    title: bad\n    controls: {pci-dss-4.0: 6.3.3}\n    test: {package_teleported: x}\n")
	must(t, h.app.Reload(ctx))
	p = policies()
	if len(p.Errors) != 2 || !strings.Contains(p.Errors[0], filepath.Join(polDir, "site.yml")+":10: ") ||
		!strings.Contains(p.Errors[0], `unknown test type "package_teleported"`) || !strings.Contains(p.Errors[1], "stays in force") {
		t.Fatalf("broken file errors %q", p.Errors)
	}
	if r := results(); !same(r, want) {
		t.Fatalf("broken file changed results %v, want %v", r, want)
	}

	// Retention runs (nothing is old enough to go).
	res, err := h.app.PruneCompliance(ctx)
	if err != nil || res.HistoryRows != 0 || res.TrendRows != 0 {
		t.Fatalf("prune %+v %v", res, err)
	}
}

// TestCompliancePolicyDirPolling: without a config reload, changed and
// removed policy files apply within a few polls of the directory.
func TestCompliancePolicyDirPolling(t *testing.T) {
	f := newReloadFixture(t, 20*time.Millisecond)
	write, results, polDir := f.write, f.results, f.polDir
	write("extra.yaml", pkgPolicy("extra", "installed-openssh-server"))
	want := map[string]string{"installed-libc6": "pass", "installed-openssh-server": "pass"}
	waitFor(t, "added policy file picked up by polling", func() bool { return same(results(), want) })

	// A broken change: refused, reported, the previous version stays.
	write("site.yml", "policy: {id: site, name: site}\nchecks:\n  - id: x\n")
	waitFor(t, "refusal reported", func() bool {
		p := f.policies()
		return len(p.Errors) > 1 && strings.Contains(p.Errors[len(p.Errors)-1], "site.yml: refused; the version loaded at")
	})
	if p := f.policies(); !strings.HasPrefix(p.Errors[0], filepath.Join(polDir, "site.yml")+":3: ") || len(p.Policies) != 2 {
		t.Fatalf("broken site.yml: %+v %q", p.Policies, p.Errors)
	}
	if r := results(); !same(r, want) {
		t.Fatalf("results changed by a refused file: %v", r)
	}

	// Removing extra.yaml and fixing site.yml apply too.
	must(t, os.Remove(filepath.Join(polDir, "extra.yaml")))
	write("site.yml", pkgPolicy("site", "installed-libc6", "installed-postgresql"))
	want = map[string]string{"installed-libc6": "pass", "installed-postgresql": "fail"}
	waitFor(t, "policy directory change picked up by polling", func() bool { return same(results(), want) })
	if p := f.policies(); len(p.Errors) != 0 || len(p.Policies) != 1 {
		t.Fatalf("after polling: %+v %q", p.Policies, p.Errors)
	}
}
