package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agent"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/firewall"
	"github.com/nocsoc/nocsoc/internal/firewall/netnstest"
)

type responseJSON struct {
	ID            int64             `json:"id"`
	Kind          string            `json:"kind"`
	Status        string            `json:"status"`
	Params        map[string]string `json:"params"`
	Origin        string            `json:"origin"`
	OriginRef     string            `json:"origin_ref"`
	NeedsApproval bool              `json:"needs_approval"`
	DecidedBy     string            `json:"decided_by"`
	DecisionID    int64             `json:"decision_id"`
	Result        string            `json:"result"`
}

type responseJobJSON struct {
	JobID     string `json:"job_id"`
	JobAction string `json:"job_action"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

// respHarness is a server with an in-process agent whose response actions
// run on a Responder the test chose.
type respHarness struct {
	*harness
	clock    *testClock
	endpoint endpointJSON
}

func startResponse(t *testing.T, cfg string, r *agent.Responder) *respHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC()}
	h := startWith(t, app.Options{ConfigPath: path, Now: clock.Now})
	prev := agent.UseResponder(r)
	t.Cleanup(func() { agent.UseResponder(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Server: h.url, EnrollToken: h.enrollmentToken(), StateDir: t.TempDir(),
			Interval: time.Second, JobWait: 5 * time.Second, ActiveResponse: true, UpdatesInterval: -1})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	ep := h.waitEndpoint("agent enrolled", func(e endpointJSON) bool { return e.ID != "" })
	return &respHarness{harness: h, clock: clock, endpoint: ep}
}

// bruteForce posts failed SSH logins from src against host.
func (h *respHarness) bruteForce(src, host string, n int) {
	h.t.Helper()
	var b strings.Builder
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"@timestamp":%q,"host.name":%q,"process.name":"sshd","message":"Failed password for invalid user admin from %s port %d ssh2"}`+"\n",
			now.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), host, src, 40000+i)
	}
	h.do("POST", "/api/v1/events", b.String(), http.StatusOK, nil)
}

func (h *respHarness) responses(query string) []responseJSON {
	h.t.Helper()
	var out struct {
		Responses []responseJSON `json:"responses"`
	}
	h.do("GET", "/api/v1/responses"+query, "", http.StatusOK, &out)
	return out.Responses
}

func (h *respHarness) decisionJobs(id int64) []responseJobJSON {
	h.t.Helper()
	var out struct {
		Jobs []responseJobJSON `json:"jobs"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/decisions/%d/enforcement", id), "", http.StatusOK, &out)
	return out.Jobs
}

func (h *respHarness) actionJobs(id int64) (responseJSON, []responseJobJSON) {
	h.t.Helper()
	var out struct {
		Response responseJSON      `json:"response"`
		Jobs     []responseJobJSON `json:"jobs"`
	}
	h.do("GET", fmt.Sprintf("/api/v1/responses/%d", id), "", http.StatusOK, &out)
	return out.Response, out.Jobs
}

func jobDone(jobs []responseJobJSON, action string) (responseJobJSON, bool) {
	for _, j := range jobs {
		if j.JobAction == action && j.Status != "queued" && j.Status != "sent" {
			return j, true
		}
	}
	return responseJobJSON{}, false
}

// TestAutoResponseBlockInNamespaces is the whole loop: an SSH brute force
// against the agent's host is detected, the rule's response blocks the
// source on that host through the agent (nft in a server namespace), the
// attacker's TCP connections fail; the decision expires on the injected
// clock, the agent unblocks, connections work again. Then an admin
// isolates the host: only the configured server address stays reachable.
func TestAutoResponseBlockInNamespaces(t *testing.T) {
	netnstest.Require(t, "nft")
	p := netnstest.New(t)
	other := p.ClientAddr.Next().Next()
	p.AddClientAddr(other)
	svc := p.Listen(p.Server, p.ServerAddr)
	cfg := fmt.Sprintf("response:\n  servers: [%s]\n", p.ClientAddr)
	h := startResponse(t, cfg, agent.NewResponder(agent.ResponderOptions{
		Runner: firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}}}))
	can := func(src netip.Addr) bool { return netnstest.CanConnect(p.Client, src, svc, 500*time.Millisecond) }
	if !can(p.ClientAddr) {
		t.Fatal("attacker cannot connect before any response")
	}

	h.bruteForce(p.ClientAddr.String(), h.endpoint.Hostname, 12)
	var act responseJSON
	waitFor(t, "automatic block of the attacker", func() bool {
		for _, a := range h.responses("") {
			if a.Kind == "block_ip" && a.Params["value"] == p.ClientAddr.String() && a.DecisionID > 0 {
				act = a
				return true
			}
		}
		return false
	})
	if act.Origin != "rule" || act.Params["duration"] != "4h0m0s" || act.NeedsApproval {
		t.Errorf("automatic block = %+v, want origin rule, 4h, no approval", act)
	}
	waitFor(t, "block job result", func() bool {
		_, ok := jobDone(h.decisionJobs(act.DecisionID), "firewall.block")
		return ok
	})
	if j, _ := jobDone(h.decisionJobs(act.DecisionID), "firewall.block"); j.Status != "succeeded" {
		t.Fatalf("block job = %+v", j)
	}
	if can(p.ClientAddr) {
		t.Fatal("blocked attacker still connects")
	}
	if !can(other) {
		t.Error("another address was blocked too")
	}

	// The decision expires on the injected clock: the reconciler sends
	// the unblock.
	h.clock.Advance(4*time.Hour + time.Minute)
	waitFor(t, "unblock job result", func() bool {
		_, ok := jobDone(h.decisionJobs(act.DecisionID), "firewall.unblock")
		return ok
	})
	if j, _ := jobDone(h.decisionJobs(act.DecisionID), "firewall.unblock"); j.Status != "succeeded" {
		t.Fatalf("unblock job = %+v", j)
	}
	if !can(p.ClientAddr) {
		t.Fatal("attacker still blocked after the decision expired")
	}
	// Isolation by an admin (an approver: runs at once).
	var iso responseJSON
	h.do("POST", "/api/v1/responses", fmt.Sprintf(`{"kind":"isolate_host","endpoints":[%q],"reason":"test"}`, h.endpoint.ID), http.StatusCreated, &iso)
	waitFor(t, "isolation result", func() bool {
		a, _ := h.actionJobs(iso.ID)
		iso = a
		return a.Status == "succeeded" || a.Status == "failed"
	})
	if iso.Status != "succeeded" {
		t.Fatalf("isolation = %+v", iso)
	}
	if can(other) {
		t.Error("isolated host reachable from another address")
	}
	nocsoc := p.Listen(p.Client, p.ClientAddr)
	if !netnstest.CanConnect(p.Server, netip.Addr{}, nocsoc, 500*time.Millisecond) {
		t.Error("isolated host cannot reach the configured server address")
	}
	var rel responseJSON
	h.do("POST", "/api/v1/responses", fmt.Sprintf(`{"kind":"release_host","endpoints":[%q]}`, h.endpoint.ID), http.StatusCreated, &rel)
	waitFor(t, "release result", func() bool {
		a, _ := h.actionJobs(rel.ID)
		rel = a
		return a.Status == "succeeded" || a.Status == "failed"
	})
	if rel.Status != "succeeded" || !can(other) {
		t.Fatalf("release = %+v; reachable = %v", rel, can(other))
	}
}

// fakeFirewall records what the agent was asked to do.
type fakeFirewall struct {
	mu    sync.Mutex
	calls []string
	at    map[string]time.Time
}

func (f *fakeFirewall) note(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if f.at == nil {
		f.at = map[string]time.Time{}
	}
	f.at[s] = time.Now()
	return nil
}

func (f *fakeFirewall) Name() string { return "fake" }
func (f *fakeFirewall) Block(_ context.Context, p netip.Prefix, d time.Duration) error {
	return f.note("block " + p.Addr().String())
}
func (f *fakeFirewall) Unblock(_ context.Context, p netip.Prefix) error {
	return f.note("unblock " + p.Addr().String())
}
func (f *fakeFirewall) Isolate(context.Context, firewall.IsolateSpec) error { return f.note("isolate") }
func (f *fakeFirewall) Release(context.Context) error                       { return f.note("release") }
func (f *fakeFirewall) Blocked(context.Context) ([]netip.Prefix, error)     { return nil, nil }

func (f *fakeFirewall) seen(s string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.at[s]
	return t, ok
}

// TestResponseApprovalAndLimits: isolation asked for by an operator who is
// not an approver waits; that operator cannot approve it; an approver
// (listed operator) can, and it runs; a denied one never runs; the
// isolation rate limit refuses a second one; every step is audited.
func TestResponseApprovalAndLimits(t *testing.T) {
	fw := &fakeFirewall{}
	cfg := "response:\n  servers: [192.0.2.1]\n  approval:\n    approvers: [lead]\n"
	usermod := filepath.Join(t.TempDir(), "usermod")
	if err := os.WriteFile(usermod, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startResponse(t, cfg, agent.NewResponder(agent.ResponderOptions{Firewall: fw, Usermod: usermod}))
	mkUser := func(name string) string {
		h.do("POST", "/api/v1/users", fmt.Sprintf(`{"name":%q,"role":"operator","password":"correct horse battery staple"}`, name), http.StatusCreated, nil)
		var tok struct {
			Token string `json:"token"`
		}
		req, _ := http.NewRequest("POST", h.url+"/api/v1/tokens", strings.NewReader(`{"name":"t"}`))
		req.SetBasicAuth(name, "correct horse battery staple")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
			t.Fatalf("token for %s: %s %v", name, resp.Status, err)
		}
		return tok.Token
	}
	l1, lead := mkUser("junior"), mkUser("lead")
	as := func(tok, method, path, body string, want int, out any) {
		t.Helper()
		saved := h.token
		h.token = tok
		defer func() { h.token = saved }()
		h.do(method, path, body, want, out)
	}

	body := fmt.Sprintf(`{"kind":"isolate_host","endpoints":[%q],"reason":"ransomware beacon"}`, h.endpoint.ID)
	var req responseJSON
	as(l1, "POST", "/api/v1/responses", body, http.StatusAccepted, &req)
	if req.Status != "pending" || !req.NeedsApproval {
		t.Fatalf("operator's isolation = %+v, want pending", req)
	}
	as(l1, "POST", fmt.Sprintf("/api/v1/responses/%d/approve", req.ID), "", http.StatusForbidden, nil)
	if _, ok := fw.seen("isolate"); ok {
		t.Fatal("isolated before approval")
	}
	var appr responseJSON
	as(lead, "POST", fmt.Sprintf("/api/v1/responses/%d/approve", req.ID), `{"note":"confirmed"}`, http.StatusOK, &appr)
	if appr.DecidedBy != "lead" {
		t.Errorf("approved = %+v", appr)
	}
	waitFor(t, "isolation on the agent", func() bool { _, ok := fw.seen("isolate"); return ok })
	as(lead, "POST", fmt.Sprintf("/api/v1/responses/%d/approve", req.ID), "", http.StatusConflict, nil)

	// Denied: never runs.
	var lock responseJSON
	as(l1, "POST", "/api/v1/responses", fmt.Sprintf(`{"kind":"lock_user","endpoints":[%q],"user":"mallory"}`, h.endpoint.ID), http.StatusAccepted, &lock)
	as(lead, "POST", fmt.Sprintf("/api/v1/responses/%d/deny", lock.ID), `{"note":"false positive"}`, http.StatusOK, nil)
	if got, _ := h.actionJobs(lock.ID); got.Status != "denied" {
		t.Errorf("denied lock = %+v", got)
	}

	// Rate limit: one isolation per 10 minutes (admin: self-approved).
	var second responseJSON
	h.do("POST", "/api/v1/responses", body, http.StatusCreated, &second)
	if second.Status != "refused" || !strings.Contains(second.Result, "rate limit") {
		t.Errorf("second isolation = %+v, want refused by rate limit", second)
	}

	// Bad input: named and nothing stored.
	before := len(h.responses(""))
	for _, bad := range []string{
		`{"kind":"shell"}`,
		`{"kind":"block_ip","value":"127.0.0.1"}`,
		`{"kind":"block_ip","value":"10.0.0.0/8"}`,
		`{"kind":"isolate_host"}`,
		`{"kind":"lock_user","endpoints":"all","user":"root"}`,
		fmt.Sprintf(`{"kind":"kill_process","endpoints":[%q],"pid":1,"name":"init"}`, h.endpoint.ID),
	} {
		h.do("POST", "/api/v1/responses", bad, http.StatusBadRequest, nil)
	}
	as(l1, "GET", "/api/v1/responses", "", http.StatusOK, nil)
	if after := len(h.responses("")); after != before {
		t.Errorf("bad requests stored %d actions", after-before)
	}

	// Audit: request, approve, execute, result, deny.
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
		} `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?limit=200", "", http.StatusOK, &audit)
	got := map[string]bool{}
	for _, e := range audit.Entries {
		got[e.Action] = true
	}
	for _, want := range []string{"response.request", "response.approve", "response.execute", "response.deny", "response.refuse"} {
		if !got[want] {
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			t.Errorf("audit lacks %s (has %v)", want, keys)
		}
	}
	// Linked to an incident: request, approval, execution and result on
	// its timeline.
	_, incID := h.fire(h.integration("webhook", "edr"), "Credential theft on web1", `{"host":"web1"}`)
	var lk responseJSON
	as(l1, "POST", "/api/v1/responses", fmt.Sprintf(`{"kind":"lock_user","endpoints":[%q],"user":"mallory","incident_id":%d}`, h.endpoint.ID, incID), http.StatusAccepted, &lk)
	as(lead, "POST", fmt.Sprintf("/api/v1/responses/%d/approve", lk.ID), "", http.StatusOK, nil)
	waitFor(t, "lock result on the timeline", func() bool {
		for _, e := range h.incident(incID).Timeline {
			if e.Kind == "response.result" {
				return true
			}
		}
		return false
	})
	var kinds []string
	for _, e := range h.incident(incID).Timeline {
		if strings.HasPrefix(e.Kind, "response.") {
			kinds = append(kinds, e.Kind)
		}
	}
	if want := "response.request response.approve response.execute response.result"; strings.Join(kinds, " ") != want {
		t.Errorf("incident timeline = %v, want %s", kinds, want)
	}
	if got, _ := h.actionJobs(lk.ID); got.Status != "succeeded" {
		t.Errorf("lock = %+v", got)
	}

	waitFor(t, "isolation result recorded", func() bool {
		a, _ := h.actionJobs(req.ID)
		return a.Status == "succeeded"
	})
}

// BenchmarkDetectionToBlock measures the time from posting an SSH brute
// force (12 failed logins) to the agent's firewall receiving the block of
// the attacker, through the whole server (ingest, normalize, Sigma
// correlation, automatic response, decision, job, agent long poll, job
// run). Reports p50 and p99.
//
//	go test -run '^$' -bench DetectionToBlock -benchtime 100x ./internal/app/
func BenchmarkDetectionToBlock(b *testing.B) {
	fw := &fakeFirewall{}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "nocsoc.yaml")
	if err := os.WriteFile(cfg, []byte("response:\n  rate_limits:\n    block_ip: {count: 100000, per: 1m}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, app.Options{DataDir: filepath.Join(dir, "data"), ConfigPath: cfg, Listen: "127.0.0.1:0", AdminPassword: adminPassword,
		ConfigPoll: -1, Logger: slog.New(slog.DiscardHandler), Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	call := func(method, path, cred, body string, out any) {
		req, _ := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
		if u, pw, ok := strings.Cut(cred, ":"); ok {
			req.SetBasicAuth(u, pw)
		} else {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			msg, _ := io.ReadAll(resp.Body)
			b.Fatalf("%s %s: %s: %s", method, path, resp.Status, msg)
		}
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				b.Fatal(err)
			}
		}
	}
	var tok, enr struct {
		Token string `json:"token"`
	}
	call("POST", "/api/v1/tokens", "admin:"+adminPassword, `{"name":"bench"}`, &tok)
	call("POST", "/api/v1/enrollment-tokens", tok.Token, `{"ttl":"10m"}`, &enr)
	prev := agent.UseResponder(agent.NewResponder(agent.ResponderOptions{Firewall: fw}))
	defer agent.UseResponder(prev)
	actx, acancel := context.WithCancel(ctx)
	adone := make(chan error, 1)
	go func() {
		adone <- agent.Run(actx, agent.Options{Server: a.URL(), EnrollToken: enr.Token, StateDir: filepath.Join(dir, "agent"), Interval: time.Second, ActiveResponse: true, UpdatesInterval: -1})
	}()
	defer func() { acancel(); <-adone }()
	var eps struct {
		Endpoints []endpointJSON `json:"endpoints"`
	}
	for deadline := time.Now().Add(30 * time.Second); len(eps.Endpoints) == 0; {
		if time.Now().After(deadline) {
			b.Fatal("agent never enrolled")
		}
		time.Sleep(20 * time.Millisecond)
		call("GET", "/api/v1/endpoints", tok.Token, "", &eps)
	}
	host := eps.Endpoints[0].Hostname
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		ip := fmt.Sprintf("203.0.%d.%d", 113+i/250, 1+i%250)
		var sb strings.Builder
		now := time.Now().UTC()
		for j := 0; j < 12; j++ {
			fmt.Fprintf(&sb, `{"@timestamp":%q,"host.name":%q,"process.name":"sshd","message":"Failed password for invalid user admin from %s port %d ssh2"}`+"\n",
				now.Add(time.Duration(j)*time.Millisecond).Format(time.RFC3339Nano), host, ip, 40000+j)
		}
		start := time.Now()
		call("POST", "/api/v1/events", tok.Token, sb.String(), nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if at, ok := fw.seen("block " + ip); ok {
				lat = append(lat, at.Sub(start))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no block of %s within 30s", ip)
			}
			time.Sleep(time.Millisecond) // polling the recorder, not a correctness wait
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}
