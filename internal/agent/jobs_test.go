package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestJobRefusals(t *testing.T) {
	a, err := New(Options{Server: "http://127.0.0.1:1", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := "0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e5f"
	for _, tt := range []struct {
		job  agentproto.Job
		want string
	}{
		{agentproto.Job{ID: id, Action: "format.disk"}, `unknown action "format.disk"`},
		{agentproto.Job{ID: id, Action: "shell", Args: map[string]string{"command": "id"}}, "--allow-shell"},
		{agentproto.Job{ID: id, Action: "package.install"}, "needs at least one package"},
		{agentproto.Job{ID: id, Action: "package.remove", Packages: []string{"--purge"}}, "not a package name"},
		{agentproto.Job{ID: id, Action: "patch.security", NotAfter: time.Now().Add(-time.Hour)}, "window closed"},
		// Without --active-response the host is never touched.
		{agentproto.Job{ID: id, Action: ActionFirewallBlock, Args: map[string]string{"value": "203.0.113.9"}}, "--active-response"},
		{agentproto.Job{ID: id, Action: ActionFirewallIsolate}, "--active-response"},
		{agentproto.Job{ID: id, Action: ActionUserLock, Args: map[string]string{"user": "mallory"}}, "--active-response"},
		{agentproto.Job{ID: id, Action: ActionProcessKill, Args: map[string]string{"pid": "1234"}}, "--active-response"},
	} {
		res := a.jr.execute(ctx, tt.job)
		if res.Status != agentproto.JobRefused || !strings.Contains(res.Error, tt.want) || res.JobID != id {
			t.Errorf("%s: %+v, want refused with %q", tt.job.Action, res, tt.want)
		}
	}
}

// TestJobRecovery: a job that was running when the agent stopped is
// reported failed at the next start, and never run again.
func TestJobRecovery(t *testing.T) {
	dir := t.TempDir()
	id := "0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e60"
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jobs", id+".run"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Server: "http://127.0.0.1:1", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a.jr.recover()
	raw, err := os.ReadFile(filepath.Join(dir, "jobs", id+".result"))
	if err != nil || !strings.Contains(string(raw), "stopped while the job ran") {
		t.Fatalf("result after restart: %s %v", raw, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jobs", id+".run")); !os.IsNotExist(err) {
		t.Errorf(".run file left: %v", err)
	}
	// Delivered again: not run (no .run file appears).
	a.jr.start(context.Background(), agentproto.Job{ID: id, Action: "inventory.collect"})
	if _, err := os.Stat(filepath.Join(dir, "jobs", id+".run")); !os.IsNotExist(err) {
		t.Errorf("a job with a stored result was started again")
	}
	a.jr.wg.Wait()
}
