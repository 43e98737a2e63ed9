//go:build !linux

package eventstore

import "errors"

// lowerLoaderPriority is Linux-only: elsewhere nice applies to the whole
// process, so the loader keeps the process's priority.
func lowerLoaderPriority() error { return nil }

func threadNice() (int, error) { return 0, errors.New("per-thread nice is Linux-only") }
