//go:build !unix

package agent

import "os"

// fileIdentity has no inode to offer on this platform; files are then
// recognised by path and the hash of their first bytes.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) { return 0, 0 }
