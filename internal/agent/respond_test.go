package agent

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/firewall"
	"github.com/nocsoc/nocsoc/internal/firewall/netnstest"
)

func run(t *testing.T, r *Responder, action string, args map[string]string) agentproto.JobResult {
	t.Helper()
	fn, ok := r.Actions()[action]
	if !ok {
		t.Fatalf("no action %s", action)
	}
	res := fn(context.Background(), agentproto.Job{ID: "j-" + action, Action: action, Args: args})
	if res.JobID != "j-"+action || res.StartedAt.IsZero() || res.FinishedAt.IsZero() {
		t.Errorf("%s: result not filled in: %+v", action, res)
	}
	return res
}

// TestFirewallActionsInNamespaces runs firewall.block, unblock, isolate and
// release as jobs against nft inside a server namespace, and checks real
// TCP connections from a client namespace.
func TestFirewallActionsInNamespaces(t *testing.T) {
	netnstest.Require(t, "nft")
	p := netnstest.New(t)
	dst := p.Listen(p.Server, p.ServerAddr)
	nocsoc := p.Listen(p.Client, p.ClientAddr)
	other := p.ClientAddr.Next().Next()
	p.AddClientAddr(other)
	r := NewResponder(ResponderOptions{Runner: firewall.ExecRunner{Prefix: []string{"ip", "netns", "exec", p.Server}}})
	can := func(src netip.Addr) bool { return netnstest.CanConnect(p.Client, src, dst, 500*time.Millisecond) }

	if !can(netip.Addr{}) {
		t.Fatal("cannot connect before the block")
	}
	if res := run(t, r, ActionFirewallBlock, map[string]string{"value": p.ClientAddr.String(), "duration": "4h"}); res.Status != agentproto.JobSucceeded {
		t.Fatalf("block: %+v", res)
	}
	if can(netip.Addr{}) {
		t.Fatal("blocked client still connects")
	}
	if !can(other) {
		t.Error("an address that was not blocked cannot connect")
	}
	if res := run(t, r, ActionFirewallUnblock, map[string]string{"value": p.ClientAddr.String()}); res.Status != agentproto.JobSucceeded {
		t.Fatalf("unblock: %+v", res)
	}
	if !can(netip.Addr{}) {
		t.Fatal("cannot connect after the unblock")
	}

	res := run(t, r, ActionFirewallIsolate, map[string]string{"servers": p.ClientAddr.String()})
	if res.Status != agentproto.JobSucceeded {
		t.Fatalf("isolate: %+v", res)
	}
	if can(other) {
		t.Error("isolated host still reachable from another host")
	}
	if !netnstest.CanConnect(p.Server, netip.Addr{}, nocsoc, 500*time.Millisecond) {
		t.Error("isolated host cannot reach the nocsoc server")
	}
	if res := run(t, r, ActionFirewallRelease, nil); res.Status != agentproto.JobSucceeded {
		t.Fatalf("release: %+v", res)
	}
	if !can(other) {
		t.Error("released host not reachable")
	}
}

func TestFirewallActionRefusals(t *testing.T) {
	rec := &recordingRunner{}
	r := NewResponder(ResponderOptions{Runner: rec, Servers: []netip.Addr{netip.MustParseAddr("192.0.2.10")}})
	for _, c := range []struct {
		action string
		args   map[string]string
		want   string
	}{
		{ActionFirewallBlock, map[string]string{}, "args.value is required"},
		{ActionFirewallBlock, map[string]string{"value": "nope"}, "not an address"},
		{ActionFirewallBlock, map[string]string{"value": "127.0.0.1"}, "allow-listed"},
		{ActionFirewallBlock, map[string]string{"value": "192.0.2.0/24"}, "allow-listed"},
		{ActionFirewallBlock, map[string]string{"value": "203.0.113.9", "duration": "-1h"}, "args.duration"},
		{ActionFirewallIsolate, map[string]string{"servers": "x"}, "args.servers"},
		{ActionFirewallIsolate, map[string]string{"allow": "10.0.0.1/8"}, "host bits"},
		{ActionUserLock, map[string]string{"user": "root"}, "root"},
		{ActionUserLock, map[string]string{"user": "-rf"}, "not a login name"},
		{ActionProcessKill, map[string]string{"pid": "1", "name": "init"}, "init"},
		{ActionProcessKill, map[string]string{"pid": "x", "name": "a"}, "args.pid"},
		{ActionProcessKill, map[string]string{"pid": "12"}, "args.name"},
	} {
		res := run(t, r, c.action, c.args)
		if res.Status != agentproto.JobRefused || !strings.Contains(res.Error, c.want) {
			t.Errorf("%s %v: %s %q, want refused with %q", c.action, c.args, res.Status, res.Error, c.want)
		}
	}
	if len(rec.cmds) != 0 {
		t.Errorf("refused jobs ran commands: %v", rec.cmds)
	}
	// No firewall on the host: a clear failure, not a refusal.
	t.Setenv("PATH", t.TempDir())
	r = NewResponder(ResponderOptions{})
	res := run(t, r, ActionFirewallBlock, map[string]string{"value": "203.0.113.9"})
	if res.Status != agentproto.JobFailed || !strings.Contains(res.Error, "nft") || !strings.Contains(res.Error, "not found") {
		t.Errorf("without nft: %+v", res)
	}
}

type recordingRunner struct{ cmds []string }

func (r *recordingRunner) Run(_ context.Context, stdin, name string, args ...string) (string, error) {
	r.cmds = append(r.cmds, name+" "+strings.Join(args, " "))
	return "", nil
}

// TestUserLock runs user.lock and user.unlock against a fake usermod first
// on PATH that records its arguments.
func TestUserLock(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\nprintf '%s|' \"$@\" >>" + log + "\necho >>" + log + "\n[ \"$5\" = ghost ] && { echo \"usermod: user 'ghost' does not exist\" >&2; exit 6; }\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "usermod"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	r := NewResponder(ResponderOptions{})
	if res := run(t, r, ActionUserLock, map[string]string{"user": "mallory"}); res.Status != agentproto.JobSucceeded {
		t.Fatalf("lock: %+v", res)
	}
	if res := run(t, r, ActionUserUnlock, map[string]string{"user": "mallory"}); res.Status != agentproto.JobSucceeded {
		t.Fatalf("unlock: %+v", res)
	}
	res := run(t, r, ActionUserLock, map[string]string{"user": "ghost"})
	if res.Status != agentproto.JobFailed || !strings.Contains(res.Error, "does not exist") {
		t.Errorf("lock of a missing user: %+v", res)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "-L|-e|1|--|mallory|\n-U|-e||--|mallory|\n-L|-e|1|--|ghost|\n"
	if string(b) != want {
		t.Errorf("usermod calls:\n%s\nwant:\n%s", b, want)
	}
}

// TestProcessKill kills a real child process, but only when its name
// matches.
func TestProcessKill(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pid := strconv.Itoa(cmd.Process.Pid)
	r := NewResponder(ResponderOptions{})

	res := run(t, r, ActionProcessKill, map[string]string{"pid": pid, "name": "sshd"})
	if res.Status != agentproto.JobRefused || !strings.Contains(res.Error, "reused") {
		t.Fatalf("kill with the wrong name: %+v", res)
	}
	select {
	case <-done:
		t.Fatal("process died after a refused kill")
	default:
	}
	res = run(t, r, ActionProcessKill, map[string]string{"pid": pid, "name": "sleep"})
	if res.Status != agentproto.JobSucceeded {
		t.Fatalf("kill: %+v", res)
	}
	err := <-done
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want SIGKILL", err)
	}
	res = run(t, r, ActionProcessKill, map[string]string{"pid": pid, "name": "sleep"})
	if res.Status != agentproto.JobRefused || !strings.Contains(res.Error, "no such process") {
		t.Errorf("kill of a gone pid: %+v", res)
	}
}
