package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/fleet"
)

// fakeAptGet is a stand-in apt-get: it logs its arguments, reports two
// pending updates (one from a security origin) when simulating, "applies"
// upgrades, and hangs when asked to install hangpkg. The real package
// manager is never run.
const fakeAptGet = `#!/bin/sh
echo "$*" >> %q
if [ "$1" = "-s" ]; then
	echo "Inst openssl [3.0.1-1] (3.0.2-1 Debian-Security:12/stable-security [amd64])"
	echo "Inst tzdata [2024a-0] (2025b-0 Debian:12/stable [all])"
	exit 0
fi
if [ "$2" = "update" ]; then
	echo "Hit:1 http://deb.example stable InRelease"
	exit 0
fi
case "$*" in
*hangpkg*)
	echo "Unpacking hangpkg (1.0) ..."
	sleep 600
	;;
*gatedpkg*)
	echo "Unpacking gatedpkg (1.0) ..."
	while [ ! -f %q ]; do sleep 0.05; done
	echo "Setting up gatedpkg (1.0) ..."
	;;
*--only-upgrade*)
	echo "Unpacking openssl (3.0.2-1) over (3.0.1-1) ..."
	echo "Setting up openssl (3.0.2-1) ..."
	;;
*)
	echo "E: Unable to locate package" >&2
	exit 100
	;;
esac
`

type jobJSON struct {
	ID         string     `json:"id"`
	EndpointID string     `json:"endpoint_id"`
	Hostname   string     `json:"hostname"`
	Action     string     `json:"action"`
	Status     string     `json:"status"`
	ExitCode   *int       `json:"exit_code"`
	Output     string     `json:"output"`
	Error      string     `json:"error"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at"`
}

func (h *harness) createJob(body string) jobJSON {
	h.t.Helper()
	var out struct {
		Jobs []jobJSON `json:"jobs"`
	}
	h.do("POST", "/api/v1/jobs", body, http.StatusCreated, &out)
	if len(out.Jobs) != 1 {
		h.t.Fatalf("POST /api/v1/jobs %s: %d jobs", body, len(out.Jobs))
	}
	return out.Jobs[0]
}

func (h *harness) waitJob(id string, done func(jobJSON) bool) jobJSON {
	h.t.Helper()
	var j jobJSON
	waitFor(h.t, "job "+id, func() bool {
		var out struct {
			Job jobJSON `json:"job"`
		}
		h.do("GET", "/api/v1/jobs/"+id, "", http.StatusOK, &out)
		j = out.Job
		return done(j)
	})
	return j
}

func final(j jobJSON) bool { return j.Status != "queued" && j.Status != "sent" }

// TestAgentJobs runs the real agent binary against the real server with a
// fake apt-get first on its PATH: pending updates reported and shown in
// the fleet patch views, a security patch job run with its output stored,
// jobs refused by the server's allow-list and by the agent, a hanging
// package manager killed at the job's timeout, the long poll delivering a
// job at once, and every step on the timeline and in the audit log.
func TestAgentJobs(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/bin/sh is required")
		}
		t.Skip("no /bin/sh for the fake apt-get")
	}
	bin := buildAgent(t)
	fakeDir := t.TempDir()
	aptLog := filepath.Join(t.TempDir(), "apt-get.log")
	gate := filepath.Join(t.TempDir(), "gate")
	if err := os.WriteFile(filepath.Join(fakeDir, "apt-get"), []byte(fmt.Sprintf(fakeAptGet, aptLog, gate)), 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	h := startOn(t, app.Options{DataDir: dataDir}, "127.0.0.1:0")
	addr := h.app.Addr()
	tok := h.enrollmentToken()
	stateDir := t.TempDir()
	var agentErr syncBuffer
	cmd := exec.Command(bin, "--server", h.url, "--enroll-token", tok, "--state", stateDir, "--interval", "200ms",
		"--inventory-interval", "1h", "--updates-interval", "1h", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "PATH="+fakeDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stderr = &agentErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent stderr:\n%s", agentErr.String())
		}
	})
	// The first cycle also collects compliance facts, which may walk the
	// whole filesystem: allow it minutes.
	var ep endpointJSON
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if eps := h.endpoints(); len(eps) == 1 && eps[0].Batches >= 1 {
			ep = eps[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent sent no batch within 4 minutes")
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a correctness wait
	}

	// Pending updates, from the fake apt-get's simulation.
	type updatesJSON struct {
		State *struct {
			Manager string `json:"manager"`
		} `json:"state"`
		Updates []struct {
			Name     string `json:"name"`
			Version  string `json:"version"`
			Security bool   `json:"security"`
		} `json:"updates"`
		Pending  int `json:"pending"`
		Security int `json:"security"`
	}
	var ups updatesJSON
	waitFor(t, "pending updates", func() bool {
		h.do("GET", "/api/v1/endpoints/"+ep.ID+"/updates", "", http.StatusOK, &ups)
		return ups.Pending == 2
	})
	if ups.Security != 1 || ups.State == nil || ups.State.Manager != "apt" || ups.Updates[0].Name != "openssl" || !ups.Updates[0].Security {
		t.Errorf("updates = %+v", ups)
	}
	var patches struct {
		Patches []fleet.Patch `json:"patches"`
	}
	h.do("GET", "/api/v1/patches", "", http.StatusOK, &patches)
	if len(patches.Patches) != 1 || patches.Patches[0].Package != "openssl" || len(patches.Patches[0].Endpoints) != 1 ||
		patches.Patches[0].Endpoints[0].EndpointID != ep.ID {
		t.Errorf("patches = %+v", patches)
	}
	var comp fleet.Compliance
	h.do("GET", "/api/v1/patches/compliance?days=30", "", http.StatusOK, &comp)
	if comp.Endpoints != 1 || comp.Reporting != 1 || comp.Percent == nil || *comp.Percent != 100 {
		t.Errorf("compliance(30) = %+v", comp)
	}
	h.do("GET", "/api/v1/patches/compliance?days=soon", "", http.StatusBadRequest, nil)

	// The server's allow-list and argument checks: nothing queued.
	for _, body := range []string{
		fmt.Sprintf(`{"endpoints":[%q],"action":"rm.rf"}`, ep.ID),
		fmt.Sprintf(`{"endpoints":[%q],"action":"package.install","packages":["-oAPT::Update::Pre-Invoke::=sh"]}`, ep.ID),
		fmt.Sprintf(`{"endpoints":[%q],"action":"package.install"}`, ep.ID),
		fmt.Sprintf(`{"endpoints":[%q],"action":"shell","args":{"command":"id"}}`, ep.ID),
		fmt.Sprintf(`{"endpoints":[%q],"action":"patch.security","timeout":"forever"}`, ep.ID),
		`{"endpoints":["00000000-0000-4000-8000-000000000000"],"action":"patch.security"}`,
	} {
		h.do("POST", "/api/v1/jobs", body, http.StatusBadRequest, nil)
	}

	// A security patch job: only the security update is applied.
	j := h.createJob(fmt.Sprintf(`{"endpoints":[%q],"action":"patch.security","reason":"CVE-2026-0001"}`, ep.ID))
	if j.Status != "queued" || j.Hostname != ep.Hostname {
		t.Errorf("created job = %+v", j)
	}
	j = h.waitJob(j.ID, final)
	if j.Status != "succeeded" || j.ExitCode == nil || *j.ExitCode != 0 || !strings.Contains(j.Output, "Unpacking openssl") {
		t.Fatalf("patch job = %+v", j)
	}
	// The agent was parked in its long poll: the job left the queue at
	// once, not at the end of the poll's 25s wait.
	if j.SentAt == nil || j.SentAt.Sub(j.CreatedAt) > 2*time.Second {
		t.Errorf("job created %s, sent %v: the long poll was not woken", j.CreatedAt, j.SentAt)
	}
	logged, _ := os.ReadFile(aptLog)
	var upgraded string
	for _, l := range strings.Split(string(logged), "\n") {
		if strings.Contains(l, "--only-upgrade") {
			upgraded = l
		}
	}
	if !strings.HasSuffix(upgraded, " openssl") || strings.Contains(upgraded, "tzdata") || !strings.Contains(string(logged), "-q update") {
		t.Errorf("apt-get calls:\n%s", logged)
	}
	// The result is taken once.
	res, _ := json.Marshal(agentproto.JobResult{JobID: j.ID, Status: agentproto.JobFailed, FinishedAt: time.Now()})
	st, body := h.call(map[string]string{"Authorization": "Bearer " + readCredential(t, stateDir)}, "POST", agentproto.PathJobResult, string(res))
	if st != http.StatusOK || !strings.Contains(string(body), agentproto.StatusDuplicate) {
		t.Errorf("replayed result: %d %s", st, body)
	}
	if st, _ := h.call(nil, "GET", agentproto.PathJobs, ""); st != http.StatusUnauthorized {
		t.Errorf("job poll without credential: %d, want 401", st)
	}

	// Shell enabled by the admin, but the agent runs without
	// --allow-shell: it refuses.
	h.do("PUT", "/api/v1/endpoints/"+ep.ID+"/settings", `{"allow_shell":"yes"}`, http.StatusBadRequest, nil)
	h.do("PUT", "/api/v1/endpoints/"+ep.ID+"/settings", `{"allow_shell":true}`, http.StatusOK, nil)
	j = h.createJob(fmt.Sprintf(`{"endpoints":[%q],"action":"shell","args":{"command":"id"}}`, ep.ID))
	j = h.waitJob(j.ID, final)
	if j.Status != "refused" || !strings.Contains(j.Error, "allow-shell") {
		t.Errorf("shell job on an agent without --allow-shell = %+v", j)
	}

	// A hanging package manager is killed at the job's timeout.
	j = h.createJob(fmt.Sprintf(`{"endpoints":[%q],"action":"package.install","packages":["hangpkg"],"timeout":"2s"}`, ep.ID))
	j = h.waitJob(j.ID, final)
	if j.Status != "timeout" || !strings.Contains(j.Error, "timeout") || !strings.Contains(j.Output, "Unpacking hangpkg") {
		t.Errorf("hanging job = %+v", j)
	}
	// A queued job can be canceled; a finished one cannot.
	c := h.createJob(fmt.Sprintf(`{"endpoints":[%q],"action":"inventory.collect","not_before":%q}`, ep.ID, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	h.do("POST", "/api/v1/jobs/"+c.ID+"/cancel", "", http.StatusOK, nil)
	h.do("POST", "/api/v1/jobs/"+j.ID+"/cancel", "", http.StatusConflict, nil)
	var list struct {
		Jobs []jobJSON `json:"jobs"`
	}
	h.do("GET", "/api/v1/jobs?endpoint="+ep.ID, "", http.StatusOK, &list)
	if len(list.Jobs) != 4 {
		t.Errorf("jobs listed: %d, want 4", len(list.Jobs))
	}

	// On the timeline and in the audit log.
	if err := h.app.Events().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]int{"job.created": 4, "job.succeeded": 1, "job.refused": 1, "job.timeout": 1, "job.canceled": 1} {
		var out struct {
			Events []map[string]any `json:"events"`
		}
		h.do("GET", "/api/v1/events?q="+url.QueryEscape("event.action:"+action), "", http.StatusOK, &out)
		if len(out.Events) != want {
			t.Errorf("events %s: %d, want %d", action, len(out.Events), want)
		}
	}
	for action, want := range map[string]int{"job.create": 4, "job.result": 3, "job.cancel": 1, "endpoint.settings": 1} {
		var out struct {
			Entries []json.RawMessage `json:"entries"`
		}
		h.do("GET", "/api/v1/audit?action="+action, "", http.StatusOK, &out)
		if len(out.Entries) != want {
			t.Errorf("audit %s: %d entries, want %d", action, len(out.Entries), want)
		}
	}

	// A result survives a server outage: a job still running when the
	// server stops is reported once it is back.
	j = h.createJob(fmt.Sprintf(`{"endpoints":[%q],"action":"package.install","packages":["gatedpkg"]}`, ep.ID))
	waitFor(t, "gated job to start", func() bool {
		raw, _ := os.ReadFile(aptLog)
		return strings.Contains(string(raw), "gatedpkg")
	})
	h.stop()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "result kept on disk", func() bool {
		_, err := os.Stat(filepath.Join(stateDir, "jobs", j.ID+".result"))
		return err == nil
	})
	h2 := startOn(t, app.Options{DataDir: dataDir}, addr)
	j = h2.waitJob(j.ID, final)
	if j.Status != "succeeded" || !strings.Contains(j.Output, "Setting up gatedpkg") {
		t.Errorf("job finished during the outage = %+v", j)
	}
}

// TestSoftwareDenyList: a deny-list entry matching a package in an
// endpoint's inventory raises a SOC alert at once; deleting it resolves
// the alert.
func TestSoftwareDenyList(t *testing.T) {
	h := startWith(t, app.Options{})
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"ws7","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	_ = json.Unmarshal(body, &er)
	auth := map[string]string{"Authorization": "Bearer " + er.Credential}
	send := func(seq int, pkgs ...string) {
		t.Helper()
		inv := &agentproto.Inventory{Hostname: "ws7"}
		for _, p := range pkgs {
			inv.Packages = append(inv.Packages, agentproto.Package{Name: p, Version: "2.0", Arch: "amd64"})
		}
		raw, _ := json.Marshal(agentproto.Batch{BatchID: fmt.Sprintf("0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e%02d", seq), AgentID: er.AgentID,
			Seq: uint64(seq), SentAt: time.Now().UTC(), Inventory: inv})
		if st, body := h.call(auth, "POST", agentproto.PathBatches, string(raw)); st != http.StatusOK {
			t.Fatalf("batch: %d %s", st, body)
		}
	}
	send(1, "bash", "nmap")
	h.do("POST", "/api/v1/software/rules", `{"list":"deny","pattern":"[oops"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/software/rules", `{"list":"block","pattern":"nmap"}`, http.StatusBadRequest, nil)
	var rule struct {
		Rule struct {
			ID int64 `json:"id"`
		} `json:"rule"`
	}
	h.do("POST", "/api/v1/software/rules", `{"list":"deny","pattern":"nmap","reason":"scanner"}`, http.StatusCreated, &rule)
	h.do("POST", "/api/v1/software/rules", `{"list":"deny","pattern":"nmap"}`, http.StatusConflict, nil)
	fp := fleet.SoftwareAlertFingerprint(er.AgentID, "nmap")
	find := func() *alertJSON {
		for _, a := range h.alerts("") {
			if a.Fingerprint == fp {
				return &a
			}
		}
		return nil
	}
	waitFor(t, "denied software alert", func() bool { a := find(); return a != nil && a.Status == "firing" })
	if a := find(); a.Team != "soc" || a.Origin != "human" || a.Labels["package"] != "nmap" {
		t.Errorf("alert = %+v", *a)
	}
	var sw struct {
		Software []fleet.Software `json:"software"`
	}
	h.do("GET", "/api/v1/software?q=nmap", "", http.StatusOK, &sw)
	if len(sw.Software) != 1 || sw.Software[0].Status != "denied" || len(sw.Software[0].Versions) != 1 || sw.Software[0].Versions[0].Endpoints[0].ID != er.AgentID {
		t.Errorf("software = %+v", sw)
	}
	// Removed from the endpoint: the alert resolves.
	send(2, "bash")
	waitFor(t, "alert resolved", func() bool { a := find(); return a != nil && a.Status == "resolved" })
	h.do("DELETE", fmt.Sprintf("/api/v1/software/rules/%d", rule.Rule.ID), "", http.StatusNoContent, nil)
	h.do("DELETE", fmt.Sprintf("/api/v1/software/rules/%d", rule.Rule.ID), "", http.StatusNotFound, nil)
	// Roles: viewers read; operators queue jobs; only admins change the
	// lists and endpoint settings.
	h.do("POST", "/api/v1/users", `{"name":"vera","role":"viewer","password":"viewer-password-1"}`, http.StatusCreated, nil)
	h.do("POST", "/api/v1/users", `{"name":"otto","role":"operator","password":"operator-password-1"}`, http.StatusCreated, nil)
	cred := func(user string) string {
		var tok struct {
			Token string `json:"token"`
		}
		h.do("POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"%s-cli","user":"%s"}`, user, user), http.StatusCreated, &tok)
		return "bearer:" + tok.Token
	}
	viewer, operator := cred("vera"), cred("otto")
	job := fmt.Sprintf(`{"endpoints":[%q],"action":"inventory.collect"}`, er.AgentID)
	h.doAs(viewer, "GET", "/api/v1/software", "", http.StatusOK, nil)
	h.doAs(viewer, "GET", "/api/v1/patches/compliance", "", http.StatusOK, nil)
	h.doAs(viewer, "GET", "/api/v1/jobs", "", http.StatusOK, nil)
	h.doAs(viewer, "POST", "/api/v1/jobs", job, http.StatusForbidden, nil)
	h.doAs(operator, "POST", "/api/v1/jobs", job, http.StatusCreated, nil)
	h.doAs(operator, "POST", "/api/v1/software/rules", `{"list":"deny","pattern":"x"}`, http.StatusForbidden, nil)
	h.doAs(operator, "PUT", "/api/v1/endpoints/"+er.AgentID+"/settings", `{"allow_shell":true}`, http.StatusForbidden, nil)
	if st, _ := h.call(nil, "GET", "/api/v1/jobs", ""); st != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/jobs without a token: %d, want 401", st)
	}

	var audit struct {
		Entries []json.RawMessage `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?target="+url.QueryEscape(fmt.Sprintf("software_rule:%d", rule.Rule.ID)), "", http.StatusOK, &audit)
	if len(audit.Entries) != 2 {
		t.Errorf("audit entries for the rule: %d, want 2 (create, delete)", len(audit.Entries))
	}
}
