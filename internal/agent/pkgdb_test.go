package agent

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// apkInstalled is an excerpt of an Alpine 3.20 /lib/apk/db/installed.
const apkInstalled = `C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
S:407534
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:busybox
V:1.36.1-r29
A:x86_64
T:Size optimized toolbox of many common UNIX utilities
`

func TestParseApkInstalled(t *testing.T) {
	got, err := ParseApkInstalled(strings.NewReader(apkInstalled))
	if err != nil {
		t.Fatal(err)
	}
	want := []agentproto.Package{{Name: "busybox", Version: "1.36.1-r29", Arch: "x86_64"}, {Name: "musl", Version: "1.2.5-r0", Arch: "x86_64"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"P:musl\nthis is not a field\n", "P:musl\nA:x86_64\n"} {
		if _, err := ParseApkInstalled(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err = %v, want one naming the line", bad, err)
		}
	}
}

func TestParseRpmQuery(t *testing.T) {
	out := "bash\t5.1.8-9.el9\tx86_64\nopenssl\t1:3.0.7-27.el9\tx86_64\ngpg-pubkey\tfd431d51-4ae0493b\t(none)\n"
	got, err := ParseRpmQuery(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []agentproto.Package{{Name: "bash", Version: "5.1.8-9.el9", Arch: "x86_64"}, {Name: "gpg-pubkey", Version: "fd431d51-4ae0493b"},
		{Name: "openssl", Version: "1:3.0.7-27.el9", Arch: "x86_64"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ParseRpmQuery(strings.NewReader("bash 5.1\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed line: err = %v", err)
	}
}

// TestRpmPackagesRunsRpm runs a fake rpm placed first on PATH (never the
// host's), as the agent does on an rpm-based system.
func TestRpmPackagesRunsRpm(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$1\" = -qa ] || exit 2\nprintf 'bash\\t5.1.8-9.el9\\tx86_64\\n'\n"
	if err := os.WriteFile(filepath.Join(dir, "rpm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	pkgs, ok, err := rpmPackages(context.Background())
	if err != nil || !ok || len(pkgs) != 1 || pkgs[0].Name != "bash" {
		t.Fatalf("rpmPackages = %+v, %v, %v", pkgs, ok, err)
	}
}
