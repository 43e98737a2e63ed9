package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agent"
	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/fleet"
)

// startOn boots a server on a given address (so a restart can reuse the
// port the agent knows).
func startOn(t *testing.T, o app.Options, listen string) *harness {
	t.Helper()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	o.Listen = listen
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Stderr = &stderr
	o.AdminPassword = adminPassword
	o.ConfigPoll = -1
	a, err := app.New(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	h := &harness{t: t, app: a, url: a.URL(), cancel: cancel, done: make(chan error, 1), stderr: &stderr}
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	var tok struct {
		Token string `json:"token"`
	}
	h.doAs("admin:"+adminPassword, "POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"test-%d"}`, time.Now().UnixNano()), http.StatusCreated, &tok)
	h.token = tok.Token
	return h
}

type endpointJSON struct {
	ID         string    `json:"id"`
	Hostname   string    `json:"hostname"`
	Status     string    `json:"status"`
	LastSeenAt time.Time `json:"last_seen_at"`
	LastSeq    int64     `json:"last_seq"`
	Batches    int64     `json:"batches"`
	Samples    int64     `json:"samples"`
	Duplicates int64     `json:"duplicates"`
}

func (h *harness) enrollmentToken() string {
	h.t.Helper()
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	h.do("POST", "/api/v1/enrollment-tokens", `{"ttl":"10m"}`, http.StatusCreated, &out)
	if out.Token == "" || out.ExpiresAt.IsZero() {
		h.t.Fatalf("enrollment token reply lacks token or expiry: %+v", out)
	}
	return out.Token
}

func (h *harness) endpoints() []endpointJSON {
	h.t.Helper()
	var out struct {
		Endpoints []endpointJSON `json:"endpoints"`
	}
	h.do("GET", "/api/v1/endpoints", "", http.StatusOK, &out)
	return out.Endpoints
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a correctness wait
	}
}

// waitEndpoint polls the API until the only endpoint satisfies cond.
func (h *harness) waitEndpoint(what string, cond func(endpointJSON) bool) endpointJSON {
	h.t.Helper()
	var last endpointJSON
	waitFor(h.t, what, func() bool {
		eps := h.endpoints()
		if len(eps) != 1 {
			return false
		}
		last = eps[0]
		return cond(last)
	})
	return last
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func buildAgent(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH: cannot build nocsoc-agent")
	}
	bin := filepath.Join(t.TempDir(), "nocsoc-agent")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/nocsoc/nocsoc/cmd/nocsoc-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/nocsoc-agent: %v\n%s", err, out)
	}
	return bin
}

func bufferedFiles(t *testing.T, stateDir string) int {
	m, err := filepath.Glob(filepath.Join(stateDir, "buffer", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestAgentBinary runs the real, statically built agent against the real
// server: enrollment, heartbeats, this machine's dpkg inventory, metrics,
// buffering while the server is down, replay after its restart with no
// loss and no duplicates, and immediate revocation.
func TestAgentBinary(t *testing.T) {
	bin := buildAgent(t)
	dataDir := t.TempDir()
	h := startOn(t, app.Options{DataDir: dataDir}, "127.0.0.1:0")
	addr := h.app.Addr()
	tok := h.enrollmentToken()

	stateDir := t.TempDir()
	var agentErr syncBuffer
	cmd := exec.Command(bin, "--server", h.url, "--enroll-token", tok, "--state", stateDir, "--interval", "100ms", "--inventory-interval", "1h",
		"--updates-interval", "-1s") // never the real package manager in tests
	cmd.Stderr = &agentErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	ep := h.waitEndpoint("agent online with batches", func(e endpointJSON) bool { return e.Status == "online" && e.Batches >= 2 })
	host, _ := os.Hostname()
	if ep.Hostname != host {
		t.Errorf("hostname = %q, want %q", ep.Hostname, host)
	}
	fi, err := os.Stat(filepath.Join(stateDir, "agent.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v, mode %v; want 0600", err, fi.Mode())
	}
	// The enrollment token was single-use.
	if st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"x","os":"linux"}`, tok)); st != http.StatusUnauthorized {
		t.Errorf("reused enrollment token: status %d %s, want 401", st, body)
	}

	// Inventory: this machine's real dpkg database.
	if f, err := os.Open("/var/lib/dpkg/status"); err == nil {
		want, err := agent.ParseDpkgStatus(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Packages []agentproto.Package `json:"packages"`
		}
		h.do("GET", "/api/v1/endpoints/"+ep.ID+"/packages", "", http.StatusOK, &got)
		if len(got.Packages) != len(want) || len(want) == 0 {
			t.Fatalf("packages via API: %d, dpkg database has %d", len(got.Packages), len(want))
		}
		for i := range want {
			if got.Packages[i] != want[i] {
				t.Fatalf("package %d = %+v, want %+v", i, got.Packages[i], want[i])
			}
		}
	}
	var metrics struct {
		Samples []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"samples"`
	}
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	to := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	h.do("GET", "/api/v1/endpoints/"+ep.ID+"/metrics?name=mem.total_bytes&from="+from+"&to="+to, "", http.StatusOK, &metrics)
	if len(metrics.Samples) == 0 || metrics.Samples[0].Value <= 0 {
		t.Errorf("mem.total_bytes samples = %+v", metrics.Samples)
	}

	// Server down: the agent buffers on disk.
	h.stop()
	waitFor(t, "agent to buffer 5 batches", func() bool { return bufferedFiles(t, stateDir) >= 5 })

	// Server back on the same address and data: the agent replays.
	h2 := startOn(t, app.Options{DataDir: dataDir}, addr)
	h2.waitEndpoint("replay of the buffer", func(e endpointJSON) bool {
		return e.Status == "online" && e.LastSeq > ep.LastSeq+5 && bufferedFiles(t, stateDir) <= 1
	})

	// Revocation is immediate: the agent's next request is refused and it
	// stops.
	h2.do("DELETE", "/api/v1/endpoints/"+ep.ID, "", http.StatusOK, nil)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err == nil {
			t.Errorf("agent exited 0 after revocation")
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("agent still running after revocation; stderr:\n%s", agentErr.String())
	}
	if !strings.Contains(agentErr.String(), "revoked") {
		t.Errorf("agent stderr does not say it was revoked:\n%s", agentErr.String())
	}
	// Now nothing moves: every sequence number from 1 to last_seq was
	// applied exactly once, and the stored samples are exactly the
	// applied batches' samples.
	var final struct {
		Endpoint endpointJSON `json:"endpoint"`
	}
	h2.do("GET", "/api/v1/endpoints/"+ep.ID, "", http.StatusOK, &final)
	e := final.Endpoint
	if e.Status != "revoked" {
		t.Errorf("status = %q, want revoked", e.Status)
	}
	if e.Batches != e.LastSeq {
		t.Errorf("applied %d batches but last seq is %d: loss or duplicates", e.Batches, e.LastSeq)
	}
	n, err := h2.app.Events().CountMetricSamples(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != e.Samples {
		t.Errorf("metric samples stored = %d, applied batches carried %d", n, e.Samples)
	}
	if st, _ := h2.call(map[string]string{"Authorization": "Bearer " + readCredential(t, stateDir)}, "POST", agentproto.PathHeartbeat, `{}`); st != http.StatusUnauthorized {
		t.Errorf("heartbeat with revoked credential: status %d, want 401", st)
	}
}

func readCredential(t *testing.T, stateDir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(stateDir, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AgentID    string `json:"agent_id"`
		Credential string `json:"credential"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Credential
}

// TestAgentUnresponsive runs the agent in-process: when it stops, three
// missed heartbeats make the endpoint unresponsive with a NOC alert; when
// it comes back, the alert resolves.
func TestAgentUnresponsive(t *testing.T) {
	h := startWith(t, app.Options{AgentCheckEvery: 20 * time.Millisecond})
	tok := h.enrollmentToken()
	stateDir := t.TempDir()
	runAgent := func(token string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- agent.Run(ctx, agent.Options{Server: h.url, EnrollToken: token, StateDir: stateDir, Interval: 50 * time.Millisecond, UpdatesInterval: -1})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent.Run: %v", err)
			}
		}
	}
	stop := runAgent(tok)
	ep := h.waitEndpoint("agent online", func(e endpointJSON) bool { return e.Status == "online" && e.Batches >= 1 })
	stop()

	h.waitEndpoint("endpoint unresponsive", func(e endpointJSON) bool { return e.Status == "unresponsive" })
	fp := fleet.AlertFingerprint(ep.ID)
	findAlert := func() *alertJSON {
		for _, a := range h.alerts("") {
			if a.Fingerprint == fp {
				return &a
			}
		}
		return nil
	}
	waitFor(t, "unresponsive alert", func() bool { a := findAlert(); return a != nil && a.Status == "firing" })
	a := findAlert()
	if a.Team != "noc" || a.Origin != "natural" || a.Source != "agent" || a.Labels["endpoint"] != ep.ID {
		t.Errorf("alert = %+v", *a)
	}

	// Back again, with the stored credential and no token.
	stop = runAgent("")
	defer stop()
	h.waitEndpoint("endpoint online again", func(e endpointJSON) bool { return e.Status == "online" })
	waitFor(t, "alert resolved", func() bool { a := findAlert(); return a != nil && a.Status == "resolved" })
}

// TestAgentProtocolRefusals checks the wire protocol's answers to bad or
// hostile requests, and that a replayed batch is not applied twice.
func TestAgentProtocolRefusals(t *testing.T) {
	h := startWith(t, app.Options{})
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, `{"token":"nse_nope","hostname":"web1","os":"linux"}`)
	if st != http.StatusUnauthorized {
		t.Fatalf("unknown enrollment token: %d %s", st, body)
	}
	st, body = h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"os":"linux"}`, tok))
	if st != http.StatusBadRequest || !strings.Contains(string(body), "hostname") {
		t.Fatalf("enroll without hostname: %d %s", st, body)
	}
	st, body = h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"web1","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + er.Credential}
	batch := func(id string, seq int, inv *agentproto.Inventory) string {
		b := agentproto.Batch{BatchID: id, AgentID: er.AgentID, Seq: uint64(seq), SentAt: time.Now().UTC(),
			Metrics: []agentproto.Sample{{Time: time.Now().UTC(), Name: "cpu.percent", Value: 12.5}}, Inventory: inv}
		raw, _ := json.Marshal(b)
		return string(raw)
	}
	const id1 = "0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e5f"
	inv1 := &agentproto.Inventory{Hostname: "web1", Packages: []agentproto.Package{{Name: "bash", Version: "5.2", Arch: "amd64"}}}
	inv2 := &agentproto.Inventory{Hostname: "web1", Packages: []agentproto.Package{{Name: "bash", Version: "5.2", Arch: "amd64"}, {Name: "netcat", Version: "1.2", Arch: "amd64"}},
		Ports: []agentproto.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 4444}}}
	tests := []struct {
		name    string
		hdr     map[string]string
		path    string
		body    string
		want    int
		wantMsg string
	}{
		{"no credential", nil, agentproto.PathHeartbeat, `{}`, 401, "Bearer"},
		{"unknown credential", map[string]string{"Authorization": "Bearer nsa_forged"}, agentproto.PathBatches, batch(id1, 1, nil), 401, "unknown agent credential"},
		{"bad JSON", auth, agentproto.PathBatches, `{"batch_id":`, 400, "invalid JSON"},
		{"unknown field", auth, agentproto.PathBatches, `{"batch_id":"x","evil":1}`, 400, "evil"},
		{"wrong agent id", auth, agentproto.PathBatches, strings.Replace(batch(id1, 1, nil), er.AgentID, "11111111-1111-4111-8111-111111111111", 1), 403, "does not match"},
		{"bad batch id", auth, agentproto.PathBatches, batch("not-a-uuid", 1, nil), 400, "batch_id"},
		{"oversize", auth, agentproto.PathBatches, `{"batch_id":"` + strings.Repeat("a", agentproto.MaxBatchBytes) + `"}`, 413, "larger than"},
		{"heartbeat wrong agent", auth, agentproto.PathHeartbeat, `{"agent_id":"someone-else","interval_ms":1000}`, 403, "does not match"},
		{"apply", auth, agentproto.PathBatches, batch(id1, 1, inv1), 200, agentproto.StatusApplied},
		{"replay", auth, agentproto.PathBatches, batch(id1, 1, inv1), 200, agentproto.StatusDuplicate},
		{"inventory change", auth, agentproto.PathBatches, batch("0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e60", 2, inv2), 200, agentproto.StatusApplied},
	}
	for _, tt := range tests {
		st, body := h.call(tt.hdr, "POST", tt.path, tt.body)
		if st != tt.want || !strings.Contains(string(body), tt.wantMsg) {
			t.Errorf("%s: %d %s; want %d containing %q", tt.name, st, body, tt.want, tt.wantMsg)
		}
	}
	var e struct {
		Endpoint endpointJSON `json:"endpoint"`
	}
	h.do("GET", "/api/v1/endpoints/"+er.AgentID, "", http.StatusOK, &e)
	if e.Endpoint.Batches != 2 || e.Endpoint.Samples != 2 || e.Endpoint.Duplicates != 1 {
		t.Errorf("endpoint counters = %+v, want 2 batches, 2 samples, 1 duplicate", e.Endpoint)
	}
	// The inventory change reached the event store as events search sees.
	if err := h.app.Events().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"package.installed", "port.opened"} {
		var out struct {
			Events []map[string]any `json:"events"`
		}
		h.do("GET", "/api/v1/events?q="+url.QueryEscape("event.action:"+action), "", http.StatusOK, &out)
		if len(out.Events) != 1 {
			t.Errorf("events with event.action %s: %d, want 1 (%v)", action, len(out.Events), out.Events)
		}
	}
	// Admin API refusals.
	h.do("POST", "/api/v1/enrollment-tokens", `{"ttl":"1s"}`, http.StatusBadRequest, nil)
	h.do("POST", "/api/v1/enrollment-tokens", `{"ttl":"soon"}`, http.StatusBadRequest, nil)
	h.do("GET", "/api/v1/endpoints/nope", "", http.StatusNotFound, nil)
	h.do("GET", "/api/v1/endpoints/"+er.AgentID+"/metrics?from=yesterday", "", http.StatusBadRequest, nil)
	h.do("DELETE", "/api/v1/endpoints/"+er.AgentID, "", http.StatusOK, nil)
	h.do("DELETE", "/api/v1/endpoints/"+er.AgentID, "", http.StatusConflict, nil)
	if st, _ := h.call(auth, "POST", agentproto.PathBatches, batch("0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e61", 3, nil)); st != http.StatusUnauthorized {
		t.Errorf("batch after revoke: %d, want 401", st)
	}
}
