package app_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/app"
)

// TestSSHBruteForceOverSyslog sends an SSH brute force from two sources
// over TCP syslog and expects one SOC alert per attacking source, the
// events searchable, and the pivot on the attacker's IP to show both.
func TestSSHBruteForceOverSyslog(t *testing.T) {
	cfg := "inputs:\n  syslog:\n    - {name: syslog-tcp, protocol: tcp, listen: 127.0.0.1:0}\n"
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, app.Options{ConfigPath: path})
	addr := h.app.Ingest().Addrs()["syslog-tcp"]
	if addr == nil {
		t.Fatal("syslog-tcp input not bound")
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	attackers := []string{"203.0.113.7", "198.51.100.23"}
	now := time.Now()
	var b strings.Builder
	for i := 0; i < 12; i++ {
		for j, ip := range attackers {
			ts := now.Add(time.Duration(i-20) * time.Second).Format(time.Stamp)
			fmt.Fprintf(&b, "<38>%s web1 sshd[%d]: Failed password for invalid user admin%d from %s port %d ssh2\n", ts, 4000+i, j, ip, 40000+i)
		}
	}
	// A benign login from a third address.
	fmt.Fprintf(&b, "<38>%s web1 sshd[5000]: Accepted publickey for deploy from 192.0.2.10 port 50000 ssh2\n", now.Format(time.Stamp))
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	deadline := time.Now().Add(20 * time.Second)
	var soc []alertJSON
	for {
		soc = nil
		for _, a := range h.alerts("team=soc") {
			if a.Labels["rule_id"] == "6b0f3c52-1d0e-4a53-9a51-0c1f7c2e0a04" {
				soc = append(soc, a)
			}
		}
		if len(soc) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	bySource := map[string]int{}
	for _, a := range soc {
		bySource[a.Labels["source.ip"]]++
		if a.Origin != "human" || a.Team != "soc" {
			t.Errorf("alert %+v: want team soc, origin human", a)
		}
	}
	if len(bySource) != 2 || bySource[attackers[0]] != 1 || bySource[attackers[1]] != 1 {
		t.Fatalf("SSH brute-force alerts by source = %v, want one per attacker", bySource)
	}

	var res struct {
		Events   []map[string]any `json:"events"`
		Unloaded *int             `json:"unloaded_events"`
	}
	h.do("GET", "/api/v1/events?q="+url.QueryEscape(`source.ip:203.0.113.7 AND event.outcome:failure`)+"&from=1h&limit=100", "", http.StatusOK, &res)
	if len(res.Events) != 12 || res.Unloaded != nil {
		t.Errorf("search found %d events (unloaded_events %v), want all 12 and no unloaded_events: the loader keeps up", len(res.Events), res.Unloaded)
	}
	if len(res.Events) > 0 && res.Events[0]["user.name"] == nil {
		t.Errorf("event not normalized: %v", res.Events[0])
	}
	var piv struct {
		Timeline []struct {
			Kind string `json:"kind"`
		} `json:"timeline"`
	}
	h.do("GET", "/api/v1/pivot?entity=ip&value=203.0.113.7&window=1h", "", http.StatusOK, &piv)
	kinds := map[string]int{}
	for _, it := range piv.Timeline {
		kinds[it.Kind]++
	}
	if kinds["event"] != 12 || kinds["alert"] < 1 || kinds["incident"] < 1 {
		t.Errorf("pivot timeline kinds = %v", kinds)
	}
	var bad struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	h.do("GET", "/api/v1/events?q="+url.QueryEscape(`source.ip:(1.2.3.4`), "", http.StatusBadRequest, &bad)
	if bad.Field != "q" || !strings.Contains(bad.Error, "position") {
		t.Errorf("query syntax error = %+v", bad)
	}
}

func TestPostEventsNamesBadLines(t *testing.T) {
	h := start(t, "", "")
	body := `{"@timestamp":"2026-11-27T07:00:00Z","message":"hello","host.name":"a"}
{"broken":
{"@timestamp":"2026-11-27T07:00:01Z","message":"world","host.name":"b"}
`
	var out struct {
		Accepted int `json:"accepted"`
		Errors   []struct {
			Line int `json:"line"`
		} `json:"errors"`
	}
	h.do("POST", "/api/v1/events", body, http.StatusOK, &out)
	if out.Accepted != 2 || len(out.Errors) != 1 || out.Errors[0].Line != 2 {
		t.Errorf("reply = %+v, want 2 accepted and line 2 rejected", out)
	}
	var res struct {
		Events []map[string]any `json:"events"`
	}
	h.do("GET", "/api/v1/events?q=world&from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z", "", http.StatusOK, &res)
	if len(res.Events) != 1 {
		t.Errorf("search after POST found %d events", len(res.Events))
	}
}

// TestPipelineHealthAlert: an event store that falls behind raises a NOC
// alert about the pipeline itself, which resolves once the backlog has
// been loaded.
func TestPipelineHealthAlert(t *testing.T) {
	cfg := "server:\n  eventstore:\n    max_backlog: 2000\ninputs:\n  syslog:\n    - {name: syslog-tcp, protocol: tcp, listen: 127.0.0.1:0}\n"
	path := filepath.Join(t.TempDir(), "nocsoc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The loader would wait an hour before loading fewer than load_rows
	// events: the backlog stays until a search asks for it.
	h := startWith(t, app.Options{ConfigPath: path, HealthEvery: 20 * time.Millisecond, HealthFor: 100 * time.Millisecond, EventLoadEvery: time.Hour})
	conn, err := net.Dial("tcp", h.app.Ingest().Addrs()["syslog-tcp"].String())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 1000 { // over a quarter of max_backlog
		fmt.Fprintf(&b, "<86>%s web1 cron[%d]: (root) CMD (run-parts /etc/cron.hourly)\n", time.Now().Format(time.Stamp), 100+i)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	behind := func() *alertJSON {
		for _, a := range h.alerts("team=noc") {
			if a.Labels["alertname"] == "NocsocEventStoreBehind" {
				return &a
			}
		}
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	a := behind()
	for ; a == nil && time.Now().Before(deadline); a = behind() {
		time.Sleep(20 * time.Millisecond)
	}
	if a == nil {
		t.Fatalf("no NocsocEventStoreBehind alert; unloaded events %d", h.app.Events().UnloadedEvents())
	}
	if a.Status != "firing" || a.Origin != "natural" || a.Severity != "medium" || a.Labels["component"] != "soc-pipeline" {
		t.Errorf("alert = %+v", *a)
	}
	// A search waits for the events: the backlog is loaded, and the alert
	// resolves once that has lasted HealthFor.
	var res struct {
		Events []json.RawMessage `json:"events"`
	}
	h.do("GET", "/api/v1/events?q="+url.QueryEscape("process.name:cron")+"&limit=5", "", http.StatusOK, &res)
	if len(res.Events) == 0 {
		t.Error("search found no cron events")
	}
	for a = behind(); a != nil && a.Status == "firing" && time.Now().Before(deadline); a = behind() {
		time.Sleep(20 * time.Millisecond)
	}
	if a == nil || a.Status != "resolved" {
		t.Fatalf("alert after the backlog was loaded: %+v; unloaded events %d", a, h.app.Events().UnloadedEvents())
	}
}
