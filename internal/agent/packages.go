package agent

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// The package actions run the system's package manager (apt-get or dnf,
// found on PATH) non-interactively.
func init() {
	RegisterAction("patch.security", patchSecurity)
	RegisterAction("package.install", packageAction("install", true))
	RegisterAction("package.remove", packageAction("remove", true))
	RegisterAction("package.upgrade", packageAction("upgrade", false))
}

// packageNameRe mirrors the server's check: a name never starts with "-",
// so it cannot be taken for an option.
var packageNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._-]{0,127}(:[a-z0-9_]{1,16})?$`)

// pkgSem lets one package manager run at a time: apt and dnf lock their
// databases, and a second run would fail.
var pkgSem = make(chan struct{}, 1)

func lockPackages(ctx context.Context) (unlock func(), ok bool) {
	select {
	case pkgSem <- struct{}{}:
		return func() { <-pkgSem }, true
	case <-ctx.Done():
		return nil, false
	}
}

// aptInstallOpts keep existing configuration files without asking.
var aptInstallOpts = []string{"-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}

func checkPackages(job agentproto.Job, required bool) *agentproto.JobResult {
	if required && len(job.Packages) == 0 {
		r := Refused("%s needs at least one package", job.Action)
		return &r
	}
	for _, p := range job.Packages {
		if !packageNameRe.MatchString(p) {
			r := Refused("%q is not a package name", p)
			return &r
		}
	}
	return nil
}

func noManager() agentproto.JobResult {
	return agentproto.JobResult{Status: agentproto.JobFailed, ExitCode: -1, Error: "no supported package manager (apt-get or dnf) on PATH"}
}

func waitedTooLong(ctx context.Context) agentproto.JobResult {
	return agentproto.JobResult{Status: agentproto.JobTimeout, ExitCode: -1,
		Error: fmt.Sprintf("timeout while waiting for another package job: %v", ctx.Err())}
}

func packageAction(op string, required bool) ActionFunc {
	return func(ctx context.Context, job agentproto.Job) agentproto.JobResult {
		if r := checkPackages(job, required); r != nil {
			return *r
		}
		unlock, ok := lockPackages(ctx)
		if !ok {
			return waitedTooLong(ctx)
		}
		defer unlock()
		var args []string
		switch packageManager() {
		case "apt":
			args = append([]string{}, aptInstallOpts...)
			switch {
			case op == "upgrade" && len(job.Packages) == 0:
				args = append(args, "upgrade")
			case op == "upgrade":
				args = append(args, "install", "--only-upgrade")
			default:
				args = append(args, op)
			}
			return RunCommand(ctx, aptEnv, "apt-get", append(args, job.Packages...)...)
		case "dnf":
			return RunCommand(ctx, nil, "dnf", append([]string{"-y", op}, job.Packages...)...)
		}
		return noManager()
	}
}

// patchSecurity applies the pending security updates: on apt it refreshes
// the package lists, then upgrades only the packages whose update comes
// from a security origin; on dnf it runs `dnf upgrade --security`.
func patchSecurity(ctx context.Context, job agentproto.Job) agentproto.JobResult {
	if r := checkPackages(job, false); r != nil {
		return *r
	}
	unlock, ok := lockPackages(ctx)
	if !ok {
		return waitedTooLong(ctx)
	}
	defer unlock()
	switch packageManager() {
	case "dnf":
		return RunCommand(ctx, nil, "dnf", "-y", "upgrade", "--security")
	case "":
		return noManager()
	}
	start := time.Now().UTC()
	out := &tailBuffer{max: agentproto.MaxJobOutput}
	finish := func(r agentproto.JobResult) agentproto.JobResult {
		r.StartedAt, r.Output = start, out.String()
		return r
	}
	if r := runCommandTo(ctx, out, aptEnv, "apt-get", "-q", "update"); r.Status != agentproto.JobSucceeded {
		return finish(r)
	}
	ups, err := aptPending(ctx)
	if err != nil {
		return finish(agentproto.JobResult{Status: agentproto.JobFailed, ExitCode: -1, Error: err.Error()})
	}
	var pkgs []string
	for _, u := range ups {
		if u.Security {
			pkgs = append(pkgs, u.Name)
		}
	}
	if len(pkgs) == 0 {
		fmt.Fprintln(out, "nocsoc-agent: no security updates pending")
		return finish(agentproto.JobResult{Status: agentproto.JobSucceeded})
	}
	fmt.Fprintf(out, "nocsoc-agent: upgrading %d packages with security updates\n", len(pkgs))
	args := append(append([]string{}, aptInstallOpts...), "install", "--only-upgrade")
	return finish(runCommandTo(ctx, out, aptEnv, "apt-get", append(args, pkgs...)...))
}
