package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestCollectFacts(t *testing.T) {
	root := t.TempDir()
	write := func(p, content string, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("/etc/group", "root:x:0:\n", 0o644)
	write("/etc/login.defs", "PASS_MAX_DAYS 90\n", 0o640)
	write("/etc/shadow", "root:$6$secret:1::::::\n", 0o600)
	write("/etc/big.conf", strings.Repeat("x", agentproto.MaxFileContent+10), 0o644)
	write("/proc/sys/net/ipv4/ip_forward", "0\n", 0o644)
	spec := agentproto.FactSpec{
		Files:    []string{"/etc/passwd", "/etc/missing", "relative/path"},
		Contents: []string{"/etc/login.defs", "/etc/shadow", "/etc/big.conf"},
		Sysctls:  []string{"net.ipv4.ip_forward", "kernel.nope", "../../etc/passwd"},
		Commands: []string{"not-allowed"},
	}
	c := &Collector{Root: root}
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	f := c.Facts(context.Background(), spec, now)
	files := map[string]agentproto.FileFact{}
	for _, ff := range f.Files {
		files[ff.Path] = ff
	}
	if len(files) != 5 {
		t.Fatalf("files %+v", f.Files)
	}
	if ff := files["/etc/login.defs"]; !ff.Exists || ff.Mode != 0o640 || ff.Content != "PASS_MAX_DAYS 90\n" || !ff.HasContent {
		t.Errorf("login.defs %+v", ff)
	}
	if ff := files["/etc/shadow"]; !ff.Exists || ff.HasContent || ff.Content != "" || ff.Mode != 0o600 {
		t.Errorf("shadow content must never be read: %+v", ff)
	}
	if ff := files["/etc/big.conf"]; !ff.Truncated || len(ff.Content) != agentproto.MaxFileContent {
		t.Errorf("big.conf truncated %v len %d", ff.Truncated, len(ff.Content))
	}
	if ff := files["/etc/missing"]; ff.Exists {
		t.Errorf("missing %+v", ff)
	}
	if len(f.Sysctls) != 2 || f.Sysctls[0] != (agentproto.SysctlFact{Key: "net.ipv4.ip_forward", Value: "0", Found: true}) || f.Sysctls[1].Found {
		t.Errorf("sysctls %+v", f.Sysctls)
	}
	if len(f.Commands) != 0 || !f.CollectedAt.Equal(now) {
		t.Errorf("commands %+v", f.Commands)
	}
}

func TestRunAllowedCommand(t *testing.T) {
	if _, err := exec.LookPath("apt-config"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("apt-config (apt) is required in CI")
		}
		t.Skip("apt-config not installed")
	}
	argv, _ := agentproto.AllowedCommand("apt-config-dump")
	cf := runAllowed(context.Background(), "apt-config-dump", argv)
	if cf.Missing || cf.Error != "" || cf.ExitCode != 0 || !strings.Contains(cf.Output, "APT::") {
		t.Errorf("apt-config dump: %+v", cf)
	}
	cf = runAllowed(context.Background(), "x", []string{"nocsoc-no-such-program"})
	if !cf.Missing {
		t.Errorf("missing program: %+v", cf)
	}
	cf = runAllowed(context.Background(), "x", []string{"sh", "-c", "echo oops >&2; exit 3"})
	if cf.ExitCode != 3 || cf.Error != "exit status 3: oops" {
		t.Errorf("failing program: %+v", cf)
	}
	lb := limitedBuffer{max: 4}
	lb.Write([]byte("abcdef"))
	if lb.b.String() != "abcd" || !lb.cut {
		t.Errorf("limited buffer %q %v", lb.b.String(), lb.cut)
	}
}

// TestFactsInBackground: the agent fetches the spec with its credential
// and hands the facts to the next batch, once.
func TestFactsInBackground(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/issue.net"), []byte("Authorized use only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var gotAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != agentproto.PathFactSpec {
			http.NotFound(w, r)
			return
		}
		gotAuth.Store(r.Header.Get("Authorization"))
		json.NewEncoder(w).Encode(agentproto.FactSpec{Contents: []string{"/etc/issue.net"}})
	}))
	defer srv.Close()
	a, err := New(Options{Server: srv.URL, StateDir: t.TempDir(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	a.cred = credential{AgentID: "a1", Credential: "nsa_test"}
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	a.startFacts(context.Background(), now)
	var f *agentproto.Facts
	deadline := time.Now().Add(30 * time.Second)
	for f == nil && time.Now().Before(deadline) {
		f = a.takeFacts()
		time.Sleep(5 * time.Millisecond) // polling, not a correctness wait
	}
	if f == nil || len(f.Files) != 1 || f.Files[0].Content != "Authorized use only\n" || gotAuth.Load() != "Bearer nsa_test" {
		t.Fatalf("facts %+v, auth %v", f, gotAuth.Load())
	}
	if a.takeFacts() != nil {
		t.Error("facts handed out twice")
	}
}
