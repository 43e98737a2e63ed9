package config

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// DefaultWatchInterval is how often Watch polls when every is not positive.
const DefaultWatchInterval = 2 * time.Second

// fingerprint identifies a file's content. A missing or unreadable file has
// ok == false and never counts as a change, so an editor's save-by-rename
// (the file briefly absent) does not trigger a reload of nothing.
type fingerprint struct {
	ok   bool
	size int64
	sum  [sha256.Size]byte
}

// stat fingerprints the file. It hashes the content on every poll instead
// of trusting an unchanged mtime and size: mtime granularity (a second or
// more on some file systems) can hide a quick rewrite of the same length,
// and config files are small enough that hashing costs nothing.
func stat(path string) fingerprint {
	b, err := os.ReadFile(path)
	if err != nil {
		return fingerprint{}
	}
	return fingerprint{ok: true, size: int64(len(b)), sum: sha256.Sum256(b)}
}

// Watch polls the file at path every `every` (DefaultWatchInterval when not
// positive) and calls onChange, from Watch's own goroutine, whenever the
// file's content differs from the last content seen; a touch that changes
// only the modification time does not count. A file missing at start counts
// as changed when it appears. Watch blocks until ctx ends.
func Watch(ctx context.Context, path string, every time.Duration, onChange func()) {
	watch(ctx, path, every, onChange, nil)
}

// WatchLoaded is Watch with the baseline taken from a config returned by
// LoadFile rather than from the file at the time Watch starts, so a change
// made between loading and watching is not missed.
func WatchLoaded(ctx context.Context, c *Config, every time.Duration, onChange func()) {
	watchFrom(ctx, c.Path, every, fingerprint{ok: true, size: c.size, sum: c.sum}, onChange, nil)
}

// watch is Watch with a hook called once the starting content is known, so
// a test can change the file strictly afterwards.
func watch(ctx context.Context, path string, every time.Duration, onChange, started func()) {
	watchFrom(ctx, path, every, stat(path), onChange, started)
}

func watchFrom(ctx context.Context, path string, every time.Duration, last fingerprint, onChange, started func()) {
	if every <= 0 {
		every = DefaultWatchInterval
	}
	if started != nil {
		started()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := stat(path)
		if !cur.ok {
			continue
		}
		// Only the content decides: a touch changes the mtime, not the content.
		changed := !last.ok || cur.size != last.size || cur.sum != last.sum
		last = cur
		if changed {
			onChange()
		}
	}
}
