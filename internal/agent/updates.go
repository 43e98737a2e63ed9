package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// updatesState remembers the last updates report, so an unchanged one is
// not sent again.
type updatesState struct {
	at   time.Time
	hash string
}

// aptEnv makes apt non-interactive and its output parseable.
var aptEnv = []string{"LANG=C", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "NEEDRESTART_MODE=a"}

// maxCollectOutput bounds what is read from a package manager listing.
const maxCollectOutput = 16 << 20

// collectUpdates returns the pending updates when due (every
// UpdatesInterval, or at once when force) and changed since the last
// report; nil otherwise.
func (a *Agent) collectUpdates(ctx context.Context, now time.Time, force bool) *agentproto.Updates {
	if a.o.UpdatesInterval < 0 {
		return nil
	}
	if !force && !a.upd.at.IsZero() && now.Sub(a.upd.at) < a.o.UpdatesInterval {
		return nil
	}
	a.upd.at = now
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	u := CollectUpdates(cctx, a.o.Root)
	if u.Manager == "" {
		// Nothing to report: the endpoint is not counted as patched.
		return nil
	}
	u.CollectedAt = now
	if u.Error != "" {
		a.log.Warn("pending updates not readable", "err", u.Error)
	}
	c := u
	c.CollectedAt = time.Time{}
	raw, _ := json.Marshal(c)
	sum := sha256.Sum256(raw)
	h := hex.EncodeToString(sum[:])
	if h == a.upd.hash {
		return nil
	}
	a.upd.hash = h
	return &u
}

// packageManager names the package manager found on PATH: "apt", "dnf"
// or "".
func packageManager() string {
	if _, err := exec.LookPath("apt-get"); err == nil {
		return "apt"
	}
	if _, err := exec.LookPath("dnf"); err == nil {
		return "dnf"
	}
	return ""
}

// commandOutput runs a listing command and returns its whole output
// (bounded by maxCollectOutput) and its result.
func commandOutput(ctx context.Context, env []string, name string, args ...string) (string, agentproto.JobResult) {
	out := &tailBuffer{max: maxCollectOutput / 2}
	res := runCommandTo(ctx, out, env, name, args...)
	return out.raw(), res
}

// CollectUpdates asks the package manager for pending updates (from its
// current package lists; it does not refresh them) and reads the
// reboot-required flag files under root.
func CollectUpdates(ctx context.Context, root string) agentproto.Updates {
	var u agentproto.Updates
	u.Manager = packageManager()
	var err error
	switch u.Manager {
	case "apt":
		u.Pending, err = aptPending(ctx)
	case "dnf":
		u.Pending, err = dnfPending(ctx)
	}
	if err != nil {
		u.Error = err.Error()
		u.Pending = nil
	}
	rr := filepath.Join(root, "/var/run/reboot-required")
	if _, err := os.Stat(rr); err == nil {
		u.RebootRequired = true
		if raw, err := os.ReadFile(rr + ".pkgs"); err == nil {
			seen := map[string]bool{}
			for _, l := range strings.Split(string(raw), "\n") {
				if l = strings.TrimSpace(l); l != "" && !seen[l] {
					seen[l] = true
					u.RebootPackages = append(u.RebootPackages, l)
				}
			}
		}
	}
	return u
}

func aptPending(ctx context.Context) ([]agentproto.PendingUpdate, error) {
	out, res := commandOutput(ctx, aptEnv, "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
	if res.Status != agentproto.JobSucceeded {
		return nil, fmt.Errorf("apt-get -s dist-upgrade: %s: %s", res.Error, lastLine(out))
	}
	return ParseAptSimulation(out), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// aptInstRe matches a simulated upgrade:
// "Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])".
var aptInstRe = regexp.MustCompile(`^Inst (\S+) \[([^\]]*)\] \((\S+)(?: ([^\[\)]*?))?\s*(?:\[([^\]]*)\])?\)`)

// ParseAptSimulation reads the upgrades of `apt-get -s dist-upgrade`
// output. Packages newly installed as dependencies are not updates and
// are skipped. An update is a security update when one of its origins is
// a "-security" suite (Debian-Security, jammy-security …).
func ParseAptSimulation(out string) []agentproto.PendingUpdate {
	var ups []agentproto.PendingUpdate
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := aptInstRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		u := agentproto.PendingUpdate{Name: m[1], CurrentVersion: m[2], Version: m[3], Origin: strings.TrimSpace(m[4]), Arch: m[5]}
		if n, arch, ok := strings.Cut(u.Name, ":"); ok {
			u.Name = n
			if u.Arch == "" {
				u.Arch = arch
			}
		}
		u.Security = strings.Contains(strings.ToLower(u.Origin), "security")
		ups = append(ups, u)
	}
	return ups
}

func dnfPending(ctx context.Context) ([]agentproto.PendingUpdate, error) {
	// -C: from the cache only, never a metadata download.
	out, res := commandOutput(ctx, nil, "dnf", "-q", "-C", "check-update")
	if res.Status != agentproto.JobSucceeded && res.ExitCode != 100 { // 100: updates available
		return nil, fmt.Errorf("dnf check-update: %s: %s", res.Error, lastLine(out))
	}
	ups := ParseDnfCheckUpdate(out)
	secOut, res := commandOutput(ctx, nil, "dnf", "-q", "-C", "updateinfo", "list", "--security")
	if res.Status != agentproto.JobSucceeded {
		return nil, fmt.Errorf("dnf updateinfo list --security: %s: %s", res.Error, lastLine(secOut))
	}
	sec := ParseDnfSecurity(secOut)
	for i := range ups {
		if sec[ups[i].Name] {
			ups[i].Security = true
		}
	}
	return ups, nil
}

// ParseDnfCheckUpdate reads `dnf check-update` output: "name.arch version
// repo" triples, possibly wrapped over lines, up to the obsoletes list.
func ParseDnfCheckUpdate(out string) []agentproto.PendingUpdate {
	var ups []agentproto.PendingUpdate
	var fields []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "Obsoleting") || strings.HasPrefix(t, "Security:") {
			break
		}
		if t == "" || strings.HasPrefix(t, "Last metadata") {
			continue
		}
		fields = append(fields, strings.Fields(t)...)
		for len(fields) >= 3 {
			na, ver, repo := fields[0], fields[1], fields[2]
			fields = fields[3:]
			name, arch := na, ""
			if i := strings.LastIndexByte(na, '.'); i > 0 {
				name, arch = na[:i], na[i+1:]
			}
			ups = append(ups, agentproto.PendingUpdate{Name: name, Arch: arch, Version: ver, Origin: repo})
		}
	}
	return ups
}

// ParseDnfSecurity reads `dnf updateinfo list --security` output
// ("ADVISORY SEVERITY/Sec. NEVRA" lines) into the set of package names.
func ParseDnfSecurity(out string) map[string]bool {
	names := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		nevra := f[len(f)-1]
		if i := strings.LastIndexByte(nevra, '.'); i > 0 {
			nevra = nevra[:i] // .arch
		}
		// name-[epoch:]version-release
		for range 2 {
			if i := strings.LastIndexByte(nevra, '-'); i > 0 {
				nevra = nevra[:i]
			}
		}
		names[nevra] = true
	}
	return names
}
