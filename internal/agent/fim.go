package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// DefaultFIMPaths are the files watched by file integrity monitoring when
// --fim-paths is not given: accounts, privileges, remote access and
// scheduled jobs, the usual places an intruder changes to stay.
var DefaultFIMPaths = []string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/sudoers", "/etc/sudoers.d/*",
	"/etc/ssh/sshd_config", "/etc/crontab", "/etc/cron.d/*", "/var/spool/cron/crontabs/*",
}

// fimWatcher hashes the watched files and reports those whose state
// differs from the last one reported. What was reported is kept in
// <state>/fim.json, so an agent restart neither resends everything nor
// misses a file deleted while it was down.
type fimWatcher struct {
	patterns  []string
	statePath string
	known     map[string]agentproto.FileState
	loaded    bool
	last      time.Time
}

func newFIMWatcher(patterns []string, statePath string) *fimWatcher {
	return &fimWatcher{patterns: patterns, statePath: statePath}
}

// load reads the states last reported; a missing file means a first run.
func (w *fimWatcher) load() error {
	w.loaded = true
	w.known = map[string]agentproto.FileState{}
	raw, err := os.ReadFile(w.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", w.statePath, err)
	}
	var list []agentproto.FileState
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("read %s: %w", w.statePath, err)
	}
	for _, f := range list {
		w.known[f.Path] = f
	}
	return nil
}

// scan returns the states to report and the commit that makes them the
// known ones once the batch carrying them is safely buffered.
func (w *fimWatcher) scan() ([]agentproto.FileState, func() error) {
	if !w.loaded {
		if err := w.load(); err != nil {
			// Report everything again: the server diffs against its own
			// copy, so nothing is lost or doubled.
			w.known = map[string]agentproto.FileState{}
		}
	}
	cur := map[string]agentproto.FileState{}
	for _, p := range w.patterns {
		if !hasMeta(p) {
			cur[p] = fileState(p)
			continue
		}
		matches, _ := filepath.Glob(p) // the pattern was checked at start
		for _, m := range matches {
			if fi, err := os.Lstat(m); err == nil && fi.IsDir() {
				continue
			}
			cur[m] = fileState(m)
		}
	}
	var out []agentproto.FileState
	for p, f := range cur {
		if old, ok := w.known[p]; !ok || !sameFileState(old, f) {
			if !ok && !f.Exists && len(w.known) > 0 {
				// A literal path that was never there: nothing to say,
				// except on the first report, which sets the baseline.
				continue
			}
			out = append(out, f)
		}
	}
	for p, old := range w.known {
		if _, ok := cur[p]; !ok && old.Exists {
			out = append(out, agentproto.FileState{Path: p}) // deleted
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, func() error {
		w.known = cur
		list := make([]agentproto.FileState, 0, len(cur))
		for _, f := range cur {
			list = append(list, f)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
		raw, err := json.Marshal(list)
		if err != nil {
			return err
		}
		return writeFileAtomic(w.statePath, raw, 0o600)
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func sameFileState(a, b agentproto.FileState) bool {
	return a.Exists == b.Exists && a.SHA256 == b.SHA256 && a.Size == b.Size && a.Mode == b.Mode &&
		a.UID == b.UID && a.GID == b.GID && a.MTime.Equal(b.MTime) && a.Error == b.Error
}

// fileState hashes one file. A symbolic link is described, not followed:
// its hash is that of its target's name, so re-pointing it is a change.
func fileState(p string) agentproto.FileState {
	f := agentproto.FileState{Path: p}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return f
	}
	f.Exists = true
	if err != nil {
		f.Error = err.Error()
		return f
	}
	f.Size, f.Mode, f.MTime = fi.Size(), uint32(fi.Mode()), fi.ModTime().UTC()
	f.UID, f.GID = fileOwner(fi)
	h := sha256.New()
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			f.Error = err.Error()
			return f
		}
		h.Write([]byte(target))
	case fi.Mode().IsRegular():
		fh, err := os.Open(p)
		if err != nil {
			f.Error = err.Error() // e.g. /etc/shadow when not root
			return f
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			f.Error = err.Error()
			return f
		}
	default:
		return f // a device or socket: metadata only
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return f
}

// ParseFIMPaths checks a comma-separated list of paths and glob patterns;
// "none" disables file integrity monitoring (nil).
func ParseFIMPaths(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "none" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("fim-paths: %q is not an absolute path", p)
		}
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("fim-paths: %q is not a valid glob pattern: %w", p, err)
		}
		out = append(out, filepath.Clean(p))
	}
	if len(out) == 0 {
		return nil, errors.New(`fim-paths: no path given (use "none" to turn file integrity monitoring off)`)
	}
	return out, nil
}
