package agent

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

func TestParseAptSimulation(t *testing.T) {
	out := `NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  libssl3 tzdata
Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Inst libc6:i386 [2.36-9] (2.36-9+deb12u4 Debian:12.11/stable, Debian-Security:12/stable-security [i386])
Inst newdep (1.0-1 Debian:12.11/stable [amd64])
Conf libssl3 (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
`
	got := ParseAptSimulation(out)
	want := []agentproto.PendingUpdate{
		{Name: "libssl3", Arch: "amd64", CurrentVersion: "3.0.11-1~deb12u1", Version: "3.0.11-1~deb12u2", Origin: "Debian-Security:12/stable-security", Security: true},
		{Name: "tzdata", Arch: "all", CurrentVersion: "2024a-0+deb12u1", Version: "2025b-0+deb12u1", Origin: "Debian:12.11/stable"},
		{Name: "libc6", Arch: "i386", CurrentVersion: "2.36-9", Version: "2.36-9+deb12u4", Origin: "Debian:12.11/stable, Debian-Security:12/stable-security", Security: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseAptSimulation:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDnf(t *testing.T) {
	check := `
openssl-libs.x86_64                 1:3.0.9-2.fc38                 updates
a-very-long-package-name-that-wraps.noarch
                                    2.1-1.fc38                     updates
kernel.x86_64  6.5.1-100.fc38  updates
Obsoleting Packages
grub2-tools.x86_64  1:2.06-100.fc38  updates
`
	ups := ParseDnfCheckUpdate(check)
	if len(ups) != 3 || ups[0].Name != "openssl-libs" || ups[0].Arch != "x86_64" || ups[0].Version != "1:3.0.9-2.fc38" ||
		ups[1].Name != "a-very-long-package-name-that-wraps" || ups[1].Version != "2.1-1.fc38" || ups[2].Name != "kernel" {
		t.Errorf("ParseDnfCheckUpdate = %+v", ups)
	}
	sec := ParseDnfSecurity("FEDORA-2023-abc Important/Sec. openssl-libs-1:3.0.9-2.fc38.x86_64\nFEDORA-2023-def Moderate/Sec. kernel-6.5.1-100.fc38.x86_64\n")
	if !sec["openssl-libs"] || !sec["kernel"] || len(sec) != 2 {
		t.Errorf("ParseDnfSecurity = %v", sec)
	}
}

// fakeTool writes an executable shell script named name into dir.
func fakeTool(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCollectUpdatesFakeApt(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	bin, root := t.TempDir(), t.TempDir()
	fakeTool(t, bin, "apt-get", `echo "Inst openssl [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])"`+"\n")
	t.Setenv("PATH", bin)
	if err := os.MkdirAll(filepath.Join(root, "var/run"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "var/run/reboot-required"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "var/run/reboot-required.pkgs"), []byte("linux-image-amd64\nlinux-image-amd64\n"), 0o644)
	u := CollectUpdates(context.Background(), root)
	if u.Manager != "apt" || u.Error != "" || len(u.Pending) != 1 || !u.Pending[0].Security || !u.RebootRequired ||
		!reflect.DeepEqual(u.RebootPackages, []string{"linux-image-amd64"}) {
		t.Errorf("CollectUpdates = %+v", u)
	}
	fakeTool(t, bin, "apt-get", "echo 'E: broken' >&2; exit 100\n")
	u = CollectUpdates(context.Background(), root)
	if !strings.Contains(u.Error, "E: broken") || len(u.Pending) != 0 {
		t.Errorf("failing apt-get: %+v", u)
	}
}

func TestRunActionTimeoutKillsGroup(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	job := agentproto.Job{ID: "0b5c3f8e-1d2a-4c3b-8e9f-0a1b2c3d4e5f", Action: "x", TimeoutMS: 200}
	fn := func(ctx context.Context, j agentproto.Job) agentproto.JobResult {
		// The child's child (sleep) keeps stdout open: only a group kill
		// and WaitDelay end this promptly.
		return RunCommand(ctx, nil, "/bin/sh", "-c", "echo started; sleep 600; echo never")
	}
	start := time.Now()
	res := runAction(context.Background(), fn, job, time.Now)
	if res.Status != agentproto.JobTimeout || res.JobID != job.ID || !strings.Contains(res.Output, "started") || strings.Contains(res.Output, "never") {
		t.Errorf("result = %+v", res)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: the hanging child was not killed", d)
	}
}

func TestTailOutputAndRegistry(t *testing.T) {
	long := strings.Repeat("x", agentproto.MaxJobOutput) + "END"
	if got := agentproto.TailOutput(long); len(got) > agentproto.MaxJobOutput || !strings.HasSuffix(got, "END") {
		t.Errorf("TailOutput kept %d bytes", len(got))
	}
	for _, a := range []string{"patch.security", "package.install", "package.remove", "package.upgrade"} {
		if _, ok := lookupAction(a); !ok {
			t.Errorf("action %s not registered", a)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("registering patch.security twice did not panic")
		}
	}()
	RegisterAction("patch.security", patchSecurity)
}
