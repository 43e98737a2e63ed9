package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agent"
	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/app"
)

const complianceDirPolicy = `policy: {id: site, name: Site policy}
checks:
  - id: site-login-defs-max-days
    title: Passwords expire within 90 days
    remediation: Set PASS_MAX_DAYS 90 in /etc/login.defs.
    severity: high
    controls: {pci-dss-4.0: 8.3.9, iso27001-2022: A.5.17}
    test:
      file_matches: {path: /etc/login.defs, regex: '^PASS_MAX_DAYS\s+([1-9]|[1-8][0-9]|90)$'}
  - id: site-libc
    title: libc is installed
    controls: {pci-dss-4.0: 6.3.3}
    test: {package_installed: libc6}
`

type resultJSON struct {
	Endpoint    string `json:"endpoint"`
	Check       string `json:"check"`
	Status      string `json:"status"`
	ExceptionID int64  `json:"exception_id"`
	Evidence    []struct {
		Observed string `json:"observed"`
	} `json:"evidence"`
	CollectedAt time.Time `json:"collected_at"`
}

// TestComplianceEndToEnd: policies from the built-in pack and a
// directory (one refused with file:line), an agent's real facts from a
// file tree and this machine's dpkg database, drift alert raised and
// resolved, exceptions, reports, uploads and refusals.
func TestComplianceEndToEnd(t *testing.T) {
	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(polDir, "site.yml"), []byte(complianceDirPolicy), 0o644))
	must(t, os.WriteFile(filepath.Join(polDir, "broken.yml"), []byte(strings.Replace(complianceDirPolicy, "id: site,", "id: broken,", 1)+
		"  - id: broken-1\n    title: x\n    controls: {pci-dss-4.0: 1.1}\n    test: {command: {name: rm-everything, empty: true}}\n"), 0o644))
	cfg := filepath.Join(dir, "nocsoc.yml")
	must(t, os.WriteFile(cfg, []byte("compliance:\n  policies: "+polDir+"\n"), 0o644))
	h := startWith(t, app.Options{ConfigPath: cfg})

	var pols struct {
		Policies []struct {
			ID, Source string
			Checks     int
		} `json:"policies"`
		Errors []string `json:"errors"`
	}
	h.do("GET", "/api/v1/compliance/policies", "", http.StatusOK, &pols)
	if len(pols.Policies) != 2 || pols.Policies[0].ID != "linux-baseline" || pols.Policies[1].ID != "site" {
		t.Fatalf("policies %+v", pols.Policies)
	}
	if len(pols.Errors) != 1 || !strings.Contains(pols.Errors[0], "broken.yml:17: ") || !strings.Contains(pols.Errors[0], "not on the allow-list") {
		t.Fatalf("policy errors %q", pols.Errors)
	}

	// Enroll an agent by hand and speak its protocol.
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"web1","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	must(t, json.Unmarshal(body, &er))
	agentAuth := bearerHdr(er.Credential)
	if st, _ := h.call(nil, "GET", agentproto.PathFactSpec, ""); st != http.StatusUnauthorized {
		t.Fatalf("fact spec without credential: %d", st)
	}
	st, body = h.call(agentAuth, "GET", agentproto.PathFactSpec, "")
	var spec agentproto.FactSpec
	if st != http.StatusOK || json.Unmarshal(body, &spec) != nil || !contains(spec.Contents, "/etc/login.defs") || !contains(spec.Commands, "sshd-effective-config") {
		t.Fatalf("fact spec: %d %s", st, body)
	}

	// Facts from a real file tree and this machine's dpkg database.
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	loginDefs := filepath.Join(root, "etc/login.defs")
	must(t, os.WriteFile(loginDefs, []byte("PASS_MAX_DAYS 60\n"), 0o644))
	dpkg, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/var/lib/dpkg/status is required in CI")
		}
		t.Skip("no dpkg database on this machine")
	}
	pkgs, err := agent.ParseDpkgStatus(dpkg)
	dpkg.Close()
	must(t, err)
	col := &agent.Collector{Root: root}
	// Commands run for real on this machine, not in the file tree, and
	// find / takes minutes here: the test leaves them out (the agent
	// package tests run them).
	spec.Commands = nil
	seq := 0
	send := func() {
		t.Helper()
		seq++
		now := time.Now().UTC()
		f := col.Facts(context.Background(), spec, now)
		b := agentproto.Batch{BatchID: fmt.Sprintf("0b5c3f8e-1d2a-4c3b-8e9f-%012d", seq), AgentID: er.AgentID, Seq: uint64(seq), SentAt: now,
			Inventory: &agentproto.Inventory{CollectedAt: now, Hostname: "web1", Packages: pkgs}, Facts: &f}
		raw, _ := json.Marshal(b)
		if st, body := h.call(agentAuth, "POST", agentproto.PathBatches, string(raw)); st != http.StatusOK {
			t.Fatalf("batch %d: %d %s", seq, st, body)
		}
	}
	result := func(check string) resultJSON {
		t.Helper()
		var out struct {
			Results []resultJSON `json:"results"`
		}
		h.do("GET", "/api/v1/compliance/results?endpoint="+er.AgentID, "", http.StatusOK, &out)
		for _, r := range out.Results {
			if r.Check == check {
				return r
			}
		}
		t.Fatalf("no result for %s in %d results", check, len(out.Results))
		return resultJSON{}
	}
	driftAlerts := func(status string) []alertJSON {
		var out []alertJSON
		for _, a := range h.alerts("source=compliance&status=" + status) {
			if a.Labels["check"] == "site-login-defs-max-days" {
				out = append(out, a)
			}
		}
		return out
	}
	const check = "site-login-defs-max-days"
	send()
	if r := result(check); r.Status != "pass" || len(r.Evidence) != 1 || r.Evidence[0].Observed != "matched: PASS_MAX_DAYS 60" {
		t.Fatalf("first result %+v", r)
	}
	if r := result("site-libc"); r.Status != "pass" {
		t.Fatalf("libc %+v", r)
	}
	if r := result("sysctl-ip-forward-off"); r.Status != "fail" || r.Evidence[0].Observed != "key does not exist" {
		t.Errorf("sysctl absent from the file tree: %+v, want fail", r)
	}
	if r := result("time-synchronized"); r.Status != "error" {
		t.Errorf("command not collected: %+v, want error", r)
	}

	// Drift: the file changes, the check fails, a SOC alert fires.
	must(t, os.WriteFile(loginDefs, []byte("PASS_MAX_DAYS 99999\n"), 0o644))
	send()
	if r := result(check); r.Status != "fail" {
		t.Fatalf("after drift %+v", r)
	}
	var firing []alertJSON
	waitFor(t, "drift alert", func() bool { firing = driftAlerts("firing"); return len(firing) == 1 })
	if a := firing[0]; a.Team != "soc" || a.Labels["endpoint"] != er.AgentID || a.Severity != "high" {
		t.Errorf("drift alert %+v", a)
	}

	// An exception accepts the risk: excepted, and the alert resolves.
	h.do("POST", "/api/v1/compliance/exceptions", `{"endpoint":"*","check":"no-such-check","owner":"x","reason":"y","expires":"2099-01-01T00:00:00Z"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/compliance/exceptions", `{"endpoint":"`+er.AgentID+`","check":"`+check+`","owner":"x","reason":"y","expires":"2001-01-01T00:00:00Z"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/compliance/exceptions", `{"endpoint":"nope","check":"`+check+`","owner":"x","reason":"y","expires":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, http.StatusBadRequest, nil)
	var exc struct {
		Exception struct {
			ID int64 `json:"id"`
		} `json:"exception"`
	}
	h.do("POST", "/api/v1/compliance/exceptions", `{"endpoint":"`+er.AgentID+`","check":"`+check+`","owner":"Jane (CISO)","reason":"legacy app needs long-lived service passwords","expires":"`+
		time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339)+`"}`, http.StatusCreated, &exc)
	if r := result(check); r.Status != "excepted" || r.ExceptionID != exc.Exception.ID {
		t.Fatalf("with exception %+v", r)
	}
	waitFor(t, "drift alert resolved", func() bool { return len(driftAlerts("resolved")) == 1 && len(driftAlerts("firing")) == 0 })
	h.do("PUT", fmt.Sprintf("/api/v1/compliance/exceptions/%d", exc.Exception.ID), `{"owner":"Jane","reason":"still legacy","expires":"`+
		time.Now().Add(10*24*time.Hour).UTC().Format(time.RFC3339)+`"}`, http.StatusOK, nil)
	// Revoking it makes the check fail again: drift once more.
	h.do("DELETE", fmt.Sprintf("/api/v1/compliance/exceptions/%d", exc.Exception.ID), "", http.StatusOK, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/compliance/exceptions/%d", exc.Exception.ID), "", http.StatusConflict, nil)
	if r := result(check); r.Status != "fail" {
		t.Fatalf("after revoke %+v", r)
	}
	waitFor(t, "drift alert again", func() bool { return len(driftAlerts("firing")) == 1 })
	// Fixed: resolved.
	must(t, os.WriteFile(loginDefs, []byte("PASS_MAX_DAYS 90\n"), 0o644))
	send()
	if r := result(check); r.Status != "pass" {
		t.Fatalf("after fix %+v", r)
	}
	waitFor(t, "drift alert resolved again", func() bool { return len(driftAlerts("firing")) == 0 })

	// On-demand evaluation and scores.
	var ev struct {
		N int `json:"evaluated_endpoints"`
	}
	h.do("POST", "/api/v1/compliance/evaluate", "", http.StatusOK, &ev)
	if ev.N != 1 {
		t.Errorf("evaluated %d endpoints", ev.N)
	}
	var scores struct {
		Overall    struct{ Pass, Fail, Error int } `json:"overall"`
		Frameworks map[string]struct {
			Percent float64 `json:"percent"`
		} `json:"frameworks"`
		Trend []struct {
			Day string `json:"day"`
		} `json:"trend"`
	}
	h.do("GET", "/api/v1/compliance/scores", "", http.StatusOK, &scores)
	if scores.Overall.Pass == 0 || len(scores.Frameworks) != 4 || len(scores.Trend) != 1 {
		t.Errorf("scores %+v", scores)
	}

	// Reports.
	var rep struct {
		Framework string `json:"framework"`
		Endpoints int    `json:"endpoints"`
		Controls  []struct {
			ID     string `json:"id"`
			Checks []struct {
				ID      string       `json:"id"`
				Results []resultJSON `json:"results"`
			} `json:"checks"`
		} `json:"controls"`
		Exceptions []struct {
			Owner string `json:"owner"`
		} `json:"exceptions"`
		Audit []struct {
			Action string `json:"action"`
		} `json:"audit"`
		ServiceLevel *struct {
			Incidents int `json:"incidents"`
		} `json:"service_level"`
	}
	h.do("GET", "/api/v1/compliance/report?framework=pci-dss-4.0&from=2020-01-01", "", http.StatusOK, &rep)
	found := false
	for _, c := range rep.Controls {
		for _, ch := range c.Checks {
			if c.ID == "8.3.9" && ch.ID == check && len(ch.Results) == 1 && ch.Results[0].Status == "pass" {
				found = true
			}
		}
	}
	if !found || rep.Endpoints != 1 || len(rep.Exceptions) != 1 || rep.ServiceLevel == nil {
		t.Errorf("report: found %v, %d endpoints, %d exceptions, service level %v", found, rep.Endpoints, len(rep.Exceptions), rep.ServiceLevel)
	}
	actions := map[string]bool{}
	for _, a := range rep.Audit {
		actions[a.Action] = true
	}
	for _, a := range []string{"compliance.exception.create", "compliance.exception.update", "compliance.exception.revoke"} {
		if !actions[a] {
			t.Errorf("report audit lacks %s: %v", a, actions)
		}
	}
	st, body = h.call(bearerHdr(h.token), "GET", "/api/v1/compliance/report?framework=pci-dss-4.0&format=csv", "")
	if st != http.StatusOK || !strings.HasPrefix(string(body), "framework,control,check,") || !strings.Contains(string(body), check) {
		t.Errorf("csv report: %d %.200s", st, body)
	}
	st, body = h.call(bearerHdr(h.token), "GET", "/api/v1/compliance/report?framework=iso27001-2022&format=html", "")
	if st != http.StatusOK || !strings.Contains(string(body), "<h1>Compliance evidence report: ISO/IEC 27001:2022 Annex A</h1>") || strings.Contains(string(body), "<script") {
		t.Errorf("html report: %d %.300s", st, body)
	}
	h.do("GET", "/api/v1/compliance/report?framework=sox", "", http.StatusBadRequest, nil)
	h.do("GET", "/api/v1/compliance/report?framework=pci-dss-4.0&format=pdf", "", http.StatusBadRequest, nil)
	h.do("GET", "/api/v1/compliance/report?framework=pci-dss-4.0&from=yesterday", "", http.StatusBadRequest, nil)

	// Checks listing.
	var checks struct {
		Checks []struct {
			ID string `json:"id"`
		} `json:"checks"`
	}
	h.do("GET", "/api/v1/compliance/checks?framework=nist-csf-2.0", "", http.StatusOK, &checks)
	if len(checks.Checks) < 40 {
		t.Errorf("%d NIST checks", len(checks.Checks))
	}

	// Policy upload: refused with line numbers, read-only ids, accepted.
	st, body = h.call(bearerHdr(h.token), "POST", "/api/v1/compliance/policies", "policy: {id: up, name: Up}\nchecks:\n  - id: up-1\n    title: t\n    controls: {pci-dss-4.0: 2.2.6}\n    test: {file_matches: {path: /etc/x, regex: '(unclosed'}}\n")
	if st != http.StatusBadRequest || !strings.Contains(string(body), "upload:6: ") || !strings.Contains(string(body), "does not compile") {
		t.Errorf("bad upload: %d %s", st, body)
	}
	st, body = h.call(bearerHdr(h.token), "POST", "/api/v1/compliance/policies", complianceDirPolicy)
	if st != http.StatusConflict {
		t.Errorf("upload over a directory policy: %d %s", st, body)
	}
	up := "policy: {id: up, name: Up}\nchecks:\n  - id: up-1\n    title: hosts file\n    controls: {pci-dss-4.0: 2.2.6}\n    test: {file_exists: /etc/hosts}\n"
	if st, body := h.call(bearerHdr(h.token), "POST", "/api/v1/compliance/policies", up); st != http.StatusCreated {
		t.Fatalf("upload: %d %s", st, body)
	}
	st, body = h.call(bearerHdr(h.token), "POST", "/api/v1/compliance/policies", strings.Replace(up, "up-1", "site-libc", 1))
	if st != http.StatusBadRequest || !strings.Contains(string(body), `check id \"site-libc\" is already defined`) {
		t.Errorf("clashing upload: %d %s", st, body)
	}
	h.do("DELETE", "/api/v1/compliance/policies/up", "", http.StatusNoContent, nil)
	h.do("DELETE", "/api/v1/compliance/policies/linux-baseline", "", http.StatusConflict, nil)

	// Roles: a viewer reads, cannot change.
	h.do("POST", "/api/v1/users", `{"name":"vic","role":"viewer","password":"viewer-password-1"}`, http.StatusCreated, nil)
	var vt struct {
		Token string `json:"token"`
	}
	h.do("POST", "/api/v1/tokens", `{"name":"vic-cli","user":"vic"}`, http.StatusCreated, &vt)
	viewer := "bearer:" + vt.Token
	h.doAs(viewer, "GET", "/api/v1/compliance/results", "", http.StatusOK, nil)
	h.doAs(viewer, "POST", "/api/v1/compliance/exceptions", `{}`, http.StatusForbidden, nil)
	h.doAs(viewer, "POST", "/api/v1/compliance/evaluate", "", http.StatusForbidden, nil)
	h.doAs(viewer, "POST", "/api/v1/compliance/policies", up, http.StatusForbidden, nil)
	h.doAs("", "GET", "/api/v1/compliance/checks", "", http.StatusUnauthorized, nil)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
