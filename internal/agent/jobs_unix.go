//go:build unix

package agent

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in its own process group and makes a
// cancelled context kill the whole group, so that a package manager's
// children (dpkg, maintainer scripts) die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
