package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/auth"
)

const adminPassword = "correct-horse-battery-staple"

// harness is a whole nocsoc server running in-process on a random port.
type harness struct {
	t      *testing.T
	app    *app.App
	url    string
	token  string
	cancel context.CancelFunc
	done   chan error
	stderr *bytes.Buffer
}

func start(t *testing.T, configPath, dataDir string) *harness {
	t.Helper()
	return startWith(t, app.Options{ConfigPath: configPath, DataDir: dataDir})
}

// startWith boots a server with o; empty fields get the test defaults.
func startWith(t *testing.T, o app.Options) *harness {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	o.Listen = "127.0.0.1:0"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Stderr = &stderr
	o.AdminPassword = adminPassword
	if o.ConfigPoll == 0 {
		o.ConfigPoll = -1
	}
	a, err := app.New(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	h := &harness{t: t, app: a, url: a.URL(), cancel: cancel, done: make(chan error, 1), stderr: &stderr}
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	// The first token comes from HTTP Basic with the admin password.
	var tok struct {
		Token string `json:"token"`
	}
	h.doAs("admin:"+adminPassword, "POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"test-%d"}`, time.Now().UnixNano()), http.StatusCreated, &tok)
	h.token = tok.Token
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Errorf("server did not shut down within 30s")
	}
	h.cancel = nil
}

// do sends a request with the harness token and decodes the JSON reply into
// out (if not nil), failing the test when the status differs from want.
func (h *harness) do(method, path, body string, want int, out any) []byte {
	h.t.Helper()
	return h.doAs("bearer:"+h.token, method, path, body, want, out)
}

func (h *harness) doAs(cred, method, path, body string, want int, out any) []byte {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if kind, v, ok := strings.Cut(cred, ":"); ok {
		switch kind {
		case "bearer":
			req.Header.Set("Authorization", "Bearer "+v)
		case "admin":
			req.SetBasicAuth("admin", v)
		}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

type checkStatus struct {
	Name   string `json:"name"`
	Status struct {
		State      string `json:"state"`
		RootCause  string `json:"root_cause"`
		Alerting   bool   `json:"alerting"`
		LastResult *struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"last_result"`
	} `json:"status"`
}

// waitState triggers runs of the check until it reaches state. Each round
// asks for an immediate run, so the wait is bounded by probe time, not by
// the check interval.
func (h *harness) waitState(name, state string) checkStatus {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var c checkStatus
	for {
		h.do("GET", "/api/v1/checks/"+name, "", http.StatusOK, &c)
		if c.Status.State == state {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("check %s: state %q, want %q (last result %+v)", name, c.Status.State, state, c.Status.LastResult)
		}
		h.do("POST", "/api/v1/checks/"+name+"/run", "", http.StatusAccepted, nil)
		time.Sleep(20 * time.Millisecond) // poll interval, not a correctness wait
	}
}

type alertJSON struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Team        string            `json:"team"`
	Origin      string            `json:"origin"`
	Severity    string            `json:"severity"`
	Source      string            `json:"source"`
	Labels      map[string]string `json:"labels"`
	ResolvedAt  *time.Time        `json:"resolved_at"`
}

func (h *harness) alerts(query string) []alertJSON {
	h.t.Helper()
	var out struct {
		Alerts []alertJSON `json:"alerts"`
	}
	h.do("GET", "/api/v1/alerts?"+query, "", http.StatusOK, &out)
	return out.Alerts
}

// tcpTarget is a loopback TCP service that can be stopped and restarted on
// the same port.
type tcpTarget struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func newTCPTarget(t *testing.T) *tcpTarget {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tt := &tcpTarget{t: t, addr: ln.Addr().String()}
	tt.serve(ln)
	t.Cleanup(tt.Stop)
	return tt
}

func (tt *tcpTarget) serve(ln net.Listener) {
	tt.mu.Lock()
	tt.ln = ln
	tt.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello\n"))
			_ = c.Close()
		}
	}()
}

func (tt *tcpTarget) Stop() {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.ln != nil {
		_ = tt.ln.Close()
		tt.ln = nil
	}
}

func (tt *tcpTarget) Start() {
	ln, err := net.Listen("tcp", tt.addr)
	if err != nil {
		tt.t.Fatalf("restart %s: %v", tt.addr, err)
	}
	tt.serve(ln)
}

func TestEndToEndCheckGoesDownAndAlerts(t *testing.T) {
	h := start(t, "", "")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer web.Close()
	db := newTCPTarget(t)

	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"db","type":"tcp","target":%q,"interval":"1h","timeout":"2s","severity":"critical","labels":{"service":"shop"}}`, db.addr), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"web","type":"http","target":%q,"interval":"1h","timeout":"2s","http":{"json":[{"path":"$.status","equals":"ok"}]}}`, web.URL), http.StatusCreated, nil)
	h.waitState("db", "up")
	h.waitState("web", "up")

	db.Stop()
	c := h.waitState("db", "down")
	if c.Status.LastResult == nil || !strings.Contains(c.Status.LastResult.Error, "refused") {
		t.Errorf("db last result = %+v, want a connection refused error", c.Status.LastResult)
	}
	firing := h.alerts("status=firing")
	if len(firing) != 1 {
		t.Fatalf("firing alerts = %+v, want exactly one", firing)
	}
	a := firing[0]
	if a.Source != "check:db" || a.Team != "noc" || a.Origin != "natural" || a.Severity != "critical" || a.Labels["service"] != "shop" {
		t.Errorf("alert = %+v", a)
	}
	// More failures do not open a second alert.
	h.do("POST", "/api/v1/checks/db/run", "", http.StatusAccepted, nil)
	h.waitState("db", "down")
	if n := len(h.alerts("status=firing")); n != 1 {
		t.Errorf("after repeated failures: %d firing alerts, want 1", n)
	}

	db.Start()
	h.waitState("db", "up")
	var got alertJSON
	h.do("GET", fmt.Sprintf("/api/v1/alerts/%d", a.ID), "", http.StatusOK, &got)
	if got.Status != "resolved" || got.ResolvedAt == nil {
		t.Errorf("after recovery alert = %+v, want resolved", got)
	}

	// Results are stored, and uptime/latency are computed from them.
	var res struct {
		Results []struct {
			OK    bool   `json:"ok"`
			State string `json:"state"`
		} `json:"results"`
	}
	h.do("GET", "/api/v1/checks/db/results?limit=100", "", http.StatusOK, &res)
	var ups, downs int
	for _, r := range res.Results {
		switch r.State {
		case "up":
			ups++
		case "down":
			downs++
		}
	}
	if ups < 2 || downs < 1 {
		t.Errorf("stored results: %d up, %d down; want both (%+v)", ups, downs, res.Results)
	}
	var up map[string]any
	h.do("GET", "/api/v1/checks/db/uptime?from=1h", "", http.StatusOK, &up)
	if up["results"].(float64) < 3 {
		t.Errorf("uptime = %v, want at least 3 results", up)
	}
}

func TestRootCauseChildUnreachableWithoutAlert(t *testing.T) {
	h := start(t, "", "")
	router := newTCPTarget(t)
	app1 := newTCPTarget(t)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"router","type":"tcp","target":%q,"interval":"1h"}`, router.addr), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"app","type":"tcp","target":%q,"interval":"1h","depends_on":["router"]}`, app1.addr), http.StatusCreated, nil)
	h.waitState("router", "up")
	h.waitState("app", "up")

	router.Stop()
	app1.Stop()
	h.waitState("router", "down")
	c := h.waitState("app", "unreachable")
	if c.Status.RootCause != "router" {
		t.Errorf("app root_cause = %q, want router", c.Status.RootCause)
	}
	for _, a := range h.alerts("") {
		if a.Source == "check:app" {
			t.Errorf("child raised its own alert: %+v", a)
		}
	}
	if n := len(h.alerts("status=firing")); n != 1 {
		t.Errorf("%d firing alerts, want 1 (the router)", n)
	}
	// The child keeps running and recovers on its own.
	app1.Start()
	h.waitState("app", "up")
}

func TestMaintenanceSuppressesAlertAndUptime(t *testing.T) {
	h := start(t, "", "")
	svc := newTCPTarget(t)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"batch","type":"tcp","target":%q,"interval":"1h","labels":{"env":"prod"}}`, svc.addr), http.StatusCreated, nil)
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	h.do("POST", "/api/v1/maintenance", fmt.Sprintf(`{"name":"patching","start":%q,"duration":"1h","labels":{"env":"prod"},"comment":"kernel update"}`, start), http.StatusCreated, nil)
	svc.Stop()
	h.waitState("batch", "maintenance")
	for i := 0; i < 3; i++ {
		h.do("POST", "/api/v1/checks/batch/run", "", http.StatusAccepted, nil)
	}
	h.waitState("batch", "maintenance")
	if as := h.alerts(""); len(as) != 0 {
		t.Errorf("alerts during maintenance: %+v", as)
	}
	var up map[string]any
	h.do("GET", "/api/v1/checks/batch/uptime?from=1h", "", http.StatusOK, &up)
	if up["down_seconds"].(float64) != 0 {
		t.Errorf("uptime counts maintenance as down: %v", up)
	}
	if up["maintenance_seconds"].(float64) <= 0 {
		t.Errorf("uptime has no maintenance time: %v", up)
	}
}

func TestPushHeartbeat(t *testing.T) {
	h := start(t, "", "")
	var c struct {
		PushURL string `json:"push_url"`
	}
	h.do("POST", "/api/v1/checks", `{"name":"nightly-backup","type":"push","interval":"24h","push":{"grace":"1h"}}`, http.StatusCreated, &c)
	if !strings.HasPrefix(c.PushURL, h.url+"/api/v1/push/") {
		t.Fatalf("push_url = %q", c.PushURL)
	}
	c.PushURL = strings.TrimPrefix(c.PushURL, h.url)
	// The push URL needs no bearer token: the token in the URL is the credential.
	h.doAs("", "POST", c.PushURL+"?duration=12.5&msg=ok", "", http.StatusOK, nil)
	h.waitState("nightly-backup", "up")
	h.doAs("", "POST", c.PushURL+"?status=fail&msg=disk+full", "", http.StatusOK, nil)
	st := h.waitState("nightly-backup", "down")
	if st.Status.LastResult == nil || !strings.Contains(st.Status.LastResult.Error, "disk full") {
		t.Errorf("last result = %+v, want the reported message", st.Status.LastResult)
	}
	if n := len(h.alerts("status=firing&team=noc")); n != 1 {
		t.Errorf("%d firing alerts, want 1", n)
	}
	h.doAs("", "POST", "/api/v1/push/nsc_wrong", "", http.StatusNotFound, nil)
}

func TestAuthAndRoles(t *testing.T) {
	h := start(t, "", "")
	h.doAs("", "GET", "/api/v1/checks", "", http.StatusUnauthorized, nil)
	h.doAs("bearer:nsc_nope", "GET", "/api/v1/checks", "", http.StatusUnauthorized, nil)
	h.doAs("admin:wrong-password", "POST", "/api/v1/tokens", `{"name":"x"}`, http.StatusUnauthorized, nil)
	h.doAs("", "GET", "/healthz", "", http.StatusOK, nil)

	h.do("POST", "/api/v1/users", `{"name":"vera","role":"viewer","password":"viewer-password-1"}`, http.StatusCreated, nil)
	var tok struct {
		Token string `json:"token"`
		ID    int64  `json:"id"`
	}
	h.do("POST", "/api/v1/tokens", `{"name":"vera-cli","user":"vera"}`, http.StatusCreated, &tok)
	viewer := "bearer:" + tok.Token
	h.doAs(viewer, "GET", "/api/v1/checks", "", http.StatusOK, nil)
	h.doAs(viewer, "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1"}`, http.StatusForbidden, nil)
	h.doAs(viewer, "GET", "/api/v1/audit", "", http.StatusForbidden, nil)
	metrics := string(h.doAs(viewer, "GET", "/metrics", "", http.StatusOK, nil))
	for _, family := range []string{"nocsoc_eventstore_unloaded_events", "nocsoc_eventstore_spilled_events", "nocsoc_eventstore_journal_lost_events_total", "nocsoc_soc_detection_queue_batches", "nocsoc_soc_detection_lag_seconds",
		"nocsoc_incident_intake_queue", "nocsoc_notify_queued", "nocsoc_notify_sent_total", "nocsoc_notify_dropped_total"} {
		if !strings.Contains(metrics, "\n"+family+" ") {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	h.doAs("", "GET", "/metrics", "", http.StatusUnauthorized, nil)

	// Revocation is immediate.
	h.do("DELETE", fmt.Sprintf("/api/v1/tokens/%d", tok.ID), "", http.StatusNoContent, nil)
	h.doAs(viewer, "GET", "/api/v1/checks", "", http.StatusUnauthorized, nil)

	// Token hashes and password hashes never appear in API output. Audit
	// entries do carry a "hash" key: their own hash-chain link.
	for _, path := range []string{"/api/v1/tokens?all=true", "/api/v1/users", "/api/v1/audit"} {
		b := h.do("GET", path, "", http.StatusOK, nil)
		if bytes.Contains(b, []byte("argon2id")) || bytes.Contains(b, []byte(tok.Token)) || bytes.Contains(b, []byte(auth.HashToken(tok.Token))) ||
			(path != "/api/v1/audit" && bytes.Contains(b, []byte(`"hash"`))) {
			t.Errorf("%s leaks a secret: %s", path, b)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	h := start(t, "", "")
	h.do("POST", "/api/v1/checks", `{"name":"a","type":"tcp","target":"127.0.0.1:1","interval":"1h"}`, http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks", `{"name":"b","type":"tcp","target":"127.0.0.1:1","interval":"1h","depends_on":["a"]}`, http.StatusCreated, nil)
	auditBefore := h.auditCount()

	cases := []struct {
		name, method, path, body string
		status                   int
		field, msg               string
	}{
		{"unknown type", "POST", "/api/v1/checks", `{"name":"x","type":"gopher","target":"h"}`, 400, "type", "unknown check type"},
		{"missing target", "POST", "/api/v1/checks", `{"name":"x","type":"tcp"}`, 400, "target", "required"},
		{"negative interval", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","interval":"-5s"}`, 400, "interval", "negative"},
		{"unknown field", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","intervl":"5s"}`, 400, "intervl", "unknown field"},
		{"malformed json", "POST", "/api/v1/checks", `{"name":"x",`, 400, "", "malformed JSON"},
		{"wrong type", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","fail_threshold":"three"}`, 400, "fail_threshold", "expected a number"},
		{"missing dependency", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","depends_on":["ghost"]}`, 400, "depends_on[0]", "does not exist"},
		{"cycle", "PUT", "/api/v1/checks/a", `{"name":"a","type":"tcp","target":"127.0.0.1:1","depends_on":["b"]}`, 400, "depends_on", "cycle"},
		{"duplicate", "POST", "/api/v1/checks", `{"name":"a","type":"tcp","target":"127.0.0.1:1"}`, 409, "", "already exists"},
		{"oversize", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "", "larger than"},
		{"delete parent", "DELETE", "/api/v1/checks/a", "", 409, "", "depends on"},
		{"tcp without port", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1"}`, 400, "target", "host:port"},
		{"timeout over interval", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","interval":"5s","timeout":"1m"}`, 400, "timeout", "must not exceed"},
		{"bad duration", "POST", "/api/v1/checks", `{"name":"x","type":"tcp","target":"127.0.0.1:1","interval":"fast"}`, 400, "interval", "invalid value"},
		{"nested unknown field", "POST", "/api/v1/checks", `{"name":"x","type":"http","target":"http://127.0.0.1:1","http":{"retries":3}}`, 400, "http.retries", "unknown field"},
		{"not an object", "POST", "/api/v1/checks", `[1,2]`, 400, "", "must be a JSON object"},
		{"bad filter", "GET", "/api/v1/checks?state=bogus", "", 400, "state", "unknown state"},
		{"missing check", "GET", "/api/v1/checks/ghost", "", 404, "", `check "ghost" not found`},
		{"wrong method", "PATCH", "/api/v1/checks/a", "", 405, "", "not allowed"},
		{"bad window", "POST", "/api/v1/maintenance", `{"name":"w","duration":"1h","schedule":"0 25 * * *","checks":["a"]}`, 400, "schedule", "hour"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			h.do(tc.method, tc.path, tc.body, tc.status, &e)
			if e.Field != tc.field || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error = %+v, want field %q and message containing %q", e, tc.field, tc.msg)
			}
		})
	}
	var list struct {
		Count int `json:"count"`
	}
	h.do("GET", "/api/v1/checks", "", http.StatusOK, &list)
	if list.Count != 2 {
		t.Errorf("%d checks after rejected requests, want 2", list.Count)
	}
	var a checkStatus
	h.do("GET", "/api/v1/checks/a", "", http.StatusOK, &a)
	if n := h.auditCount(); n != auditBefore {
		t.Errorf("rejected requests wrote %d audit entries", n-auditBefore)
	}
}

func (h *harness) auditCount() int {
	var out struct {
		Entries []json.RawMessage `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?limit=1000", "", http.StatusOK, &out)
	return len(out.Entries)
}

func TestAuditRecordsChanges(t *testing.T) {
	h := start(t, "", "")
	h.do("POST", "/api/v1/checks", `{"name":"a","type":"tcp","target":"127.0.0.1:1","interval":"1h"}`, http.StatusCreated, nil)
	h.do("PUT", "/api/v1/checks/a", `{"type":"tcp","target":"127.0.0.1:2","interval":"1h"}`, http.StatusOK, nil)
	h.do("DELETE", "/api/v1/checks/a", "", http.StatusNoContent, nil)
	var out struct {
		Entries []struct {
			Actor  string          `json:"actor"`
			Action string          `json:"action"`
			Target string          `json:"target"`
			Before json.RawMessage `json:"before"`
			After  json.RawMessage `json:"after"`
		} `json:"entries"`
	}
	h.do("GET", "/api/v1/audit?limit=10", "", http.StatusOK, &out)
	var actions []string
	for _, e := range out.Entries {
		actions = append(actions, e.Action)
		if e.Actor != "admin" && !strings.HasPrefix(e.Action, "user.") {
			t.Errorf("entry %+v: actor %q, want admin", e, e.Actor)
		}
	}
	joined := strings.Join(actions, ",")
	for _, want := range []string{"check.create", "check.update", "check.delete", "token.create"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit actions %v lack %s", actions, want)
		}
	}
	for _, e := range out.Entries {
		if e.Action == "check.update" && (!bytes.Contains(e.Before, []byte("127.0.0.1:1")) || !bytes.Contains(e.After, []byte("127.0.0.1:2"))) {
			t.Errorf("update entry before/after = %s / %s", e.Before, e.After)
		}
	}
}

func TestConfigProvisionAndReload(t *testing.T) {
	dir := t.TempDir()
	target := newTCPTarget(t)
	path := filepath.Join(dir, "nocsoc.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("checks:\n  - name: core\n    type: tcp\n    target: %s\n    interval: 1h\n", target.addr))
	h := start(t, path, "")
	var c struct {
		Provisioned bool `json:"provisioned"`
	}
	h.do("GET", "/api/v1/checks/core", "", http.StatusOK, &c)
	if !c.Provisioned {
		t.Errorf("core not marked provisioned")
	}
	h.do("PUT", "/api/v1/checks/core", fmt.Sprintf(`{"type":"tcp","target":%q}`, target.addr), http.StatusConflict, nil)
	h.do("DELETE", "/api/v1/checks/core", "", http.StatusConflict, nil)

	// An invalid file is refused with file:line and the running config stays.
	write(fmt.Sprintf("checks:\n  - name: core\n    type: tcp\n    target: %s\n    interval: -1s\n", target.addr))
	err := h.app.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nocsoc.yaml:5") {
		t.Fatalf("Reload of invalid config: %v, want an error naming nocsoc.yaml:5", err)
	}
	h.do("GET", "/api/v1/checks/core", "", http.StatusOK, nil)

	// A valid change applies.
	write(fmt.Sprintf("checks:\n  - name: core\n    type: tcp\n    target: %s\n    interval: 1h\n  - name: edge\n    type: tcp\n    target: %s\n    interval: 1h\n", target.addr, target.addr))
	if err := h.app.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	h.waitState("edge", "up")
}

func TestRestartKeepsStateAndAlerts(t *testing.T) {
	data := t.TempDir()
	h := start(t, "", data)
	svc := newTCPTarget(t)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"svc","type":"tcp","target":%q,"interval":"1h"}`, svc.addr), http.StatusCreated, nil)
	h.waitState("svc", "up")
	svc.Stop()
	h.waitState("svc", "down")
	h.stop()

	h2 := start(t, "", data)
	var c checkStatus
	h2.do("GET", "/api/v1/checks/svc", "", http.StatusOK, &c)
	if c.Status.State != "down" || !c.Status.Alerting {
		t.Errorf("after restart: %+v, want down and alerting", c.Status)
	}
	h2.do("POST", "/api/v1/checks/svc/run", "", http.StatusAccepted, nil)
	h2.waitState("svc", "down")
	if n := len(h2.alerts("status=firing")); n != 1 {
		t.Errorf("after restart %d firing alerts, want 1", n)
	}
	if !strings.Contains(h.stderr.String(), "NOCSOC_ADMIN_PASSWORD") {
		t.Errorf("first start did not report the admin bootstrap: %q", h.stderr.String())
	}
	if strings.Contains(h.stderr.String(), adminPassword) {
		t.Errorf("admin password printed to stderr")
	}
}

func TestConfigFileChangeIsPickedUp(t *testing.T) {
	dir := t.TempDir()
	target := newTCPTarget(t)
	path := filepath.Join(dir, "nocsoc.yaml")
	if err := os.WriteFile(path, []byte("checks: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, app.Options{ConfigPath: path, DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminPassword: adminPassword,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stderr: io.Discard, ConfigPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(path, []byte(fmt.Sprintf("checks:\n  - name: late\n    type: tcp\n    target: %s\n", target.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.NOC().Check("late"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed config file was not applied within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChildProbedBeforeParentIsNotPaged covers the start-up race: a child
// that fails before its parent has reported at all must wait for the
// parent's result instead of paging.
func TestChildProbedBeforeParentIsNotPaged(t *testing.T) {
	h := start(t, "", "")
	parent := newTCPTarget(t)
	child := newTCPTarget(t)
	parent.Stop()
	child.Stop()
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"core","type":"tcp","target":%q,"interval":"1h"}`, parent.addr), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"leaf","type":"tcp","target":%q,"interval":"1h","depends_on":["core"]}`, child.addr), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks/leaf/run", "", http.StatusAccepted, nil)
	c := h.waitState("leaf", "unreachable")
	if c.Status.RootCause != "core" {
		t.Errorf("leaf root cause = %q", c.Status.RootCause)
	}
	h.waitState("core", "down")
	for _, a := range h.alerts("") {
		if a.Source == "check:leaf" {
			t.Errorf("child was paged before its parent reported: %+v", a)
		}
	}
}

func TestProfilesNeedAdmin(t *testing.T) {
	h := start(t, "", "")
	h.doAs("", "GET", "/debug/pprof/heap", "", http.StatusUnauthorized, nil)
	h.do("POST", "/api/v1/users", `{"name":"olga","role":"operator","password":"operator-password-1"}`, http.StatusCreated, nil)
	var tok struct {
		Token string `json:"token"`
	}
	h.do("POST", "/api/v1/tokens", `{"name":"olga-cli","user":"olga"}`, http.StatusCreated, &tok)
	h.doAs("bearer:"+tok.Token, "GET", "/debug/pprof/heap", "", http.StatusForbidden, nil)
	if b := h.do("GET", "/debug/pprof/heap", "", http.StatusOK, nil); len(b) == 0 {
		t.Error("empty heap profile")
	}
}
