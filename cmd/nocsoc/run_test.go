package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/alert"
	"github.com/nocsoc/nocsoc/internal/app"
	"github.com/nocsoc/nocsoc/internal/response"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"nocsoc"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "nocsoc ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "token", "create"); code != 2 || !strings.Contains(errs, "--user is required") {
		t.Errorf("token create without user: %d %q", code, errs)
	}
}

// TestTokenCreateWhileServerRuns creates a token from the data directory
// while the server holds it open, then uses that token on the API.
func TestTokenCreateWhileServerRuns(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{DataDir: data, Listen: "127.0.0.1:0", AdminPassword: "a-long-admin-password",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stderr: io.Discard, ConfigPoll: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	code, out, errs := runCmd(t, "token", "create", "--data", data, "--user", "admin", "--name", "ci")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errs)
	}
	tok := strings.TrimSpace(out)
	if !strings.HasPrefix(tok, "nsc_") {
		t.Fatalf("token = %q", tok)
	}
	req, _ := http.NewRequest("GET", a.URL()+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		User string `json:"user"`
		Role string `json:"role"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != 200 || me.User != "admin" || me.Role != "admin" {
		t.Errorf("GET /api/v1/me with CLI token: %d %+v %v", resp.StatusCode, me, err)
	}
	if code, _, errs := runCmd(t, "token", "create", "--data", data, "--user", "nobody"); code != 1 || !strings.Contains(errs, `user "nobody" does not exist`) {
		t.Errorf("token for unknown user: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "token", "create", "--data", t.TempDir(), "--user", "admin"); code != 1 || !strings.Contains(errs, "no nocsoc data") {
		t.Errorf("token in empty dir: %d %q", code, errs)
	}
}

func TestCheckRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "+OK ready\r\n")
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	defer ln.Close()

	cfg := filepath.Join(t.TempDir(), "nocsoc.yaml")
	src := fmt.Sprintf("checks:\n  - name: pop\n    type: tcp\n    target: %s\n    tcp: {expect: \"+OK\"}\n  - name: gone\n    type: tcp\n    target: %s\n    timeout: 2s\n", ln.Addr(), closedAddr)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "check", "run", "--config", cfg, "pop")
	if code != 0 {
		t.Fatalf("check run pop: %d %s %s", code, out, errs)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || r["ok"] != true {
		t.Errorf("check run pop output %q (%v)", out, err)
	}
	code, out, errs = runCmd(t, "check", "run", "--config", cfg, "gone")
	if code != 1 || !strings.Contains(out, "refused") || !strings.Contains(errs, `check "gone" failed`) {
		t.Errorf("check run gone: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd(t, "check", "run", "--config", cfg, "nope"); code != 1 || !strings.Contains(errs, `no check named "nope"`) {
		t.Errorf("unknown check: %d %q", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("checks:\n  - name: x\n    type: tcp\n    target: h:1\n    intervl: 5s\n"), 0o600)
	if code, _, errs := runCmd(t, "check", "run", "--config", bad, "x"); code != 1 || !strings.Contains(errs, "bad.yaml:5") {
		t.Errorf("bad config: %d %q", code, errs)
	}
}

func TestIncidentCLI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminPassword: "a-long-admin-password",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stderr: io.Discard, ConfigPoll: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	out, err := a.Response().Submit(ctx, response.Op{Kind: response.OpFire, Alert: alert.Alert{Title: "Disk full on db1", Severity: "high", Labels: map[string]string{"alertname": "DiskFull"}, Source: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(out[0].IncidentID)
	code, tok, errs := runCmd(t, "token", "create", "--data", a.DataDir(), "--user", "admin")
	if code != 0 {
		t.Fatalf("token: %s", errs)
	}
	srv := []string{"--server", a.URL(), "--token", strings.TrimSpace(tok)}
	code, list, errs := runCmd(t, append([]string{"incident", "list"}, srv...)...)
	if code != 0 || !strings.Contains(list, "Disk full on db1") || !strings.Contains(list, "triggered") {
		t.Fatalf("incident list: %d %q %q", code, list, errs)
	}
	code, show, errs := runCmd(t, append([]string{"incident", "show", id}, srv...)...)
	if code != 0 || !strings.Contains(show, "#"+id+" Disk full on db1") || !strings.Contains(show, "created") {
		t.Fatalf("incident show: %d %q %q", code, show, errs)
	}
	if code, res, errs := runCmd(t, append([]string{"incident", "ack", id}, srv...)...); code != 0 || !strings.Contains(res, "acknowledged") {
		t.Fatalf("incident ack: %d %q %q", code, res, errs)
	}
	if code, res, errs := runCmd(t, append([]string{"incident", "resolve", id}, srv...)...); code != 0 || !strings.Contains(res, "resolved") {
		t.Fatalf("incident resolve: %d %q %q", code, res, errs)
	}
	if code, _, errs := runCmd(t, append([]string{"incident", "ack", id}, srv...)...); code != 1 || !strings.Contains(errs, "409") {
		t.Errorf("ack of a resolved incident: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "incident", "list", "--server", a.URL()); code != 2 || !strings.Contains(errs, "token") {
		t.Errorf("list without token: %d %q", code, errs)
	}
}

// TestTuneRuntime: the server's GC and scheduler defaults apply only where
// the environment sets nothing.
func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})

	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS"} {
		t.Setenv(k, "")
	}
	tuneRuntime()
	if got := runtime.GOMAXPROCS(0); got != procs+serveExtraProcs {
		t.Errorf("GOMAXPROCS = %d, want %d", got, procs+serveExtraProcs)
	}
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Errorf("GOGC = %d, want %d", got, serveGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != serveMemoryLimit {
		t.Errorf("memory limit = %d, want %d", got, serveMemoryLimit)
	}

	// Set in the environment: left alone.
	runtime.GOMAXPROCS(procs)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	t.Setenv("GOMAXPROCS", strconv.Itoa(procs))
	tuneRuntime()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("with GOMAXPROCS set: GOMAXPROCS = %d, want %d", got, procs)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GOGC = %d, want 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: memory limit = %d, want none", got)
	}
}
