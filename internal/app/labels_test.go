package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agent"
	"github.com/nocsoc/nocsoc/internal/app"
)

type labelledEndpoint struct {
	ID          string            `json:"id"`
	Labels      map[string]string `json:"labels"`
	AgentLabels map[string]string `json:"agent_labels"`
	AdminLabels map[string]string `json:"admin_labels"`
}

type enforcementJob struct {
	EndpointID string `json:"endpoint_id"`
	JobAction  string `json:"job_action"`
	Status     string `json:"status"`
}

// startAgent runs one more in-process agent with labels until the test
// ends.
func (h *respHarness) startAgent(labels map[string]string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Server: h.url, EnrollToken: h.enrollmentToken(), StateDir: h.t.TempDir(),
			Interval: time.Second, JobWait: 5 * time.Second, ActiveResponse: true, UpdatesInterval: -1, Labels: labels})
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (h *respHarness) labelledEndpoints() map[string]labelledEndpoint {
	h.t.Helper()
	var out struct {
		Endpoints []labelledEndpoint `json:"endpoints"`
	}
	h.do("GET", "/api/v1/endpoints", "", http.StatusOK, &out)
	m := map[string]labelledEndpoint{}
	for _, e := range out.Endpoints {
		m[e.ID] = e
	}
	return m
}

// finished lists "action endpoint" of a decision's finished, successful
// jobs.
func (h *respHarness) finished(decisionID int64) []string {
	h.t.Helper()
	var out struct {
		Jobs []enforcementJob `json:"jobs"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/decisions/%d/enforcement", decisionID), "", http.StatusOK, &out)
	var s []string
	for _, j := range out.Jobs {
		if j.Status == "succeeded" {
			s = append(s, j.JobAction+" "+j.EndpointID)
		}
	}
	sort.Strings(s)
	return s
}

// TestLabelScopedBlockOnAgents: agents started with --label report their
// labels; a decision for role=web reaches the two of three agents that
// carry it (the API says so when it is made); an admin relabels (admin
// labels win, an empty value removes the agent's) and the block moves
// with the label; bad selectors are refused with nothing written.
func TestLabelScopedBlockOnAgents(t *testing.T) {
	fw := &fakeFirewall{}
	h := startResponse(t, "", agent.NewResponder(agent.ResponderOptions{Firewall: fw}))
	plain := h.endpoint.ID
	h.startAgent(map[string]string{"role": "web"})
	h.startAgent(map[string]string{"role": "web", "env": "prod"})
	var web []string
	waitFor(t, "three agents enrolled with their labels", func() bool {
		web = web[:0]
		eps := h.labelledEndpoints()
		for id, e := range eps {
			if e.Labels["role"] == "web" {
				web = append(web, id)
			}
		}
		return len(eps) == 3 && len(web) == 2
	})
	sort.Strings(web)
	if e := h.labelledEndpoints()[plain]; len(e.Labels) != 0 {
		t.Errorf("agent without --label has labels %v", e.Labels)
	}

	var d struct {
		ID                int64             `json:"id"`
		Labels            map[string]string `json:"labels"`
		Endpoints         any               `json:"endpoints"`
		ResolvedEndpoints int               `json:"resolved_endpoints"`
	}
	h.do("POST", "/api/v1/decisions", `{"value":"203.0.113.9","duration":"1h","labels":{"role":"web"},"reason":"web tier scan"}`, http.StatusCreated, &d)
	if d.Labels["role"] != "web" || d.Endpoints != nil || d.ResolvedEndpoints != 2 {
		t.Fatalf("decision = %+v, want labels role=web, 2 endpoints now", d)
	}
	want := []string{"firewall.block " + web[0], "firewall.block " + web[1]}
	waitFor(t, "the block on both web agents", func() bool { return slices.Equal(h.finished(d.ID), want) })

	// Relabel: the plain agent becomes a web server (admin), the second
	// web agent's role is removed by the admin.
	var moved labelledEndpoint
	h.do("PUT", "/api/v1/endpoints/"+plain+"/labels", `{"labels":{"role":"web"}}`, http.StatusOK, &struct {
		Endpoint *labelledEndpoint `json:"endpoint"`
	}{&moved})
	if moved.Labels["role"] != "web" || moved.AdminLabels["role"] != "web" {
		t.Errorf("relabelled endpoint = %+v", moved)
	}
	h.do("PUT", "/api/v1/endpoints/"+web[1]+"/labels", `{"labels":{"role":""}}`, http.StatusOK, nil)
	if e := h.labelledEndpoints()[web[1]]; e.Labels["role"] != "" || e.AgentLabels["role"] != "web" {
		t.Errorf("admin removal: %+v", e)
	}
	want = append(want, "firewall.block "+plain, "firewall.unblock "+web[1])
	sort.Strings(want)
	waitFor(t, "the block following the labels", func() bool { return slices.Equal(h.finished(d.ID), want) })
	// The agent keeps reporting role=web; the admin's removal still wins.
	if e := h.labelledEndpoints()[web[1]]; e.Labels["role"] != "" {
		t.Errorf("agent report overrode the admin: %+v", e)
	}

	// Bad input: named, nothing written.
	var before struct {
		Decisions []any `json:"decisions"`
	}
	h.do("GET", "/api/v1/decisions", "", http.StatusOK, &before)
	for _, bad := range []string{
		`{"value":"203.0.113.10","labels":{}}`,
		`{"value":"203.0.113.10","labels":{"role":"web"},"endpoints":"all"}`,
		`{"value":"203.0.113.10","labels":{"Role!":"web"}}`,
		`{"value":"203.0.113.10","labels":"role=web"}`,
	} {
		var e struct {
			Field string `json:"field"`
		}
		h.do("POST", "/api/v1/decisions", bad, http.StatusBadRequest, &e)
		if !strings.HasPrefix(e.Field, "labels") {
			t.Errorf("%s: field %q, want labels…", bad, e.Field)
		}
	}
	h.do("PUT", "/api/v1/endpoints/"+plain+"/labels", `{"labels":{"bad key":"x"}}`, http.StatusBadRequest, nil)
	h.do("PUT", "/api/v1/endpoints/nope/labels", `{"labels":{}}`, http.StatusNotFound, nil)
	var after struct {
		Decisions []any `json:"decisions"`
	}
	h.do("GET", "/api/v1/decisions", "", http.StatusOK, &after)
	if len(after.Decisions) != len(before.Decisions) {
		t.Errorf("bad selectors stored %d decisions", len(after.Decisions)-len(before.Decisions))
	}
	if e := h.labelledEndpoints()[plain]; e.Labels["role"] != "web" || len(e.AdminLabels) != 1 {
		t.Errorf("a refused relabel changed %+v", e)
	}
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
			Target string `json:"target"`
		} `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?limit=200", "", http.StatusOK, &audit)
	n := 0
	for _, e := range audit.Entries {
		if e.Action == "endpoint.labels" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d endpoint.labels audit entries, want 2", n)
	}
}

// TestAutomaticResponseIncidentTimeline: an SSH brute force fires the
// built-in rule, whose response blocks the source; the incident the
// alert opened shows the request, the execution (decision and expiry)
// and the result per endpoint.
func TestAutomaticResponseIncidentTimeline(t *testing.T) {
	fw := &fakeFirewall{}
	h := startResponse(t, "", agent.NewResponder(agent.ResponderOptions{Firewall: fw}))
	h.bruteForce("198.51.100.23", h.endpoint.Hostname, 12)
	var act autoActionJSON
	waitFor(t, "the automatic block to finish", func() bool {
		var out struct {
			Responses []autoActionJSON `json:"responses"`
		}
		h.do("GET", "/api/v1/responses", "", http.StatusOK, &out)
		for _, a := range out.Responses {
			if a.Kind == "block_ip" && (a.Status == "succeeded" || a.Status == "failed") {
				act = a
				return true
			}
		}
		return false
	})
	if act.Origin != "rule" || act.IncidentID == 0 || act.Status != "succeeded" {
		t.Fatalf("automatic block = %+v, want a succeeded rule action linked to an incident", act)
	}
	if _, ok := fw.seen("block 198.51.100.23"); !ok {
		t.Error("the agent's firewall never got the block")
	}
	inc := h.incident(act.IncidentID)
	var kinds []string
	text := ""
	for _, e := range inc.Timeline {
		if strings.HasPrefix(e.Kind, "response.") {
			kinds = append(kinds, e.Kind)
			text += e.Message + "\n"
		}
	}
	if got := strings.Join(kinds, " "); got != "response.request response.execute response.result" {
		t.Errorf("incident timeline = %q, want request, execute, result", got)
	}
	for _, want := range []string{fmt.Sprintf("decision #%d", act.DecisionID), "until ", h.endpoint.ID + "): succeeded"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
}

// autoActionJSON is a response action with its incident.
type autoActionJSON struct {
	ID         int64  `json:"id"`
	Kind       string `json:"kind"`
	Origin     string `json:"origin"`
	IncidentID int64  `json:"incident_id"`
	DecisionID int64  `json:"decision_id"`
	Status     string `json:"status"`
}

// TestResponseConfigReload: the response section applies on reload (a
// new allow-list entry is refused as a block target at once); an invalid
// section is refused with its reason and the previous policy stays.
func TestResponseConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("response:\n  allow: [192.0.2.0/24]\n")
	h := startWith(t, app.Options{ConfigPath: path})
	h.do("POST", "/api/v1/decisions", `{"value":"203.0.113.9","duration":"10m"}`, http.StatusCreated, nil)

	write("response:\n  allow: [192.0.2.0/24, 203.0.113.0/24]\n  approval:\n    required: []\n")
	if err := h.app.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	h.do("POST", "/api/v1/decisions", `{"value":"203.0.113.10","duration":"10m"}`, http.StatusBadRequest, &e)
	if e.Field != "value" || !strings.Contains(e.Error, "allow-listed") {
		t.Errorf("block of a newly allow-listed address: %+v", e)
	}
	// Approval off: a fleet-wide block runs without waiting.
	var a struct {
		Status string `json:"status"`
	}
	h.do("POST", "/api/v1/responses", `{"kind":"block_ip","value":"198.51.100.9"}`, http.StatusCreated, &a)
	if a.Status == "pending" {
		t.Errorf("fleet-wide block after approval.required: [] = %+v", a)
	}

	write("response:\n  allow: [not-an-address]\n")
	err := h.app.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "allow") {
		t.Fatalf("Reload of an invalid response section: %v, want an error naming response.allow", err)
	}
	h.do("POST", "/api/v1/decisions", `{"value":"203.0.113.11","duration":"10m"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/decisions", `{"value":"198.51.100.10","duration":"10m"}`, http.StatusCreated, nil)
}
