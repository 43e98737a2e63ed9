//go:build unix

package agent

import (
	"os"
	"syscall"
)

// fileIdentity returns the device and inode of a file, which survive a
// rename and so recognise a rotated file under its new name.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
