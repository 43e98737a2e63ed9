package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/eventstore"
	"github.com/nocsoc/nocsoc/internal/query"
)

// agentEvents returns the messages of the events agents shipped, and one
// such event.
func agentEvents(t *testing.T, h *harness) (map[string]int, map[string]any, string) {
	t.Helper()
	where, err := query.Parse(`input:agent`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	// A page boundary may list an event twice while the store loads
	// rows; an event is counted once by its id.
	seen := map[uint64]bool{}
	var sample map[string]any
	host := ""
	cur := ""
	for {
		evs, next, err := h.app.Events().SearchEvents(context.Background(), eventstore.EventQuery{Where: where, Limit: eventstore.MaxLimit, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			// Only shipped log lines: the agent also reports changes it
			// sees on the host (a listening port closed by another
			// process on this machine) as events of input agent.
			if _, shipped := e.Fields["log.file.path"]; e.Input != "agent" || !shipped || seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			out[e.Raw]++
			if sample == nil {
				sample, host = e.Fields, e.Host
			}
		}
		if next == "" || len(evs) == 0 {
			return out, sample, host
		}
		cur = next
	}
}

// TestAgentLogShippingExactlyOnce runs the real agent binary tailing a
// file that keeps growing, kills it (SIGKILL) in the middle, restarts it,
// and checks that every line became exactly one event, normalized (sshd
// lines get source.ip) with the endpoint's hostname.
func TestAgentLogShippingExactlyOnce(t *testing.T) {
	bin := buildAgent(t)
	// No detection rules: the lines must not trigger active response
	// (firewall jobs) on the machine running the test.
	cfg := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(cfg, []byte("detection:\n  builtin: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, app.Options{ConfigPath: cfg})
	tok := h.enrollmentToken()
	stateDir, logDir := t.TempDir(), t.TempDir()
	logPath := filepath.Join(logDir, "auth.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mu sync.Mutex
	written := 0
	write := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		var b strings.Builder
		for range n {
			fmt.Fprintf(&b, "Nov 27 08:%02d:%02d web1 sshd[%d]: Accepted password for u%d from 198.51.100.%d port %d ssh2\n",
				written/60%60, written%60, 1000+written, written, written%250+1, 40000+written)
			written++
		}
		if _, err := f.WriteString(b.String()); err != nil {
			t.Error(err)
		}
	}
	write(500)

	start := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bin, "--server", h.url, "--enroll-token", tok, "--state", stateDir, "--interval", "200ms",
			"--inventory-interval", "1h", "--logs", logPath, "--logs-from-start", "--logs-poll", "10ms", "--updates-interval", "-1s")
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("agent stderr:\n%s", stderr.String())
			}
		})
		return cmd, done
	}
	shipped := func() int { m, _, _ := agentEvents(t, h); return len(m) }

	// Keep writing while the agent ships, and kill it mid-stream.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			write(7)
			time.Sleep(2 * time.Millisecond) // a steady trickle of lines, not a timing assertion
		}
	}()
	cmd, done := start()
	waitFor(t, "first lines shipped", func() bool { return shipped() >= 300 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	done <- nil // for the cleanup
	write(200)  // written while the agent is down
	start()
	waitFor(t, "more lines after the restart", func() bool {
		mu.Lock()
		n := written
		mu.Unlock()
		return shipped() > n/2+300
	})
	close(stop)
	wg.Wait()
	mu.Lock()
	total := written
	mu.Unlock()
	waitFor(t, fmt.Sprintf("all %d lines shipped", total), func() bool { return shipped() >= total })

	got, sample, host := agentEvents(t, h)
	if len(got) != total {
		data, _ := os.ReadFile(logPath)
		lines := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			lines[l] = true
		}
		for raw := range got {
			if !lines[raw] {
				t.Errorf("stored, never written as a line: %q", raw)
			}
		}
		t.Fatalf("%d distinct lines stored, %d written", len(got), total)
	}
	for line, n := range got {
		if n != 1 {
			t.Errorf("line stored %d times: %s", n, line)
		}
	}
	hostname, _ := os.Hostname()
	if host != hostname || sample["source.ip"] == nil || sample["process.name"] != "sshd" || sample["event.outcome"] != "success" ||
		sample["log.file.path"] != logPath {
		t.Errorf("event: host %q fields %v", host, sample)
	}
}

type rcAlert struct {
	ID           int64             `json:"id"`
	Status       string            `json:"status"`
	Source       string            `json:"source"`
	Labels       map[string]string `json:"labels"`
	SuppressedBy string            `json:"suppressed_by"`
}

// TestEndpointRootCause: checks whose target is an endpoint that goes
// unresponsive are attributed to it: a paging alert is resolved and
// re-opened suppressed with root_cause=endpoint:<hostname>, a check that
// fails while the endpoint is overdue is held and never pages; when the
// endpoint is back, the attribution ends and the check pages again.
func TestEndpointRootCause(t *testing.T) {
	h := startWith(t, app.Options{AgentCheckEvery: 50 * time.Millisecond})
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"localhost","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatal(err)
	}
	agentAuth := map[string]string{"Authorization": "Bearer " + er.Credential}
	const interval = 3 * time.Second
	heartbeat := func() time.Time {
		at := time.Now()
		if st, body := h.call(agentAuth, "POST", agentproto.PathHeartbeat, fmt.Sprintf(`{"agent_id":%q,"interval_ms":%d}`, er.AgentID, interval.Milliseconds())); st != http.StatusOK {
			t.Fatalf("heartbeat: %d %s", st, body)
		}
		return at
	}
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	target := "localhost:" + port

	alertsOf := func(check string) []rcAlert {
		var out struct {
			Alerts []rcAlert `json:"alerts"`
		}
		h.do("GET", "/api/v1/alerts?limit=500", "", http.StatusOK, &out)
		var mine []rcAlert
		for _, a := range out.Alerts {
			if a.Source == "check:"+check {
				mine = append(mine, a)
			}
		}
		return mine
	}
	firing := func(check string) *rcAlert {
		for _, a := range alertsOf(check) {
			if a.Status == "firing" {
				return &a
			}
		}
		return nil
	}

	last := heartbeat()
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"early","type":"tcp","target":%q,"interval":"1h","timeout":"1s"}`, target), http.StatusCreated, nil)
	waitFor(t, "early check pages", func() bool { a := firing("early"); return a != nil && a.SuppressedBy == "" })

	// Overdue (a heartbeat missed) but not yet unresponsive: a new
	// failure is held.
	waitFor(t, "endpoint overdue", func() bool { return time.Since(last) > interval*3/2+200*time.Millisecond })
	h.do("POST", "/api/v1/checks", fmt.Sprintf(`{"name":"late","type":"tcp","target":%q,"interval":"1h","timeout":"1s"}`, target), http.StatusCreated, nil)
	h.do("POST", "/api/v1/checks/late/run", "", http.StatusAccepted, nil)
	waitFor(t, "late check failed", func() bool {
		var out struct {
			Results []struct {
				OK bool `json:"ok"`
			} `json:"results"`
		}
		h.do("GET", "/api/v1/checks/late/results", "", http.StatusOK, &out)
		return len(out.Results) > 0
	})
	if time.Since(last) >= 3*interval {
		t.Skip("machine too slow: the endpoint was declared unresponsive before the hold could be tested")
	}
	if a := firing("late"); a != nil {
		t.Fatalf("late paged while its endpoint was overdue: %+v", *a)
	}

	h.waitEndpoint("endpoint unresponsive", func(e endpointJSON) bool { return e.Status == "unresponsive" })
	for _, c := range []string{"early", "late"} {
		waitFor(t, c+" attributed", func() bool {
			a := firing(c)
			return a != nil && a.Labels["root_cause"] == "endpoint:localhost" && a.SuppressedBy == "root_cause:endpoint:localhost"
		})
	}
	// early's paging alert was resolved; late never paged.
	for _, a := range alertsOf("early") {
		if a.SuppressedBy == "" && a.Status != "resolved" {
			t.Errorf("early still has a paging alert: %+v", a)
		}
	}
	for _, a := range alertsOf("late") {
		if a.SuppressedBy == "" {
			t.Errorf("late paged while its endpoint was overdue: %+v", a)
		}
	}

	// The endpoint is back: the attribution ends, and the still failing
	// check pages on its next result.
	heartbeat()
	h.waitEndpoint("endpoint online", func(e endpointJSON) bool { return e.Status == "online" })
	waitFor(t, "attributed alert resolved", func() bool { return firing("early") == nil })
	h.do("POST", "/api/v1/checks/early/run", "", http.StatusAccepted, nil)
	waitFor(t, "early pages again", func() bool {
		a := firing("early")
		return a != nil && a.SuppressedBy == "" && a.Labels["root_cause"] == ""
	})
}

// TestThresholdRulesFromConfig: a rule from the config file raises a NOC
// alert through the incident pipeline when a batch crosses it, and
// resolves it when a later batch is back under; the read-only API shows
// rules, states and forecasts.
func TestThresholdRulesFromConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(cfg, []byte(`endpoints:
  thresholds:
    - {name: disk-full, metric: disk.used_percent, labels: {mount: "/"}, op: ">", value: 90, for: 1m, severity: critical}
  forecast:
    alert_days: 7
`), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, app.Options{ConfigPath: cfg})
	tok := h.enrollmentToken()
	st, body := h.call(nil, "POST", agentproto.PathEnroll, fmt.Sprintf(`{"token":%q,"hostname":"db7","os":"linux"}`, tok))
	if st != http.StatusCreated {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(body, &er); err != nil {
		t.Fatal(err)
	}
	seq := 0
	t0 := time.Now().UTC().Add(-10 * time.Minute)
	send := func(at time.Duration, v float64) {
		seq++
		b := agentproto.Batch{BatchID: fmt.Sprintf("0b5c3f8e-1d2a-4c3b-8e9f-%012d", seq), AgentID: er.AgentID, Seq: uint64(seq), SentAt: t0.Add(at),
			Metrics: []agentproto.Sample{{Time: t0.Add(at), Name: "disk.used_percent", Labels: map[string]string{"mount": "/"}, Value: v}}}
		raw, _ := json.Marshal(b)
		if st, body := h.call(map[string]string{"Authorization": "Bearer " + er.Credential}, "POST", agentproto.PathBatches, string(raw)); st != http.StatusOK {
			t.Fatalf("batch: %d %s", st, body)
		}
	}
	find := func() *rcAlert {
		var out struct {
			Alerts []rcAlert `json:"alerts"`
		}
		h.do("GET", "/api/v1/alerts?limit=500", "", http.StatusOK, &out)
		for _, a := range out.Alerts {
			if a.Source == "threshold:disk-full" {
				return &a
			}
		}
		return nil
	}
	send(0, 95)
	var th struct {
		Rules  []map[string]any `json:"rules"`
		States []struct {
			Endpoint, Rule, State string
		} `json:"states"`
	}
	h.do("GET", "/api/v1/thresholds", "", http.StatusOK, &th)
	if len(th.Rules) != 1 || th.Rules[0]["for"] != "1m0s" || len(th.States) != 1 || th.States[0].State != "pending" || th.States[0].Endpoint != er.AgentID {
		t.Fatalf("thresholds API: %+v", th)
	}
	send(30*time.Second, 96)
	if a := find(); a != nil {
		t.Fatalf("fired before for: %+v", *a)
	}
	send(70*time.Second, 97)
	waitFor(t, "threshold alert", func() bool { a := find(); return a != nil && a.Status == "firing" })
	a := find()
	if a.Labels["host"] != "db7" || a.Labels["mount"] != "/" || a.Labels["endpoint"] != er.AgentID {
		t.Errorf("alert labels %v", a.Labels)
	}
	send(2*time.Minute, 40)
	waitFor(t, "threshold alert resolved", func() bool { a := find(); return a != nil && a.Status == "resolved" })

	var fc struct {
		Forecasts []map[string]any `json:"forecasts"`
	}
	h.do("GET", "/api/v1/endpoints/"+er.AgentID+"/forecast", "", http.StatusOK, &fc)
	h.do("GET", "/api/v1/endpoints/nope/forecast", "", http.StatusNotFound, nil)
	if st, _ := h.call(nil, "GET", "/api/v1/endpoints/"+er.AgentID+"/forecast", ""); st != http.StatusUnauthorized {
		t.Errorf("forecast without a token: %d, want 401", st)
	}
}
