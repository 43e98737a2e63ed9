//go:build !unix

package ingest

import "os"

// fileID has no inode to offer on this platform; files are then
// recognised by path and the hash of their first bytes.
func fileID(fi os.FileInfo) (dev, ino uint64) { return 0, 0 }
