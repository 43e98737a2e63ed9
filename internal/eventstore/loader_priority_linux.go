package eventstore

import (
	"fmt"
	"runtime"
	"syscall"
)

// lowerLoaderPriority gives the calling goroutine's thread the nice value
// LoaderNice. It locks the goroutine to its thread for good, so the thread
// ends with the goroutine and never runs other code at the lower priority
// (on Linux, nice is per thread). Raising nice needs no privilege.
func lowerLoaderPriority() error {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return fmt.Errorf("getpriority: %w", err)
	}
	// The raw syscall returns 20 - nice.
	nice := 20 - cur
	if nice >= LoaderNice {
		return nil // already as low (the whole process runs niced)
	}
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, LoaderNice); err != nil {
		return fmt.Errorf("setpriority %d: %w", LoaderNice, err)
	}
	return nil
}

// threadNice is the calling thread's nice value (tests).
func threadNice() (int, error) {
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	return 20 - cur, err
}
