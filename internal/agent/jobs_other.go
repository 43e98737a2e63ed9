//go:build !unix

package agent

import "os/exec"

// setProcessGroup: without process groups, only the direct child is
// killed when the context ends.
func setProcessGroup(cmd *exec.Cmd) {}
