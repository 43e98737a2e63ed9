package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func paths(fs []agentproto.FileState) map[string]agentproto.FileState {
	m := map[string]agentproto.FileState{}
	for _, f := range fs {
		m[f.Path] = f
	}
	return m
}

func TestFIMWatcher(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("cron.d/backup", "0 2 * * * root /usr/local/bin/backup\n", 0o644)
	write("cron.d/other", "x\n", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "cron.d", "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	patterns := []string{filepath.Join(dir, "passwd"), filepath.Join(dir, "sudoers"), filepath.Join(dir, "cron.d", "*")}
	state := filepath.Join(t.TempDir(), "fim.json")
	w := newFIMWatcher(patterns, state)

	// First run: everything, the missing literal path too.
	got, commit := w.scan()
	m := paths(got)
	if len(got) != 4 || !m[filepath.Join(dir, "passwd")].Exists || m[filepath.Join(dir, "sudoers")].Exists {
		t.Fatalf("first scan = %+v", got)
	}
	p := m[filepath.Join(dir, "passwd")]
	sum := sha256.Sum256([]byte("root:x:0:0::/root:/bin/sh\n"))
	if p.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("hash = %q", p.SHA256)
	}
	if p.Mode&0o777 != 0o644 || p.Size != 26 || p.UID != os.Getuid() {
		t.Errorf("passwd state = %+v", p)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.scan(); len(got) != 0 {
		t.Fatalf("unchanged files reported: %+v", got)
	}

	// Change, create, chmod and delete.
	write("passwd", "root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n", 0o644)
	write("sudoers", "evil ALL=(ALL) NOPASSWD: ALL\n", 0o440)
	if err := os.Chmod(filepath.Join(dir, "cron.d", "other"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "cron.d", "backup")); err != nil {
		t.Fatal(err)
	}
	got, commit = w.scan()
	m = paths(got)
	if len(got) != 4 || m[filepath.Join(dir, "passwd")].SHA256 == p.SHA256 || !m[filepath.Join(dir, "sudoers")].Exists ||
		m[filepath.Join(dir, "cron.d", "backup")].Exists || m[filepath.Join(dir, "cron.d", "other")].Mode&0o777 != 0o666 {
		t.Fatalf("second scan = %+v", got)
	}
	// Not committed (the batch was not buffered): the next scan reports
	// the same again.
	if again, _ := w.scan(); len(again) != 4 {
		t.Fatalf("uncommitted changes lost: %+v", again)
	}
	_, commit = w.scan()
	if err := commit(); err != nil {
		t.Fatal(err)
	}

	// A restarted agent remembers what it reported.
	w2 := newFIMWatcher(patterns, state)
	if got, _ := w2.scan(); len(got) != 0 {
		t.Fatalf("restart resent: %+v", got)
	}
	if err := os.Remove(filepath.Join(dir, "sudoers")); err != nil {
		t.Fatal(err)
	}
	if got, _ := w2.scan(); len(got) != 1 || got[0].Exists {
		t.Fatalf("literal path deleted: %+v", got)
	}
}

func TestParseFIMPaths(t *testing.T) {
	if p, err := ParseFIMPaths("none"); err != nil || p != nil {
		t.Errorf("none: %v %v", p, err)
	}
	if p, err := ParseFIMPaths("/etc/passwd, /etc/cron.d/*"); err != nil || len(p) != 2 {
		t.Errorf("list: %v %v", p, err)
	}
	for _, bad := range []string{"etc/passwd", "/etc/[", ""} {
		if _, err := ParseFIMPaths(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
