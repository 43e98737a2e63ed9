package compliance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp/syntax"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nocsoc/nocsoc/internal/agent"
	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/policies"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func TestBuiltinPack(t *testing.T) {
	pols, errs := LoadDir(policies.Builtin, "builtin", "", "builtin")
	if len(errs) > 0 {
		t.Fatalf("builtin policies refused: %v", errs)
	}
	set, errs := NewSet(pols)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checks := set.Checks()
	if len(checks) < 40 {
		t.Fatalf("builtin pack has %d checks, want at least 40", len(checks))
	}
	for _, c := range checks {
		for _, fw := range Frameworks() {
			if len(c.Controls[fw]) == 0 {
				t.Errorf("check %s maps to no %s control", c.ID, fw)
			}
		}
		if c.Rationale == "" || c.Remediation == "" {
			t.Errorf("check %s lacks rationale or remediation", c.ID)
		}
	}
	spec := set.Spec().AgentSpec()
	for _, name := range spec.Commands {
		if _, ok := agentproto.AllowedCommand(name); !ok {
			t.Errorf("spec command %q not allowed", name)
		}
	}
	if len(spec.Sysctls) == 0 || len(spec.Contents) == 0 {
		t.Errorf("spec too small: %+v", spec)
	}
}

const goodPolicy = `policy:
  id: demo
  name: Demo
checks:
  - id: demo-1
    title: Demo check
    controls:
      pci-dss-4.0: 8.3.6
    test:
      file_exists: /etc/hosts
`

func TestPolicyErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown test type", strings.Replace(goodPolicy, "file_exists: /etc/hosts", "file_teleports: /etc/hosts", 1), "demo.yml:10: check \"demo-1\".test: unknown test type \"file_teleports\""},
		{"bad regex", strings.Replace(goodPolicy, "file_exists: /etc/hosts", "file_matches: {path: /etc/hosts, regex: 'a(b'}", 1), "demo.yml:10: check \"demo-1\".test.file_matches.regex: regex does not compile"},
		{"bad control", strings.Replace(goodPolicy, "pci-dss-4.0: 8.3.6", "iso27001-2022: 8.5", 1), "demo.yml:8: check \"demo-1\": iso27001-2022 control \"8.5\": expected an Annex A control like A.8.5"},
		{"iso out of range", strings.Replace(goodPolicy, "pci-dss-4.0: 8.3.6", "iso27001-2022: A.6.9", 1), "demo.yml:8: check \"demo-1\": iso27001-2022 control \"A.6.9\": theme A.6 has controls 1-8"},
		{"nist format", strings.Replace(goodPolicy, "pci-dss-4.0: 8.3.6", "nist-csf-2.0: PR.AC-1", 1), "demo.yml:8: check \"demo-1\": nist-csf-2.0 control \"PR.AC-1\""},
		{"unknown framework", strings.Replace(goodPolicy, "pci-dss-4.0: 8.3.6", "sox: 404", 1), "demo.yml:8: check \"demo-1\": unknown framework \"sox\""},
		{"command not allowed", strings.Replace(goodPolicy, "file_exists: /etc/hosts", "command: {name: rm-rf, empty: true}", 1), "demo.yml:10: check \"demo-1\".test.command.name: command \"rm-rf\" is not on the allow-list"},
		{"unknown key", strings.Replace(goodPolicy, "    title: Demo check", "    title: Demo check\n    colour: red", 1), "demo.yml:7: checks[0]: unknown key \"colour\""},
		{"secret content", strings.Replace(goodPolicy, "file_exists: /etc/hosts", "file_contains: {path: /etc/shadow, text: root}", 1), "the content of /etc/shadow is never collected"},
		{"relative path", strings.Replace(goodPolicy, "/etc/hosts", "etc/hosts", 1), "demo.yml:10: check \"demo-1\".test.file_exists: expected an absolute, clean file path"},
		{"bad min version", strings.Replace(goodPolicy, "file_exists: /etc/hosts", "package_min_version: {name: openssl, version: 'x1'}", 1), "upstream version must start with a digit"},
		{"yaml syntax", "policy: [\n", "demo.yml:"},
		{"missing checks", "policy: {id: demo, name: Demo}\n", "demo.yml:1: checks: is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy("demo.yml", []byte(c.src), "api")
			if err == nil {
				t.Fatal("policy accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nwant it to contain %q", err, c.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Errorf("error is not a *LoadError: %T", err)
			}
		})
	}
}

func TestBadPolicyDoesNotBlockOthers(t *testing.T) {
	fsys := fstest.MapFS{
		"p/a.yml":    {Data: []byte(goodPolicy)},
		"p/b.yml":    {Data: []byte(strings.Replace(goodPolicy, "file_exists", "file_nope", 1))},
		"p/c.yml":    {Data: []byte(strings.NewReplacer("id: demo", "id: other", "demo-1", "other-1").Replace(goodPolicy))},
		"p/dup.yaml": {Data: []byte(strings.Replace(goodPolicy, "id: demo\n", "id: dup\n", 1))},
		"p/x.txt":    {Data: []byte("ignored")},
	}
	pols, errs := LoadDir(fsys, "p", "", "directory")
	if len(pols) != 3 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "p/b.yml:10:") {
		t.Fatalf("loaded %d, errors %v", len(pols), errs)
	}
	set, errs := NewSet(pols)
	if len(set.Policies) != 2 || len(errs) != 1 || !strings.Contains(errs[0].Error(), `p/dup.yaml:5: check id "demo-1" is already defined by policy "demo"`) {
		t.Fatalf("set %d policies, errors %v", len(set.Policies), errs)
	}
}

func TestDebVersionCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0", "1.0+b1", -1},
		{"1.0-1", "1.0-2", -1},
		{"1.0-1", "1.0", 1},
		{"1:0.1", "2.0", 1},
		{"0:2.0", "2.0", 0},
		{"3.0.15-1~deb12u1", "3.0.19-1~deb12u2", -1},
		{"1.0a", "1.0+", -1},
		{"1.0.0", "1.0", 1},
		{"001", "1", 0},
		{"2.36-9+deb12u7", "2.36-9+deb12u10", -1},
		{"9.2p1-2+deb12u3", "9.2p1-2+deb12u3", 0},
		{"1:9.2p1-2", "9.9", 1},
		{"7.88.1-10+deb12u5", "7.88.1-10", 1},
	}
	for _, c := range cases {
		a, err := ParseDebVersion(c.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseDebVersion(c.b)
		if err != nil {
			t.Fatal(err)
		}
		got := CompareDebVersions(a, b)
		if sign(got) != c.want {
			t.Errorf("compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if sign(CompareDebVersions(b, a)) != -c.want {
			t.Errorf("compare(%s, %s) not antisymmetric", c.b, c.a)
		}
	}
	for _, bad := range []string{"", "a1", "1:", "x:1", "1.0-", "1 0"} {
		if _, err := ParseDebVersion(bad); err == nil {
			t.Errorf("ParseDebVersion(%q) accepted", bad)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestDebVersionAgainstDpkg compares this machine's installed versions
// pairwise with dpkg --compare-versions.
func TestDebVersionAgainstDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dpkg is required in CI")
		}
		t.Skip("dpkg not installed")
	}
	pkgs := dpkgPackages(t)
	var vs []string
	for _, p := range pkgs {
		vs = append(vs, p.Version)
	}
	if len(vs) > 40 {
		vs = vs[:40]
	}
	vs = append(vs, "1.0~rc1", "1:0.5", "2.0-1+b1", "2.0-1~bpo1")
	n := 0
	for i := 0; i < len(vs); i++ {
		j := (i*7 + 3) % len(vs)
		a, _ := ParseDebVersion(vs[i])
		b, _ := ParseDebVersion(vs[j])
		got := CompareDebVersions(a, b)
		lt := exec.Command(dpkg, "--compare-versions", vs[i], "lt", vs[j]).Run() == nil
		eq := exec.Command(dpkg, "--compare-versions", vs[i], "eq", vs[j]).Run() == nil
		want := 1
		if lt {
			want = -1
		} else if eq {
			want = 0
		}
		if sign(got) != want {
			t.Errorf("compare(%s, %s) = %d, dpkg says %d", vs[i], vs[j], got, want)
		}
		n++
	}
	t.Logf("%d comparisons agree with dpkg", n)
}

func dpkgPackages(t *testing.T) []agentproto.Package {
	f, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/var/lib/dpkg/status is required in CI")
		}
		t.Skip("no dpkg database on this machine")
	}
	defer f.Close()
	pkgs, err := agent.ParseDpkgStatus(f)
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestEvaluateRealFiles builds facts with the agent's collector from a
// file tree in a temp dir, plus this machine's dpkg database.
func TestEvaluateRealFiles(t *testing.T) {
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
	// The file's owner must be a user other than root; as root, make one.
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 4242, 4242
	}
	write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ntester:x:"+itoa(uid)+":"+itoa(gid)+"::/home/t:/bin/sh\n", 0o644)
	write("/etc/group", "root:x:0:\ntester:x:"+itoa(gid)+":\n", 0o644)
	write("/etc/login.defs", "# defaults\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\n", 0o644)
	write("/etc/security/pwquality.conf", "minlen = 14\n", 0o644)
	write("/etc/app.conf", "secret = x\n", 0o666)
	if os.Getuid() == 0 {
		if err := os.Chown(filepath.Join(root, "/etc/app.conf"), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	write("/proc/sys/net/ipv4/ip_forward", "0\n", 0o644)
	write("/proc/sys/kernel/randomize_va_space", "1\n", 0o644)

	pkgs := dpkgPackages(t)
	var libc string
	for _, p := range pkgs {
		if p.Name == "libc6" {
			libc = p.Version
		}
	}
	if libc == "" {
		t.Skip("libc6 not in the dpkg database")
	}
	policy := `policy: {id: t, name: T}
checks:
  - id: max-days
    title: max days
    controls: {cis-debian-12: 5.4.1.1}
    test:
      file_matches: {path: /etc/login.defs, regex: '^\s*PASS_MAX_DAYS\s+([1-9]|[1-9][0-9]|[12][0-9][0-9]|3[0-5][0-9]|36[0-5])\s*$'}
  - id: warn-age
    title: warn age
    controls: {cis-debian-12: 5.4.1.3}
    test: {file_contains: {path: /etc/login.defs, text: PASS_WARN_AGE 7}}
  - id: minlen
    title: minlen
    controls: {pci-dss-4.0: 8.3.6}
    test: {file_matches: {path: /etc/security/pwquality.conf, regex: '^minlen = (1[2-9])$'}}
  - id: app-mode
    title: app.conf not world-writable
    controls: {pci-dss-4.0: 7.2.1}
    test: {file_mode: {path: /etc/app.conf, max_mode: "0644", owner: tester}}
  - id: passwd-mode
    title: passwd mode
    controls: {cis-debian-12: 7.1.1}
    test: {file_mode: {path: /etc/passwd, max_mode: "0644"}}
  - id: missing-file
    title: no such file absent
    controls: {cis-debian-12: 1.1}
    test: {none: [{file_exists: /etc/nothing-here}]}
  - id: ipfwd
    title: ip forward off
    controls: {cis-debian-12: 3.3.1}
    test: {sysctl: {key: net.ipv4.ip_forward, value: "0"}}
  - id: aslr
    title: aslr
    controls: {cis-debian-12: 1.5.1}
    test: {sysctl: {key: kernel.randomize_va_space, value: "2"}}
  - id: no-such-sysctl
    title: absent sysctl
    controls: {cis-debian-12: 1.5.3}
    test: {sysctl: {key: kernel.does_not_exist, value: "1"}}
  - id: libc-new
    title: libc at least the installed one
    controls: {pci-dss-4.0: 6.3.3}
    test: {package_min_version: {name: libc6, version: "` + libc + `"}}
  - id: libc-newer
    title: libc newer than installed
    controls: {pci-dss-4.0: 6.3.3}
    test: {package_min_version: {name: libc6, version: "99:1"}}
  - id: no-telnetd
    title: no telnetd
    controls: {pci-dss-4.0: 2.2.5}
    test: {all: [{package_absent: telnetd-nonexistent}, {package_installed: libc6}]}
  - id: shadow-perm
    title: shadow meta not collected
    controls: {pci-dss-4.0: 8.3.2}
    test: {any: [{file_mode: {path: /etc/shadow-not-requested, max_mode: "0640"}}, {package_absent: libc6}]}
`
	pol, err := ParsePolicy("t.yml", []byte(policy), "api")
	if err != nil {
		t.Fatal(err)
	}
	set, errs := NewSet([]*Policy{pol})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	spec := set.Spec().AgentSpec()
	// shadow-not-requested is in the spec: drop it, to see an unknown.
	spec.Files = removeStr(spec.Files, "/etc/shadow-not-requested")
	col := &agent.Collector{Root: root}
	af := col.Facts(context.Background(), spec, t0)
	inv := &agentproto.Inventory{CollectedAt: t0, Packages: pkgs}
	facts := NewFacts("ep1", "host1", inv, &af)
	ex := []Exception{{ID: 7, Endpoint: "*", Check: "aslr", Owner: "ops", Reason: "legacy app", Expires: t0.Add(time.Hour)}}
	got := map[string]Result{}
	for _, r := range set.Evaluate(facts, ex, t0) {
		got[r.Check] = r
	}
	want := map[string]string{
		"max-days": StatusFail, "warn-age": StatusPass, "minlen": StatusPass, "app-mode": StatusFail,
		"passwd-mode": StatusPass, "missing-file": StatusPass, "ipfwd": StatusPass, "aslr": StatusExcepted,
		"no-such-sysctl": StatusFail, "libc-new": StatusPass, "libc-newer": StatusFail, "no-telnetd": StatusPass,
		"shadow-perm": StatusError,
	}
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("%s: status %s, want %s (evidence %+v)", id, got[id].Status, st, got[id].Evidence)
		}
	}
	if ev := got["app-mode"].Evidence; len(ev) != 1 || ev[0].Observed != "mode 0666 owner tester group tester" {
		t.Errorf("app-mode evidence %+v", ev)
	}
	if ev := got["max-days"].Evidence; len(ev) != 1 || ev[0].Observed != "no line matches" {
		t.Errorf("max-days evidence %+v", ev)
	}
	if ev := got["warn-age"].Evidence; ev[0].Observed != "matched: PASS_WARN_AGE 7" {
		t.Errorf("warn-age evidence %+v", ev)
	}
	if r := got["aslr"]; r.ExceptionID != 7 || r.Evidence[0].Observed != "1 (want 2)" {
		t.Errorf("aslr %+v", r)
	}
	if r := got["libc-new"]; !strings.Contains(r.Evidence[0].Observed, "installed "+libc) || !r.CollectedAt.Equal(t0) {
		t.Errorf("libc evidence %+v", r)
	}
	sc := set.Score(set.Evaluate(facts, ex, t0))
	if sc.Overall.Pass != 7 || sc.Overall.Fail != 4 || sc.Overall.Error != 1 || sc.Overall.Excepted != 1 {
		t.Errorf("score %+v", sc.Overall)
	}
	if s := sc.Controls[FrameworkCIS]["5.4.1.1"]; s.Fail != 1 || s.Percent != 0 {
		t.Errorf("control score %+v", s)
	}
}

func removeStr(l []string, s string) []string {
	var out []string
	for _, v := range l {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRequiredLiteral(t *testing.T) {
	for re, want := range map[string]string{
		`^\s*PASS_MAX_DAYS\s+([1-9]|90)$`: "PASS_MAX_DAYS",
		`(?i)authori[sz]ed`:               "",
		`^permitrootlogin no$`:            "permitrootlogin no",
		`a|b`:                             "",
		`(foo)+bar`:                       "foo",
		`x?yz`:                            "yz",
	} {
		tree, err := syntax.Parse("(?m)"+re, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := requiredLiteral(tree); got != want {
			t.Errorf("requiredLiteral(%s) = %q, want %q", re, got, want)
		}
	}
}
